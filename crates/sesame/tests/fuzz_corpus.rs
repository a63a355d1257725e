//! Replays every input kept for the fuzz targets: the corpus seeded from
//! the tests (`fuzz/corpus/TARGET/`) and every crash a fuzzing run ever
//! found (`fuzz/regressions/TARGET/`), through the same harness the targets
//! run (`fuzz/harness.rs`). A crash found once fails this test until fixed.

#[path = "../../../fuzz/harness.rs"]
mod harness;

use std::path::Path;

#[test]
fn every_kept_fuzz_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut ran = 0;
    for target in harness::TARGETS {
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("a readable directory").path();
                let data = std::fs::read(&path).expect("a readable input");
                // A thread of the size tokio gives its workers, so that an
                // input deep enough to overflow one there overflows here.
                let t = target.to_string();
                std::thread::Builder::new()
                    .stack_size(2 << 20)
                    .spawn(move || harness::run(&t, &data))
                    .expect("a thread")
                    .join()
                    .unwrap_or_else(|_| panic!("{} failed", path.display()));
                ran += 1;
            }
        }
    }
    assert!(
        ran >= harness::TARGETS.len(),
        "the corpus is missing: {ran} inputs"
    );
}
