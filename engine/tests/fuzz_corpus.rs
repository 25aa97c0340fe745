//! Replays the kept cargo-fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same property functions the fuzz targets call, so every CI run checks
//! them on stable without nightly or libFuzzer.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus")).join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            check(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(n >= 20, "{}: only {n} corpus files", dir.display());
}

#[test]
fn json_corpus_keeps_its_properties() {
    replay("json", veil_engine::fuzzing::json);
}

#[test]
fn stream_window_corpus_keeps_its_properties() {
    replay("stream_window", veil_engine::fuzzing::stream_window);
}
