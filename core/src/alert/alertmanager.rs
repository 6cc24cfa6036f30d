//! Prometheus Alertmanager webhook payloads (version "4"): one [`Alert`] per alert of the
//! group.

use serde_json::Value;

use super::json::{at, pairs_of, text_at};
use super::{Alert, AlertError, AlertSource, Condition, Severity};

/// Alertmanager's "no end time" (firing alerts).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn parse(v: &Value) -> Result<Vec<Alert>, AlertError> {
    let obj = v
        .as_object()
        .ok_or_else(|| AlertError::new("$", "expected a JSON object (Alertmanager webhook v4)"))?;
    match obj.get("version") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "4" => {}
        Some(other) => {
            return Err(AlertError::new(
                "$.version",
                format!("expected \"4\", got {other}"),
            ));
        }
    }
    let alerts = match obj.get("alerts") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(AlertError::new("$.alerts", "expected an array")),
        None => return Err(AlertError::new("$.alerts", "missing")),
    };
    let common_annotations = pairs_of(obj.get("commonAnnotations"));
    alerts
        .iter()
        .enumerate()
        .map(|(i, a)| parse_one(i, a, &common_annotations))
        .collect()
}

fn parse_one(i: usize, a: &Value, common: &[(String, String)]) -> Result<Alert, AlertError> {
    let path = |f: &str| format!("$.alerts[{i}]{f}");
    if !a.is_object() {
        return Err(AlertError::new(path(""), "expected an object"));
    }
    let status = text_at(a, &["status"]);
    let condition = match status.as_str() {
        "firing" => Condition::Fired,
        "resolved" => Condition::Resolved,
        "" => return Err(AlertError::new(path(".status"), "missing")),
        other => {
            return Err(AlertError::new(
                path(".status"),
                format!("expected \"firing\" or \"resolved\", got {other:?}"),
            ));
        }
    };
    for field in ["labels", "annotations"] {
        if let Some(v) = at(a, &[field])
            && !v.is_object()
        {
            return Err(AlertError::new(
                path(&format!(".{field}")),
                "expected an object",
            ));
        }
    }
    let labels = pairs_of(at(a, &["labels"]));
    let mut annotations = pairs_of(at(a, &["annotations"]));
    for (k, v) in common {
        if !annotations.iter().any(|(ak, _)| ak == k) {
            annotations.push((k.clone(), v.clone()));
        }
    }
    let starts_at = text_at(a, &["startsAt"]);
    let ends_at = text_at(a, &["endsAt"]);
    let fingerprint = text_at(a, &["fingerprint"]);
    let label = |k: &str| {
        labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let dedup_key = if fingerprint.is_empty() {
        // No fingerprint: the sorted labels identify the series.
        let mut sorted = labels.clone();
        sorted.sort();
        (!sorted.is_empty()).then(|| format!("am:{sorted:?}:{status}:{starts_at}"))
    } else {
        Some(format!("am:{fingerprint}:{status}:{starts_at}"))
    };
    let mut extra = Vec::new();
    let generator = text_at(a, &["generatorURL"]);
    if !generator.is_empty() {
        extra.push(("ALERT_GENERATOR_URL".to_string(), generator));
    }
    Ok(Alert {
        source: Some(AlertSource::Alertmanager),
        id: fingerprint,
        rule: label("alertname"),
        severity: Severity::from_word(&label("severity")),
        signal_type: "Metric".into(),
        monitoring_service: "Alertmanager".into(),
        condition: Some(condition),
        fired_at: starts_at,
        resolved_at: if condition == Condition::Resolved && ends_at != ZERO_TIME {
            ends_at
        } else {
            String::new()
        },
        labels,
        annotations,
        dedup_key,
        extra,
        ..Alert::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_shapes_name_the_path() {
        let cases = [
            (json!("x"), "$"),
            (json!({"version": "3", "alerts": []}), "$.version"),
            (json!({"version": "4"}), "$.alerts"),
            (json!({"alerts": {}}), "$.alerts"),
            (json!({"alerts": [1]}), "$.alerts[0]"),
            (
                json!({"alerts": [{"status": "firing"}, {"labels": {}}]}),
                "$.alerts[1].status",
            ),
            (
                json!({"alerts": [{"status": "pending"}]}),
                "$.alerts[0].status",
            ),
            (
                json!({"alerts": [{"status": "firing", "labels": []}]}),
                "$.alerts[0].labels",
            ),
        ];
        for (v, path) in cases {
            assert_eq!(parse(&v).expect_err("refused").path, path, "{v}");
        }
    }
}
