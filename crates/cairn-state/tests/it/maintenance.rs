//! Figures per namespace, vacuum, doctor and backup, on both engines: the same calls, each
//! with the meaning its engine gives it (a backup of a file is a file; of a schema on a server,
//! a refusal naming `pg_dump`).

use cairn::ErrorKind;

use crate::contract;
use crate::engines::Engine;

contract! {
    fn stats_list_every_namespace_with_its_figures(f) {
        let store = &f.store;
        store.cache("pages").set("a", "x", None)?;
        store.ledger("jobs").mark_done("1")?;
        let stats = store.stats()?;
        assert_eq!(stats.iter().map(|s| s.ns.as_str()).collect::<Vec<_>>(), ["jobs", "pages"]);
        assert_eq!(stats[0].ledger.done, 1);
        assert_eq!(stats[1].cache.entries, 1);
        Ok(())
    }

    fn vacuum_keeps_every_entry(f) {
        let store = &f.store;
        for i in 0..100 {
            store.cache("c").set(&format!("k{i}"), vec![7u8; 100], None)?;
        }
        store.cache("c").clear()?;
        store.cache("c").set("kept", "v", None)?;
        store.vacuum()?;
        assert_eq!(f.reopen().cache("c").keys("")?, ["kept"]);
        Ok(())
    }

    fn doctor_reports_each_check_with_a_fix_for_what_is_wrong(f) {
        f.store.cache("c").set("k", "v", None)?;
        let findings = f.store.doctor()?;
        let checks: Vec<&str> = findings.iter().map(|x| x.check).collect();
        for finding in &findings {
            assert_eq!(finding.ok, finding.fix.is_none(), "a fix exactly for what is wrong: {finding:?}");
        }
        let schema = findings.iter().find(|x| x.check == "schema").expect("a schema check");
        assert!(schema.ok, "{schema:?}");
        match f.engine {
            Engine::Sqlite => {
                assert!(findings.iter().all(|x| x.ok), "{findings:?}");
                for check in ["integrity", "journal_mode", "permissions", "wal_size"] {
                    assert!(checks.contains(&check), "{check}: {checks:?}");
                }
            }
            Engine::Postgres => {
                for check in ["server", "autovacuum", "transactions", "clock"] {
                    assert!(checks.contains(&check), "{check}: {checks:?}");
                }
                let schema_name = f.schema().expect("a schema");
                let version = f.engine.cairn_schema_version();
                assert!(schema.detail.contains(&format!("'{schema_name}' at version {version}")), "{schema:?}");
            }
        }
        Ok(())
    }

    fn a_backup_is_a_copy_of_a_file_and_refused_with_what_to_use_for_a_server(f) {
        f.store.cache("c").set("k", "v", None)?;
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("backup.db");
        match f.engine {
            Engine::Sqlite => {
                f.store.backup(&dest)?;
                let copy = cairn::Store::open(&dest)?;
                assert_eq!(copy.cache("c").get::<String>("k")?.as_deref(), Some("v"));
            }
            Engine::Postgres => {
                let err = f.store.backup(&dest).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
                let schema = f.schema().expect("a schema");
                assert!(err.to_string().contains(&format!("pg_dump --schema={schema}")), "{err}");
                assert!(!dest.exists());
            }
        }
        Ok(())
    }
}
