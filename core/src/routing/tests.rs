//! Routing rules: parsing, matching, checks against the catalog.

use super::*;

fn alert() -> Alert {
    Alert {
            rule: "KubePodCrashLooping".into(),
            severity: Some(Severity::new(2).expect("sev")),
            condition: Some(Condition::Fired),
            target_ids: vec![
                "/subscriptions/S/resourceGroups/RG-Prod-1/providers/Microsoft.ContainerService/managedClusters/aks1".into(),
            ],
            labels: vec![("namespace".into(), "payments-api".into())],
            ..Alert::default()
        }
}

#[test]
fn yaml_and_json_rules_match_in_order() {
    let yaml = r#"
rules:
  - name: first
    when:
      alert_rule: {glob: "Kube*Looping"}
      severity: Sev0-Sev2
      monitor_condition: Fired
      resource_group: {prefix: rg-prod-}
      resource_type: microsoft.containerservice/managedclusters
      labels: {NAMESPACE: {regex: "^payments(-.*)?$"}}
    run: [a, b]
    continue: true
  - when: {alert_rule: [Other, kubepodcrashlooping]}
    run: c
  - when: {}
    run: never
"#;
    let r = RoutingRules::parse(yaml).expect("valid yaml");
    let got: Vec<_> = r.matching(&alert()).iter().map(|(i, _)| *i).collect();
    assert_eq!(got, vec![0, 1]);
    let json =
        r#"{"rules": [{"when": {"severity": {"min": "Sev0", "max": "Sev1"}}, "run": ["x"]}]}"#;
    let r = RoutingRules::parse(json).expect("valid json");
    assert!(r.matching(&alert()).is_empty(), "Sev2 is outside Sev0-Sev1");
}

#[test]
fn bad_rules_are_refused_with_a_reason() {
    for (text, needle) in [
        (
            r#"{"rules": [{"when": {"alert_rule": {"regex": "("}}, "run": "x"}]}"#,
            "invalid regex",
        ),
        (
            r#"{"rules": [{"when": {"severity": "Sev9"}, "run": "x"}]}"#,
            "severity",
        ),
        (
            r#"{"rules": [{"when": {"sevrity": "Sev1"}, "run": "x"}]}"#,
            "sevrity",
        ),
        (r#"{"rules": [{"when": {}, "run": []}]}"#, "schema ids"),
        (
            r#"{"rules": [{"when": {"alert_rule": {"fuzzy": "x"}}, "run": "x"}]}"#,
            "rules[0].when.alert_rule",
        ),
        (
            "rules:\n  - when: {monitor_condition: Maybe}\n    run: x\n",
            "Maybe",
        ),
    ] {
        let e = RoutingRules::parse(text).expect_err(text);
        assert!(e.0.contains(needle), "{needle:?} not in {e}");
    }
    let r = RoutingRules::parse(r#"{"rules": [{"run": "ghost"}]}"#).expect("valid");
    let e = r.check_schemas(|id| id == "real").expect_err("ghost");
    assert!(e.0.contains("ghost"), "{e}");
}
