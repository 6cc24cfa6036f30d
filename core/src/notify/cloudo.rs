//! ClouDO's `ROUTING_RULES` JSON (`version`, `defaults`, `teams`, `rules` of `when` and a
//! list of `then` actions), read into a [`NotifyRoutes`] document.
//!
//! - Teams keep their Slack channel; their credentials follow ClouDO's convention
//!   `SLACK_TOKEN_<TEAM>` / `OPSGENIE_API_KEY_<TEAM>` (team upper-cased, `-` to `_`) as
//!   `{env: …}` references, when those variables are set (else the defaults are used, as
//!   ClouDO fell back to them). `defaults.slack.channel` is the `default` team's channel.
//! - A rule's actions become its `then`: the team they name (or `default`), pages when one is
//!   `opsgenie`, Slack when one is `slack` (for the rule's `statusIn`, else every final
//!   status, as ClouDO's `finalOnly`). An action's own `channel` makes a team of its own
//!   (`<team>/<channel>`, same credentials).
//! - `when`: `any: "*"` matches everything; `statusIn` (`completed` is `succeeded`),
//!   `resourceGroup`, `resourceGroupPrefix`, `resourceName`, `namespace`, `oncall`,
//!   `severityMin`/`severityMax`, `isAlert` map to the same conditions; `finalOnly` and
//!   `alertRule` are ignored (ClouDO ignored `alertRule` too; cloudo notifies final statuses).
//!
//! Refused, naming the rule: inline `token`/`apiKey` values (a secret in a document),
//! `schemaName` (ClouDO matched the schema's *name*; cloudo's `schema` is its id),
//! `resourceId` and `subscriptionId`, and actions for several teams in one rule (a run has
//! one team).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    DEFAULT_TEAM, NotifyRoutes, NotifyRoutesError, NotifyRule, NotifyWhen, OpsgenieTarget,
    SecretRef, SlackTarget, SlackWhen, Source, Team, Then,
};
use crate::Status;
use crate::routing::{Matcher, SeverityRange};

/// The statuses ClouDO's `finalOnly` meant (and `lost`, which ClouDO could not tell apart).
const FINAL: [Status; 6] = [
    Status::Succeeded,
    Status::Failed,
    Status::Error,
    Status::Timeout,
    Status::Lost,
    Status::Routed,
];

/// Is this ClouDO's shape? (`version`, or a rule whose `then` is a list.)
pub fn looks_like_cloudo(v: &Value) -> bool {
    v.get("version").is_some()
        || v.get("defaults").is_some()
        || v["rules"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["then"].is_array()))
}

