//! On-call notifications: who is told (routing to a team), and the durable outbox record of
//! each message to send. Sending is the orchestrator's; this is the pure part.
//!
//! ```yaml
//! teams:
//!   payments:
//!     slack: {channel: "#payments-oncall"}            # bot token: the default one
//!     opsgenie:
//!       key: {env: OPSGENIE_KEY_PAYMENTS}             # or {file: /run/secrets/og-payments}
//!       responders: [{type: team, name: Payments}]
//! rules:
//!   - name: payments resources page the payments team
//!     when: {resource_group: {prefix: rg-payments-}, severity: Sev0-Sev2}
//!     then: {team: payments}
//!   - when: {schema: noisy-check}
//!     then: {team: default, opsgenie: false, slack: [failed, succeeded]}
//! ```
//!
//! The first matching rule names the team and the channels; with no match, the trigger's
//! team (`/api/Trigger/{team}`) when it is a defined team, else `default`. A team's keys,
//! tokens and webhook URLs are references to secrets (environment or file), resolved where
//! they are used and never stored.

pub mod cloudo;
mod outbox;

pub use outbox::{Delivery, Notification};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::execution::{Execution, Status};
use crate::routing::{Matcher, SeverityRange};

/// The name of the team used when nothing else names one.
pub const DEFAULT_TEAM: &str = "default";

/// Statuses that page (and, by default, post to Slack).
pub const FAILURES: [Status; 4] = [Status::Failed, Status::Error, Status::Timeout, Status::Lost];

/// A secret given by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretRef {
    Env {
        env: String,
    },
    File {
        #[schema(value_type = String)]
        file: PathBuf,
    },
}

impl SecretRef {
    /// The value, read now (trimmed of a trailing newline for files).
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            SecretRef::Env { env } => std::env::var(env)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("environment variable {env} is not set")),
            SecretRef::File { file } => std::fs::read_to_string(file)
                .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read {}: {e}", file.display())),
        }
    }
}

/// An Opsgenie responder: `{type: team|user|escalation|schedule, name|id|username}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Responder {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackTarget {
    /// Channel for `chat.postMessage` (default: `CLOUDO_SLACK_CHANNEL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Bot token (default: `CLOUDO_SLACK_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretRef>,
    /// An incoming-webhook URL instead of the Web API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<SecretRef>,
    /// Who may approve this team's requests with Slack's buttons: Slack user ids (`U…`,
    /// `W…`) and user-group ids (`S…`). Empty: anyone in the channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieTarget {
    /// The team's API key (default: `CLOUDO_OPSGENIE_API_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretRef>,
    /// Base URL for this team: `us`, `eu`, `jsm` or a URL (default: the global one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<Responder>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Team {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie: Option<OpsgenieTarget>,
}

impl Team {
    /// The team names its own Opsgenie key.
    pub fn has_opsgenie_key(&self) -> bool {
        self.opsgenie.as_ref().is_some_and(|o| o.key.is_some())
    }

    /// The team names its own Slack token or webhook.
    pub fn has_slack_credential(&self) -> bool {
        self.slack
            .as_ref()
            .is_some_and(|s| s.token.is_some() || s.webhook.is_some())
    }
}

/// Where an execution came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Alert,
    Manual,
}

/// What a rule matches; every given field must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyWhen {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<SeverityRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oncall: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The team named in the trigger URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_team: Option<Matcher>,
}

/// Slack: `true` (the default statuses: failures), `false`, or a list of statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum SlackWhen {
    On(bool),
    Statuses(Vec<Status>),
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Then {
    pub team: String,
    /// Page through Opsgenie / JSM (on-call runbooks only) [default: true].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackWhen>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub when: NotifyWhen,
    pub then: Then,
}

/// The notification routing document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRoutes {
    #[serde(default)]
    pub teams: BTreeMap<String, Team>,
    #[serde(default)]
    pub rules: Vec<NotifyRule>,
}

/// What routing decided for one execution.
#[derive(Debug, Clone, PartialEq, Eq, utoipa::ToSchema)]
pub struct Decision {
    pub team: String,
    pub opsgenie: bool,
    /// Statuses that post to Slack.
    pub slack: Vec<Status>,
    /// Which rule decided (`None`: the defaults).
    pub rule: Option<usize>,
}

