//! Replays the kept cargo-fuzz corpus of the stream window
//! (`fuzz/corpus/stream_window/`) through the same property function the
//! fuzz target calls, so every CI run checks it on stable.

use std::path::Path;

#[test]
fn stream_window_corpus_keeps_its_properties() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/stream_window"
    ));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            let input = std::fs::read(&path).unwrap();
            let result =
                std::panic::catch_unwind(|| veil_engine::stream::fuzz_stream_window(&input));
            assert!(result.is_ok(), "{} breaks the property", path.display());
            n += 1;
        }
    }
    assert!(n >= 8, "{}: only {n} corpus files", dir.display());
}
