//! Notification routing: parsing, decisions per execution, teams and their channels.

#![allow(clippy::unwrap_used)]
use super::*;
use crate::conformance::new_execution;

const DOC: &str = r##"
teams:
  payments:
    slack: {channel: "#payments"}
    opsgenie:
      key: {env: OG_PAYMENTS}
      responders: [{type: team, name: Payments}]
rules:
  - when: {resource_group: {prefix: rg-pay}, severity: Sev0-Sev2}
    then: {team: payments}
  - when: {schema: quiet}
    then: {team: default, opsgenie: false, slack: [succeeded]}
"##;

#[test]
fn first_match_decides_then_the_trigger_team_then_default() {
    let r = NotifyRoutes::parse(DOC).unwrap();
    let mut e = new_execution("a", Status::Failed);
    e.env.insert("RESOURCE_RG".into(), "rg-payments-1".into());
    e.env.insert("ALERT_SEVERITY".into(), "Sev1".into());
    e.env.insert("ALERT_ID".into(), "x".into());
    let d = r.decide(&e);
    assert_eq!(
        (d.team.as_str(), d.opsgenie, d.rule),
        ("payments", true, Some(0))
    );
    e.env.insert("ALERT_SEVERITY".into(), "Sev3".into());
    assert_eq!(r.decide(&e).team, "default", "severity out of range");
    let q = new_execution("quiet", Status::Succeeded);
    let d = r.decide(&q);
    assert!(!d.opsgenie);
    assert_eq!(d.slack, vec![Status::Succeeded]);
    let mut t = new_execution("a", Status::Failed);
    t.team = Some("payments".into());
    assert_eq!(r.decide(&t).team, "payments", "the trigger's team");
    t.team = Some("unknown".into());
    assert_eq!(r.decide(&t).team, "default");
}

#[test]
fn rules_must_name_defined_teams_and_secrets_are_references() {
    let e = NotifyRoutes::parse("rules: [{when: {}, then: {team: ghost}}]").unwrap_err();
    assert!(e.0.contains("ghost"), "{e}");
    assert!(NotifyRoutes::parse("teams: {a: {opsgenie: {key: \"literal\"}}}").is_err());
    let r =
        NotifyRoutes::parse(r#"{"teams": {"a": {"slack": {"webhook": {"file": "/x"}}}}}"#).unwrap();
    assert!(
        r.team("a")
            .slack
            .unwrap()
            .webhook
            .unwrap()
            .resolve()
            .is_err()
    );
}
