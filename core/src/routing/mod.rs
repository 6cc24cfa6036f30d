//! Routing rules: which runbooks an alert runs when the trigger URL does not name one.
//!
//! A rules file (YAML or JSON) is a list of rules; each rule matches alert fields with
//! exact, glob, prefix or regex matchers and names one or more schema ids. Rules are tried
//! in order; the first match wins unless it says `continue: true`.
//!
//! ```yaml
//! rules:
//!   - name: restart crashlooping pods
//!     when:
//!       alert_rule: KubePodCrashLooping
//!       severity: Sev0-Sev2
//!       monitor_condition: Fired
//!       resource_group: {prefix: rg-prod-}
//!       labels: {namespace: {regex: "^payments(-.*)?$"}}
//!     run: [restart-pod]
//! ```
//!
//! Exact, prefix and glob matchers ignore case (Azure names are case-insensitive); a regex
//! is used as written (add `(?i)` for case-insensitive).

mod doc;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::alert::{Alert, Condition, Severity};

/// A rules document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRules {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub when: When,
    /// Schema ids to run; one or more.
    #[serde(deserialize_with = "one_or_many")]
    pub run: Vec<String>,
    /// Keep evaluating later rules after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
}

/// What a rule matches on; every given field must match (AND).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_rule: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<SeverityRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_condition: Option<ConditionFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_type: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring_service: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<Matcher>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Matcher>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Matcher>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, Matcher>,
}

/// How one value is matched.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Matcher {
    Exact(String),
    AnyOf(Vec<Matcher>),
    Glob {
        glob: String,
        #[serde(skip)]
        re: Option<regex::Regex>,
    },
    Prefix {
        prefix: String,
    },
    Regex {
        regex: String,
        #[serde(skip)]
        re: Option<regex::Regex>,
    },
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Exact(String),
            AnyOf(Vec<Matcher>),
            Object(BTreeMap<String, String>),
        }
        match Raw::deserialize(d)? {
            Raw::Exact(s) => Ok(Matcher::Exact(s)),
            Raw::AnyOf(v) => Ok(Matcher::AnyOf(v)),
            Raw::Object(m) => {
                let mut it = m.into_iter();
                let (Some((kind, value)), None) = (it.next(), it.next()) else {
                    return Err(serde::de::Error::custom(
                        "a matcher object has exactly one of: exact, glob, prefix, regex",
                    ));
                };
                match kind.as_str() {
                    "exact" => Ok(Matcher::Exact(value)),
                    "prefix" => Ok(Matcher::Prefix { prefix: value }),
                    "glob" => {
                        let re = glob_regex(&value).map_err(serde::de::Error::custom)?;
                        Ok(Matcher::Glob {
                            glob: value,
                            re: Some(re),
                        })
                    }
                    "regex" => {
                        let re = regex::Regex::new(&value).map_err(|e| {
                            serde::de::Error::custom(format!("invalid regex {value:?}: {e}"))
                        })?;
                        Ok(Matcher::Regex {
                            regex: value,
                            re: Some(re),
                        })
                    }
                    other => Err(serde::de::Error::custom(format!(
                        "unknown matcher {other:?}; use exact, glob, prefix or regex"
                    ))),
                }
            }
        }
    }
}

/// `*` any run, `?` one character; the rest literal; whole value, case-insensitive.
fn glob_regex(glob: &str) -> Result<regex::Regex, String> {
    let mut re = String::from("(?is)^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| format!("invalid glob {glob:?}: {e}"))
}

impl Matcher {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s.eq_ignore_ascii_case(value),
            Matcher::AnyOf(v) => v.iter().any(|m| m.matches(value)),
            Matcher::Prefix { prefix } => value
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
            Matcher::Glob { re, .. } | Matcher::Regex { re, .. } => {
                re.as_ref().is_some_and(|re| re.is_match(value))
            }
        }
    }
}

/// A range of severities, written `Sev1`, `Sev0-Sev2` or `{min: Sev0, max: Sev2}`
/// (`min` is the most severe end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeverityRange {
    pub min: Severity,
    pub max: Severity,
}

impl SeverityRange {
    pub fn contains(&self, s: Severity) -> bool {
        self.min <= s && s <= self.max
    }

    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let (a, b) = (a.parse::<Severity>().ok()?, b.parse::<Severity>().ok()?);
        Some(Self {
            min: a.min(b),
            max: a.max(b),
        })
    }
}

