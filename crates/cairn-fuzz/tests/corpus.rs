//! Replays every input kept in `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! through the target's checks, on stable Rust: what a fuzzer once found stays fixed.

use std::path::PathBuf;

#[test]
fn every_kept_fuzz_input_passes_its_targets_checks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for (name, check) in cairn_fuzz::TARGETS {
        let mut replayed = 0;
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries {
                let path = entry.expect("corpus entry").path();
                let data = std::fs::read(&path).expect("corpus file");
                if std::panic::catch_unwind(|| check(&data)).is_err() {
                    panic!("{name}: {} fails its checks (see the panic above)", path.display());
                }
                replayed += 1;
            }
        }
        eprintln!("{name}: {replayed} inputs replayed");
        assert!(
            replayed >= 10,
            "{name}: only {replayed} inputs in fuzz/corpus/{name}: the corpus is missing"
        );
    }
}
