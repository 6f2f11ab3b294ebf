//! The HTTPS samples' key logs (recorded over loopback by samples/tools/record_tls.py). What each
//! HTTPS sample must show through the pipeline is checked with every other sample in
//! tests/samples.rs (the `tls` and `tls_summary` keys of samples/expected.json), and cut at
//! every offset in tests/hostile.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::path::{Path, PathBuf};

use serde_json::Value;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(samples_dir().join("expected.json"))
        .expect("samples/expected.json");
    match serde_json::from_str(&text).expect("expected.json is JSON") {
        Value::Object(m) => m,
        _ => panic!("expected.json must be an object"),
    }
}

#[test]
fn every_keys_file_belongs_to_a_listed_https_sample_and_has_client_randoms() {
    let exp = expected();
    let mut n = 0;
    for entry in std::fs::read_dir(samples_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".keys") else {
            continue;
        };
        n += 1;
        let sample = exp
            .get(&format!("{stem}.pcap"))
            .unwrap_or_else(|| panic!("{name}: no sample"));
        assert!(
            sample.get("tls").is_some(),
            "{name}: its sample declares no TLS facts"
        );
        let text = std::fs::read_to_string(samples_dir().join(&name)).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("CLIENT_RANDOM ")
                    || l.starts_with("CLIENT_TRAFFIC_SECRET_0 ")),
            "{name}: no session secret"
        );
    }
    assert!(n >= 4, "{n} key logs");
}
