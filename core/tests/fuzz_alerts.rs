//! Property-based fuzzing of the alert parsers: arbitrary JSON, and real fixtures with a
//! random part replaced by arbitrary JSON, must never panic; accepted alerts give bounded
//! variables. `make test` runs a short pass; `make fuzz` a long one
//! (`PROPTEST_CASES=200000`).

use cloudo_core::alert::{MAX_VALUE, alertmanager, azure};
use cloudo_core::routing::RoutingRules;
use proptest::prelude::*;
use serde_json::Value;

mod common;

/// Field names the parsers look at, so random objects reach deep paths.
const KEYS: &[&str] = &[
    "schemaId",
    "data",
    "essentials",
    "alertContext",
    "alertId",
    "alertRule",
    "severity",
    "signalType",
    "monitorCondition",
    "monitoringService",
    "alertTargetIDs",
    "configurationItems",
    "firedDateTime",
    "resolvedDateTime",
    "condition",
    "allOf",
    "dimensions",
    "Dimensions",
    "name",
    "value",
    "labels",
    "annotations",
    "properties",
    "impactedServices",
    "ServiceName",
    "ImpactedRegions",
    "RegionName",
    "resourceId",
    "version",
    "alerts",
    "status",
    "startsAt",
    "endsAt",
    "fingerprint",
    "generatorURL",
    "commonAnnotations",
    "namespace",
    "pod",
    "microsoft.resourceid",
    "ControllerKind",
];

fn json() -> impl Strategy<Value = Value> {
    common::json(
        KEYS,
        prop_oneof![
            Just("azureMonitorCommonAlertSchema".to_string()),
            Just("Fired".to_string()),
            Just("firing".to_string()),
            Just("resolved".to_string()),
            Just("Sev2".to_string()),
            Just("/subscriptions/s/resourceGroups/rg/providers/a.b/c/d".to_string()),
            Just("4".to_string()),
            Just("[{\"ServiceName\": 1}]".to_string()),
            ".{0,40}",
            "\\PC{0,5000}",
        ],
        5,
    )
}

fn fixtures() -> Vec<Value> {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../orchestrator/tests/fixtures");
    let mut out = Vec::new();
    for dir in ["azure-monitor", "alertmanager", "crafted"] {
        for entry in std::fs::read_dir(root.join(dir))
            .expect("fixtures folder")
            .flatten()
        {
            if let Ok(v) =
                serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap_or_default())
            {
                out.push(v);
            }
        }
    }
    assert!(out.len() > 20, "fixtures found: {}", out.len());
    out
}

fn check(v: &Value) {
    let routes = RoutingRules::parse(r#"{"rules": [{"when": {"labels": {"namespace": {"glob": "p*"}}, "severity": "Sev0-Sev3"}, "run": "x"}]}"#)
        .expect("rules");
    if let Ok(a) = azure::parse(v) {
        for lower in [true, false] {
            for (k, val) in a.env(lower) {
                assert!(val.len() <= MAX_VALUE, "{k} is {} bytes", val.len());
            }
        }
        let _ = (a.fallback_schema_ids(), routes.matching(&a));
    }
    if let Ok(alerts) = alertmanager::parse(v) {
        for a in alerts {
            for (k, val) in a.env(true) {
                assert!(val.len() <= MAX_VALUE, "{k} is {} bytes", val.len());
            }
            let _ = routes.matching(&a);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1500),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_json_never_panics(v in json()) {
        check(&v);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<prop::sample::Index>(),
        path in prop::collection::vec(any::<usize>(), 0..7),
        with in json(),
    ) {
        let all = fixtures();
        let mut v = all[pick.index(all.len())].clone();
        common::mutate(&mut v, &path, with);
        check(&v);
    }
}
