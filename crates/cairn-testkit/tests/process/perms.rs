//! The database, its -wal and -shm files are 0600 and new directories 0700, whatever the
//! umask of the process that creates them. The umask is process-wide, so each case runs in a
//! child started through `sh -c 'umask ...; exec ...'`.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use cairn_testkit::Running;

use crate::child;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

#[test]
fn files_are_0600_and_directories_0700_under_any_umask() {
    for umask in ["000", "022", "077", "277"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("made/by/cairn/state.db");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("umask {umask}; exec \"$0\" hold --db \"$1\"")).arg(child()).arg(&db);
        let mut run = Running::spawn_command(&mut cmd).expect("spawn");
        assert!(
            run.wait_for(Duration::from_secs(20), |l| l == "READY"),
            "umask {umask}: child never got ready"
        );
        for f in ["state.db", "state.db-wal", "state.db-shm"] {
            assert_eq!(mode(&db.with_file_name(f)), 0o600, "{f} under umask {umask}");
        }
        for d in ["made", "made/by", "made/by/cairn"] {
            assert_eq!(mode(&dir.path().join(d)), 0o700, "{d} under umask {umask}");
        }
        run.close_stdin();
        let (status, _, stderr) = run.finish().expect("wait");
        assert!(status.success(), "{stderr}");
    }
}