/// The facts about an execution that routing looks at.
fn severity_of(e: &Execution) -> Option<crate::alert::Severity> {
    e.env.get("ALERT_SEVERITY").and_then(|s| s.parse().ok())
}

pub fn is_alert(e: &Execution) -> bool {
    e.env.get("ALERT_ID").is_some_and(|v| !v.is_empty())
}

impl NotifyWhen {
    pub fn matches(&self, e: &Execution) -> bool {
        let env = |k: &str| e.env.get(k).map(String::as_str).unwrap_or("");
        let one = |m: &Option<Matcher>, v: &str| m.as_ref().is_none_or(|m| m.matches(v));
        (self.status.is_empty() || self.status.contains(&e.status))
            && self
                .severity
                .is_none_or(|r| severity_of(e).is_some_and(|s| r.contains(s)))
            && one(&self.schema, &e.schema_id)
            && one(&self.resource_group, env("RESOURCE_RG"))
            && one(&self.resource_name, env("RESOURCE_NAME"))
            && one(&self.namespace, env("AKS_NAMESPACE"))
            && self.oncall.is_none_or(|o| o == e.oncall)
            && self.source.is_none_or(|s| {
                s == if is_alert(e) {
                    Source::Alert
                } else {
                    Source::Manual
                }
            })
            && one(&self.trigger_team, e.team.as_deref().unwrap_or(""))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotifyRoutesError(pub String);

impl NotifyRoutes {
    /// Parses JSON (if it starts with `{`; ClouDO's `ROUTING_RULES` too, see [`cloudo`]) or
    /// YAML, and checks that rules name known teams (`default` always exists).
    pub fn parse(text: &str) -> Result<Self, NotifyRoutesError> {
        let json = text.trim_start().starts_with('{');
        if json
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
            && cloudo::looks_like_cloudo(&v)
        {
            // ClouDO's ROUTING_RULES, as its users have them.
            let routes = cloudo::from_cloudo(&v, &|var| std::env::var_os(var).is_some())?;
            return routes.checked();
        }
        let routes: Self = if json {
            let de = &mut serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de)
                .map_err(|e| NotifyRoutesError(format!("at {}: {}", e.path(), e.inner())))?
        } else {
            serde_saphyr::from_str(text).map_err(|e| NotifyRoutesError(e.to_string()))?
        };
        routes.checked()
    }

    /// Rules name known teams (`default` always exists).
    fn checked(self) -> Result<Self, NotifyRoutesError> {
        let routes = self;
        for (i, r) in routes.rules.iter().enumerate() {
            if r.then.team != DEFAULT_TEAM && !routes.teams.contains_key(&r.then.team) {
                return Err(NotifyRoutesError(format!(
                    "rule {i}: team {:?} is not defined under teams",
                    r.then.team
                )));
            }
        }
        Ok(routes)
    }

    pub fn team(&self, name: &str) -> Team {
        self.teams.get(name).cloned().unwrap_or_default()
    }

    /// Team and channels for an execution (in its current status).
    pub fn decide(&self, e: &Execution) -> Decision {
        for (i, r) in self.rules.iter().enumerate() {
            if r.when.matches(e) {
                return Decision {
                    team: r.then.team.clone(),
                    opsgenie: r.then.opsgenie.unwrap_or(true),
                    slack: match &r.then.slack {
                        None | Some(SlackWhen::On(true)) => FAILURES.to_vec(),
                        Some(SlackWhen::On(false)) => Vec::new(),
                        Some(SlackWhen::Statuses(s)) => s.clone(),
                    },
                    rule: Some(i),
                };
            }
        }
        let team = e
            .team
            .clone()
            .filter(|t| self.teams.contains_key(t))
            .unwrap_or_else(|| DEFAULT_TEAM.to_string());
        Decision {
            team,
            opsgenie: true,
            // Default Slack traffic: failures of on-call runbooks.
            slack: if e.oncall {
                FAILURES.to_vec()
            } else {
                Vec::new()
            },
            rule: None,
        }
    }
}

#[cfg(test)]
mod tests;