/// Reads ClouDO's document; `has_env` says which credential variables exist.
pub fn from_cloudo(
    v: &Value,
    has_env: &dyn Fn(&str) -> bool,
) -> Result<NotifyRoutes, NotifyRoutesError> {
    let err = |m: String| NotifyRoutesError(format!("ClouDO routing rules: {m}"));
    let mut teams = BTreeMap::new();
    let team_of = |name: &str, channel: Option<&str>| -> Team {
        let upper = name.to_ascii_uppercase().replace('-', "_");
        let env = |var: String| has_env(&var).then_some(SecretRef::Env { env: var });
        Team {
            slack: Some(SlackTarget {
                channel: channel.map(str::to_string),
                token: env(format!("SLACK_TOKEN_{upper}")),
                ..SlackTarget::default()
            }),
            opsgenie: env(format!("OPSGENIE_API_KEY_{upper}")).map(|key| OpsgenieTarget {
                key: Some(key),
                ..OpsgenieTarget::default()
            }),
        }
    };
    let default_channel = v["defaults"]["slack"]["channel"].as_str();
    teams.insert(
        DEFAULT_TEAM.to_string(),
        team_of(DEFAULT_TEAM, default_channel),
    );
    for (name, t) in v["teams"].as_object().into_iter().flatten() {
        teams.insert(
            name.clone(),
            team_of(name, t["slack"]["channel"].as_str().or(default_channel)),
        );
    }
    let mut rules = Vec::new();
    for (i, r) in v["rules"].as_array().into_iter().flatten().enumerate() {
        let when = when_of(&r["when"]).map_err(|m| err(format!("rule {i}: {m}")))?;
        let actions = r["then"].as_array().cloned().unwrap_or_default();
        // The team the actions name, and a team of an action's own channel, if any.
        let (mut base, mut own): (Option<String>, Option<String>) = (None, None);
        let (mut page, mut slack) = (false, false);
        for a in &actions {
            if a.get("token").is_some() || a.get("apiKey").is_some() {
                return Err(err(format!(
                    "rule {i}: an inline token or apiKey; put it in SLACK_TOKEN_<TEAM> or \
                     OPSGENIE_API_KEY_<TEAM> (or a team reference in notification routes)"
                )));
            }
            let base_name = a["team"].as_str().unwrap_or(DEFAULT_TEAM).to_string();
            if base.as_ref().is_some_and(|b| *b != base_name) {
                return Err(err(format!(
                    "rule {i}: actions for several teams ({}, {base_name}); a run goes to one \
                     team: split the rule",
                    base.unwrap_or_default()
                )));
            }
            base = Some(base_name.clone());
            let name = base_name;
            if let Some(ch) = a["channel"].as_str() {
                let base = teams
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| team_of(&name, None));
                if base.slack.as_ref().and_then(|s| s.channel.as_deref()) != Some(ch) {
                    let own_team = format!("{name}/{ch}");
                    let mut t = base;
                    t.slack.get_or_insert_with(SlackTarget::default).channel = Some(ch.into());
                    teams.insert(own_team.clone(), t);
                    own = Some(own_team);
                }
            }
            if !teams.contains_key(&name) {
                teams.insert(name.clone(), team_of(&name, default_channel));
            }
            match a["type"].as_str() {
                Some("opsgenie") => page = true,
                Some("slack") => slack = true,
                other => return Err(err(format!("rule {i}: action type {other:?}"))),
            }
        }
        // Slack for the rule's statusIn, else for every final status (ClouDO's finalOnly).
        let slack = match (slack, when.status.is_empty()) {
            (false, _) => SlackWhen::On(false),
            (true, false) => SlackWhen::Statuses(when.status.clone()),
            (true, true) => SlackWhen::Statuses(FINAL.to_vec()),
        };
        rules.push(NotifyRule {
            name: Some(format!("ClouDO rule {i}")),
            when,
            then: Then {
                team: own.or(base).unwrap_or_else(|| DEFAULT_TEAM.to_string()),
                opsgenie: Some(page),
                slack: Some(slack),
            },
        });
    }
    Ok(NotifyRoutes { teams, rules })
}

