//! The documents an operator writes — the catalog, alert routing rules and notification
//! routing — reach the parsers from files and from `PUT` routes. Their examples in the docs
//! must parse as written; arbitrary text, and those examples with a random part replaced by
//! arbitrary JSON, must give a result or an error, never a panic. `make test` runs a short
//! pass; `PROPTEST_CASES` sets a longer one.

use cloudo_core::notify::NotifyRoutes;
use cloudo_core::routing::RoutingRules;
use cloudo_core::schema::Catalog;
use proptest::prelude::*;
use serde_json::Value;
use std::path::Path;

mod common;

fn repo(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The fenced ```yaml blocks of a markdown file.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in markdown.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```yaml") => cur = Some(String::new()),
            (Some(_), "```") => out.extend(cur.take()),
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

fn rules_example() -> String {
    yaml_blocks(&repo("docs/alerts.md"))
        .into_iter()
        .find(|b| b.starts_with("rules:"))
        .expect("docs/alerts.md has a rules example")
}

fn notify_example() -> String {
    yaml_blocks(&repo("docs/notifications.md"))
        .into_iter()
        .find(|b| b.starts_with("teams:"))
        .expect("docs/notifications.md has a routing example")
}

fn catalog_example() -> String {
    repo("schemas/schemas.json")
}

fn as_json(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).expect("example is YAML")
}

/// Every parser on the same text; whatever comes back, nothing may panic.
fn parse_all(text: &str) {
    let _ = Catalog::parse(text);
    if let Ok(r) = RoutingRules::parse(text) {
        let _ = r.matching(&cloudo_core::alert::Alert::default());
    }
    if let Ok(n) = NotifyRoutes::parse(text) {
        let _ = n.team("default");
    }
}

#[test]
fn the_documented_examples_parse() {
    let catalog = Catalog::parse(&catalog_example()).expect("schemas/schemas.json");
    assert!(!catalog.schemas().is_empty());
    let rules = RoutingRules::parse(&rules_example()).expect("docs/alerts.md rules example");
    // The example names schemas of its own; it is the shape that must hold.
    assert!(rules.check_schemas(|_| true).is_ok());
    let notify = NotifyRoutes::parse(&notify_example()).expect("docs/notifications.md example");
    assert!(notify.team("payments").has_opsgenie_key());
    // The same documents as JSON (the API's other spelling) parse too.
    for (yaml, parse) in [
        (
            rules_example(),
            (|t: &str| RoutingRules::parse(t).is_ok()) as fn(&str) -> bool,
        ),
        (notify_example(), |t: &str| NotifyRoutes::parse(t).is_ok()),
    ] {
        let json = serde_json::to_string(&as_json(&yaml)).expect("serialise");
        assert!(parse(&json), "JSON form refused: {json}");
        // What the fuzzer below relies on to reach the YAML parser with a mutated document.
        assert!(
            parse(&format!("# yaml\n{json}")),
            "flow YAML refused: {json}"
        );
    }
}

const KEYS: &[&str] = &[
    "partition_key",
    "entity",
    "id",
    "name",
    "runbook",
    "run_args",
    "worker",
    "oncall",
    "require_approval",
    "tags",
    "limits",
    "secrets",
    "rules",
    "when",
    "then",
    "run",
    "continue",
    "severity",
    "labels",
    "regex",
    "glob",
    "prefix",
    "exact",
    "teams",
    "slack",
    "opsgenie",
    "key",
    "env",
    "file",
    "responders",
    "status",
];

fn json() -> impl Strategy<Value = Value> {
    common::json(
        KEYS,
        prop_oneof![
            Just("Sev0-Sev2".to_string()),
            Just("true".to_string()),
            Just("(a+)+$".to_string()),
            Just("[".to_string()),
            Just("a{1000}{1000}".to_string()),
            Just("payments".to_string()),
            Just("default".to_string()),
            ".{0,20}",
            "\\PC{0,200}",
        ],
        4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        parse_all(&text);
    }

    #[test]
    fn mutated_examples_never_panic(
        pick in 0usize..3,
        path in prop::collection::vec(any::<usize>(), 0..6),
        with in json(),
        as_yaml in any::<bool>(),
    ) {
        let mut doc = match pick {
            0 => serde_json::from_str(&catalog_example()).expect("catalog is JSON"),
            1 => as_json(&rules_example()),
            _ => as_json(&notify_example()),
        };
        common::mutate(&mut doc, &path, with);
        let json = serde_json::to_string(&doc).expect("JSON out");
        // A leading comment sends the same document down the YAML path (flow style).
        let text = if as_yaml { format!("# yaml\n{json}") } else { json };
        parse_all(&text);
    }
}
