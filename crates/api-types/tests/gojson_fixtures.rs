//! The property test of issue 18: every recorded request body in `tests/fixtures/<kind>/`,
//! varied as Go's decoder would not notice (a `null` at every struct key, every key in another
//! case, an unknown key in every object), decodes by [`gojson`] to what a strict serde decode
//! of the original (or of the original without the nulled key) gives.
//!
//! The fixtures were recorded from the clients through `scripts/record-bodies.py` (a logging
//! proxy in front of berthd) or, where noted in their names, written from a client's source.
// An integration-test crate: its #[test]s stand at the top level.
#![allow(clippy::tests_outside_test_module)]

use std::fmt::Debug;
use std::path::Path;

use berth_api_types::gojson::{self, variants::variants};
use berth_api_types::{container, exec, network, volume};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixtures(kind: &str) -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.expect("dir entry").path();
        if path.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&path).expect("fixture");
            let v: Value = serde_json::from_str(&text).expect("fixture is JSON");
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

/// Checks every fixture of `kind` decoded as `T`; returns how many variants were checked.
fn check<T: DeserializeOwned + PartialEq + Debug>(kind: &str) -> usize {
    let mut n = 0;
    for (name, original) in fixtures(kind) {
        let raw = serde_json::to_vec(&original).unwrap();
        let baseline: T = gojson::from_slice(&raw)
            .unwrap_or_else(|e| panic!("{kind}/{name}: original refused: {e}"));
        // Without nulls the fixture also decodes strictly, to the same value.
        if let Ok(strict) = serde_json::from_value::<T>(original.clone()) {
            assert_eq!(
                strict, baseline,
                "{kind}/{name}: strict and Go decodes differ"
            );
        }
        let structs = gojson::struct_pointers::<T>(&raw).unwrap();
        assert!(
            structs.contains(&String::new()),
            "{kind}/{name}: root not a struct"
        );
        for v in variants(&original, &structs) {
            let body = serde_json::to_vec(&v.body).unwrap();
            let got: T = gojson::from_slice(&body)
                .unwrap_or_else(|e| panic!("{kind}/{name}: {}: refused: {e}", v.what));
            let want: T = gojson::from_value(v.expect.clone())
                .unwrap_or_else(|e| panic!("{kind}/{name}: {}: expected body: {e}", v.what));
            // Where serde can read the expected body itself, it agrees.
            if let Ok(strict) = serde_json::from_value::<T>(v.expect.clone()) {
                assert_eq!(strict, want, "{kind}/{name}: {}: oracle disagrees", v.what);
            }
            assert_eq!(got, want, "{kind}/{name}: {}", v.what);
            n += 1;
        }
    }
    n
}

#[test]
fn container_create_bodies() {
    let n = check::<container::CreateRequest>("container-create");
    assert!(n > 300, "only {n} variants");
}

#[test]
fn commit_config_bodies() {
    check::<container::Config>("commit-config");
}

#[test]
fn network_bodies() {
    check::<network::CreateRequest>("network-create");
    check::<network::ConnectRequest>("network-connect");
    check::<network::DisconnectRequest>("network-disconnect");
}

#[test]
fn volume_create_bodies() {
    check::<volume::CreateRequest>("volume-create");
}

#[test]
fn exec_bodies() {
    check::<exec::CreateRequest>("exec-create");
    check::<exec::StartRequest>("exec-start");
}