impl NotifyRoutes {
    /// The environment variables the teams' credentials refer to.
    pub fn env_references(&self) -> Vec<String> {
        let env = |r: &Option<SecretRef>| match r {
            Some(SecretRef::Env { env }) => Some(env.clone()),
            _ => None,
        };
        self.teams
            .values()
            .flat_map(|t| {
                let slack = t.slack.as_ref();
                [
                    slack.and_then(|s| env(&s.token)),
                    slack.and_then(|s| env(&s.webhook)),
                    t.opsgenie.as_ref().and_then(|o| env(&o.key)),
                ]
            })
            .flatten()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The document as YAML (what `--notify-routes` reads back).
    pub fn to_yaml(&self) -> Result<String, String> {
        serde_saphyr::to_string(self).map_err(|e| e.to_string())
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn when_of(w: &Value) -> Result<NotifyWhen, String> {
    let mut when = NotifyWhen::default();
    let Some(w) = w.as_object() else {
        return Ok(when);
    };
    if w.get("any").and_then(Value::as_str) == Some("*") {
        return Ok(when);
    }
    for (k, v) in w {
        // A condition of the wrong type would silently match everything: refused.
        let wants_text = !matches!(k.as_str(), "finalOnly" | "alertRule" | "any" | "statusIn");
        if wants_text && text(v).is_none() {
            return Err(format!("when.{k}: expected a string, got {v}"));
        }
        let s = text(v);
        match k.as_str() {
            "finalOnly" | "alertRule" | "any" => {}
            "statusIn" => {
                let list = v
                    .as_array()
                    .filter(|l| l.iter().all(Value::is_string))
                    .ok_or_else(|| {
                        format!("when.statusIn: expected a list of statuses, got {v}")
                    })?;
                for st in list.iter().filter_map(Value::as_str) {
                    let parsed: Status = st
                        .parse()
                        .map_err(|_| format!("statusIn: unknown status {st:?}"))?;
                    when.status.push(parsed);
                }
            }
            "resourceGroup" => when.resource_group = s.map(Matcher::Exact),
            "resourceGroupPrefix" => {
                when.resource_group = s.map(|prefix| Matcher::Prefix { prefix })
            }
            "resourceName" => when.resource_name = s.map(Matcher::Exact),
            "namespace" => when.namespace = s.map(Matcher::Exact),
            "oncall" => when.oncall = s.map(|s| s.eq_ignore_ascii_case("true")),
            "isAlert" => {
                when.source = s.map(|s| {
                    if s.eq_ignore_ascii_case("true") {
                        Source::Alert
                    } else {
                        Source::Manual
                    }
                });
            }
            "severityMin" | "severityMax" => {}
            other => {
                return Err(format!(
                    "when.{other} has no equivalent in cloudo's notification routes{}",
                    if other == "schemaName" {
                        " (ClouDO matched the schema's name; use `schema` with its id)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    if w.contains_key("severityMin") || w.contains_key("severityMax") {
        let bound = |k: &str, d: &str| w.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
        let range = format!(
            "{}-{}",
            bound("severityMin", "Sev0"),
            bound("severityMax", "Sev4")
        );
        when.severity =
            Some(SeverityRange::parse(&range).ok_or_else(|| format!("severity range {range:?}"))?);
    }
    Ok(when)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// ClouDO's shape, as its Terraform module's `routing_config` renders it, plus its
    /// built-in fallback rules.
    const CLOUDO: &str = r##"{
      "version": "1",
      "defaults": {"opsgenie": {"team": "default"}, "slack": {"channel": "#cloudo-default"}},
      "teams": {"payments-core": {"slack": {"channel": "#payments"}, "opsgenie": {"team": "payments"}}},
      "rules": [
        {"when": {"resourceGroupPrefix": "rg-pay", "severityMax": "Sev2", "statusIn": ["failed", "completed"]},
         "then": [{"type": "opsgenie", "team": "payments-core"}, {"type": "slack", "team": "payments-core"}]},
        {"when": {"namespace": "kube-system", "oncall": "true", "finalOnly": true},
         "then": [{"type": "slack", "team": "payments-core", "channel": "#platform"}]},
        {"when": {"isAlert": "true", "statusIn": ["failed", "error", "routed"]},
         "then": [{"type": "opsgenie"}, {"type": "slack"}]},
        {"when": {"any": "*"}, "then": [{"type": "slack"}]}
      ]
    }"##;

    #[test]
    fn cloudo_rules_read_as_notification_routes() {
        let has =
            |v: &str| v == "SLACK_TOKEN_PAYMENTS_CORE" || v == "OPSGENIE_API_KEY_PAYMENTS_CORE";
        let v: Value = serde_json::from_str(CLOUDO).unwrap();
        assert!(looks_like_cloudo(&v));
        let r = from_cloudo(&v, &has).unwrap();
        let pay = &r.teams["payments-core"];
        assert_eq!(
            pay.slack.as_ref().unwrap().channel.as_deref(),
            Some("#payments")
        );
        assert_eq!(
            pay.slack.as_ref().unwrap().token,
            Some(SecretRef::Env {
                env: "SLACK_TOKEN_PAYMENTS_CORE".into()
            })
        );
        assert!(pay.has_opsgenie_key());
        let default = &r.teams[DEFAULT_TEAM];
        assert_eq!(
            default.slack.as_ref().unwrap().channel.as_deref(),
            Some("#cloudo-default")
        );
        assert!(
            !default.has_opsgenie_key() && !default.has_slack_credential(),
            "unset: the defaults"
        );

        let first = &r.rules[0];
        assert_eq!(first.then.team, "payments-core");
        assert_eq!(
            (first.then.opsgenie, first.then.slack.clone()),
            (
                Some(true),
                Some(SlackWhen::Statuses(vec![Status::Failed, Status::Succeeded]))
            )
        );
        assert_eq!(first.when.status, vec![Status::Failed, Status::Succeeded]);
        assert!(
            first
                .when
                .resource_group
                .as_ref()
                .unwrap()
                .matches("RG-Payments")
        );
        assert_eq!(first.when.severity, SeverityRange::parse("Sev0-Sev2"));
        // An action's own channel: a team of its own, same credentials.
        let second = &r.rules[1];
        assert_eq!(second.then.team, "payments-core/#platform");
        let own = &r.teams["payments-core/#platform"];
        assert_eq!(
            own.slack.as_ref().unwrap().channel.as_deref(),
            Some("#platform")
        );
        assert!(own.has_slack_credential());
        assert_eq!(
            (second.when.oncall, second.then.opsgenie),
            (Some(true), Some(false))
        );
        assert_eq!(r.rules[2].when.source, Some(Source::Alert));
        assert_eq!(r.rules[2].then.team, DEFAULT_TEAM);
        assert!(r.rules[3].when.status.is_empty() && r.rules[3].when.namespace.is_none());
        assert_eq!(
            r.rules[3].then.slack,
            Some(SlackWhen::Statuses(FINAL.to_vec())),
            "finalOnly"
        );
        // And the whole document passes the loader as it is.
        assert_eq!(NotifyRoutes::parse(CLOUDO).unwrap().rules.len(), 4);
    }

    #[test]
    fn what_cloudo_cannot_mean_here_is_refused_by_rule() {
        let refused = |when: &str, then: &str| {
            let doc =
                format!(r#"{{"version": "1", "rules": [{{"when": {when}, "then": {then}}}]}}"#);
            NotifyRoutes::parse(&doc).unwrap_err().0
        };
        let slack = r#"[{"type": "slack"}]"#;
        assert!(refused(r#"{"schemaName": "x"}"#, slack).contains("rule 0: when.schemaName"));
        assert!(refused(r#"{"resourceId": "/subscriptions/x"}"#, slack).contains("resourceId"));
        assert!(
            refused("{}", r#"[{"type": "slack", "token": "xoxb-1"}]"#).contains("inline token")
        );
        assert!(
            refused(
                "{}",
                r#"[{"type": "slack", "team": "a"}, {"type": "opsgenie", "team": "b"}]"#
            )
            .contains("several teams")
        );
        // One team, one of its actions with a channel of its own: that channel's team.
        let doc = r##"{"version": "1", "teams": {"x": {}}, "rules": [{"when": {},
            "then": [{"type": "opsgenie", "team": "x"}, {"type": "slack", "team": "x", "channel": "#y"}]}]}"##;
        let r = NotifyRoutes::parse(doc).unwrap();
        assert_eq!(r.rules[0].then.team, "x/#y");
        assert_eq!(r.rules[0].then.opsgenie, Some(true));
        assert!(refused(r#"{"statusIn": ["done"]}"#, slack).contains("unknown status"));
        assert!(refused(r#"{"statusIn": "failed"}"#, slack).contains("a list of statuses"));
        assert!(refused(r#"{"severityMax": 2}"#, slack).contains("expected a string"));
        assert!(refused(r#"{"resourceName": 7}"#, slack).contains("expected a string"));
        assert!(
            !refused("{}", r#"[{"type": "slack", "token": "xoxb-secret"}]"#)
                .contains("xoxb-secret")
        );
    }
}