impl fmt::Display for SeverityRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

impl Serialize for SeverityRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for SeverityRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Range { min: String, max: String },
        }
        let bad = |s: &str| {
            serde::de::Error::custom(format!(
                "invalid severity {s:?}; use Sev0..Sev4, a range like Sev0-Sev2, or {{min, max}}"
            ))
        };
        match Raw::deserialize(d)? {
            Raw::Text(s) => SeverityRange::parse(&s).ok_or_else(|| bad(&s)),
            Raw::Range { min, max } => SeverityRange::parse(&format!("{min}-{max}"))
                .ok_or_else(|| bad(&format!("{min}-{max}"))),
        }
    }
}

/// `Fired`, `Resolved` or `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConditionFilter {
    #[default]
    Any,
    Only(Condition),
}

impl ConditionFilter {
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("any") || s == "*" {
            return Some(ConditionFilter::Any);
        }
        Condition::parse(s).map(ConditionFilter::Only)
    }

    pub fn allows(&self, c: Option<Condition>) -> bool {
        match self {
            ConditionFilter::Any => true,
            ConditionFilter::Only(want) => c == Some(*want),
        }
    }
}

impl fmt::Display for ConditionFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionFilter::Any => f.write_str("any"),
            ConditionFilter::Only(c) => f.write_str(c.as_str()),
        }
    }
}

impl Serialize for ConditionFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ConditionFilter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ConditionFilter::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("expected Fired, Resolved or any, got {s:?}"))
        })
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let v = match Raw::deserialize(d)? {
        Raw::One(s) => vec![s],
        Raw::Many(v) => v,
    };
    if v.is_empty() || v.iter().any(|s| s.trim().is_empty()) {
        return Err(serde::de::Error::custom("run: name one or more schema ids"));
    }
    Ok(v)
}

/// A rules document that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RoutesError(pub String);

impl RoutingRules {
    /// Parses JSON (if it starts with `{` or `[`) or YAML.
    pub fn parse(text: &str) -> Result<Self, RoutesError> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let de = &mut serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de)
                .map_err(|e| RoutesError(format!("at {}: {}", e.path(), e.inner())))
        } else {
            serde_saphyr::from_str(text).map_err(|e| RoutesError(e.to_string()))
        }
    }

    /// Every schema id a rule names must exist.
    pub fn check_schemas(&self, exists: impl Fn(&str) -> bool) -> Result<(), RoutesError> {
        for (i, rule) in self.rules.iter().enumerate() {
            for id in &rule.run {
                if !exists(id) {
                    return Err(RoutesError(format!(
                        "rule {i}{}: runs schema {id:?}, which is not in the catalog",
                        rule.name
                            .as_deref()
                            .map(|n| format!(" ({n:?})"))
                            .unwrap_or_default()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The rules that match, in order, honouring `continue`.
    pub fn matching<'a>(&'a self, alert: &Alert) -> Vec<(usize, &'a Rule)> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.when.matches(alert) {
                out.push((i, rule));
                if !rule.continue_ {
                    break;
                }
            }
        }
        out
    }
}

fn pairs_match(want: &BTreeMap<String, Matcher>, have: &[(String, String)]) -> bool {
    want.iter().all(|(k, m)| {
        have.iter()
            .find(|(hk, _)| hk.eq_ignore_ascii_case(k))
            .is_some_and(|(_, v)| m.matches(v))
    })
}

impl When {
    pub fn matches(&self, a: &Alert) -> bool {
        let r = a.resource();
        let one = |m: &Option<Matcher>, v: &str| m.as_ref().is_none_or(|m| m.matches(v));
        one(&self.alert_rule, &a.rule)
            && self
                .severity
                .is_none_or(|range| a.severity.is_some_and(|s| range.contains(s)))
            && self.monitor_condition.is_none_or(|f| f.allows(a.condition))
            && one(&self.signal_type, &a.signal_type)
            && one(&self.monitoring_service, &a.monitoring_service)
            && one(&self.resource_id, &r.id)
            && one(&self.resource_group, &r.group)
            && one(&self.resource_name, &r.name)
            && one(&self.subscription, &r.subscription)
            && one(&self.resource_type, &r.kind)
            && pairs_match(&self.labels, &a.labels)
            && pairs_match(&self.annotations, &a.annotations)
            && pairs_match(&self.dimensions, &a.dimensions)
    }
}

#[cfg(test)]
mod tests;
