//! A crash inside a migration step leaves the file at the previous version, whole; the next
//! run continues from there.

use cairn_testkit::Running;
use rusqlite::Connection;

use crate::child;

fn state(path: &std::path::Path) -> (i64, Vec<String>) {
    let conn = Connection::open(path).expect("open");
    let v = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
    let mut st =
        conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY rowid").expect("q");
    let tables = st.query_map([], |r| r.get(0)).expect("q").collect::<Result<_, _>>().expect("rows");
    assert_eq!(conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)).expect("check"), "ok");
    (v, tables)
}

#[test]
fn a_crash_inside_any_step_leaves_the_previous_version_and_a_rerun_finishes() {
    for die_at in 1..=4i64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.db");
        let p = path.to_str().expect("utf-8");
        let (status, _, _) =
            Running::spawn(child(), &["migrate", "--db", p, "--die-at", &die_at.to_string()])
                .expect("spawn")
                .finish()
                .expect("wait");
        assert!(!status.success(), "step {die_at} should have crashed the child");
        let (version, tables) = state(&path);
        assert_eq!(version, die_at - 1);
        let want: Vec<String> = ["one", "two", "three", "four"]
            .iter()
            .take((die_at - 1) as usize)
            .map(|s| s.to_string())
            .collect();
        assert_eq!(tables, want, "crash in step {die_at}");
        let (status, lines, stderr) =
            Running::spawn(child(), &["migrate", "--db", p]).expect("spawn").finish().expect("wait");
        assert!(status.success(), "{stderr}");
        assert_eq!(lines, vec![format!("MIGRATED {} -> 4", die_at - 1)]);
        assert_eq!(state(&path).0, 4);
    }
}
