//! Azure Monitor action-group payloads in the common alert schema.
//!
//! Every variant of `alertContext` is accepted: metric (static, dynamic, availability:
//! `condition.allOf[].dimensions`), log search v1 (flat PascalCase, `Dimensions`), Log
//! Alerts V2 (`condition.allOf[].dimensions`), Prometheus (`labels`, `annotations`), activity
//! log, resource health, service health (`impactedServices` as an array or as a JSON
//! string; numbers or strings for `eventSource` / `level`) and smart detection.

use serde_json::Value;

use super::json::{at, name_values, pairs_of, strings_at, text, text_at};
use super::{Alert, AlertError, AlertSource, Condition, Severity};

pub const SCHEMA_ID: &str = "azureMonitorCommonAlertSchema";

/// Does this body claim to be a common-schema alert (so that a bad one is an error rather
/// than an arbitrary manual-trigger body)?
pub fn looks_like_alert(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.contains_key("schemaId"))
}

pub fn parse(v: &Value) -> Result<Alert, AlertError> {
    let obj = v.as_object().ok_or_else(|| {
        AlertError::new(
            "$",
            "expected a JSON object in the Azure Monitor common alert schema",
        )
    })?;
    match obj.get("schemaId") {
        Some(Value::String(s)) if s == SCHEMA_ID => {}
        Some(Value::String(s)) => {
            return Err(AlertError::new(
                "$.schemaId",
                format!(
                    "expected \"{SCHEMA_ID}\", got {s:?}; enable the common alert schema on the action group"
                ),
            ));
        }
        Some(_) => return Err(AlertError::new("$.schemaId", "expected a string")),
        None => {
            return Err(AlertError::new(
                "$.schemaId",
                format!(
                    "missing; expected \"{SCHEMA_ID}\" (enable the common alert schema on the action group)"
                ),
            ));
        }
    }
    let data = match obj.get("data") {
        Some(d @ Value::Object(_)) => d,
        Some(_) => return Err(AlertError::new("$.data", "expected an object")),
        None => return Err(AlertError::new("$.data", "missing")),
    };
    let ess = match at(data, &["essentials"]) {
        Some(e @ Value::Object(_)) => e,
        Some(_) => return Err(AlertError::new("$.data.essentials", "expected an object")),
        None => return Err(AlertError::new("$.data.essentials", "missing")),
    };
    let ctx = match at(data, &["alertContext"]) {
        None => &Value::Null,
        Some(c @ Value::Object(_)) => c,
        Some(_) => return Err(AlertError::new("$.data.alertContext", "expected an object")),
    };

    let id = text_at(ess, &["alertId"]);
    let rule = text_at(ess, &["alertRule"]);
    let condition = Condition::parse(&text_at(ess, &["monitorCondition"]));
    let mut target_ids = strings_at(ess, &["alertTargetIDs"]);
    if target_ids.is_empty() {
        target_ids = strings_at(ess, &["alertTargetIds"]);
    }
    let mut dimensions = Vec::new();
    if let Some(Value::Array(all)) = at(ctx, &["condition", "allOf"]) {
        for c in all {
            dimensions.extend(name_values(at(c, &["dimensions"])));
        }
    }
    dimensions.extend(name_values(at(ctx, &["Dimensions"])));

    Ok(Alert {
        source: Some(AlertSource::AzureMonitor),
        // The rule is part of the key: Azure's test notifications of different rules carry
        // the same alertId, and must not be merged.
        dedup_key: (!id.is_empty()).then(|| {
            format!(
                "azure:{rule}:{id}:{}",
                condition.map(Condition::as_str).unwrap_or("-")
            )
        }),
        id,
        rule,
        severity: text_at(ess, &["severity"]).parse::<Severity>().ok(),
        signal_type: text_at(ess, &["signalType"]),
        monitoring_service: text_at(ess, &["monitoringService"]),
        condition,
        fired_at: text_at(ess, &["firedDateTime"]),
        resolved_at: text_at(ess, &["resolvedDateTime"]),
        target_ids,
        configuration_items: strings_at(ess, &["configurationItems"]),
        context_resource_id: text_at(ctx, &["resourceId"]),
        context_resource_group: [
            text_at(ctx, &["resourceGroupName"]),
            text_at(ctx, &["resourceGroup"]),
        ]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default(),
        context_resource_name: text_at(ctx, &["resourceName"]),
        labels: pairs_of(at(ctx, &["labels"])),
        annotations: pairs_of(at(ctx, &["annotations"])),
        dimensions,
        extra: impacted(ctx),
    })
}

/// Service health: `ALERT_IMPACTED_SERVICES` and `ALERT_IMPACTED_REGIONS` from
/// `properties.impactedServices`, which real alerts send as a JSON string and test actions
/// as an array.
fn impacted(ctx: &Value) -> Vec<(String, String)> {
    let parsed;
    let list = match at(ctx, &["properties", "impactedServices"]) {
        Some(Value::Array(a)) => a,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(a)) => {
                parsed = a;
                &parsed
            }
            _ => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    let mut services = Vec::new();
    let mut regions = Vec::new();
    for s in list {
        if let Some(name) = at(s, &["ServiceName"]).and_then(text) {
            services.push(name);
        }
        if let Some(Value::Array(rs)) = at(s, &["ImpactedRegions"]) {
            for r in rs {
                if let Some(name) = at(r, &["RegionName"]).and_then(text)
                    && !regions.contains(&name)
                {
                    regions.push(name);
                }
            }
        }
    }
    if services.is_empty() && regions.is_empty() {
        return Vec::new();
    }
    vec![
        ("ALERT_IMPACTED_SERVICES".into(), services.join(",")),
        ("ALERT_IMPACTED_REGIONS".into(), regions.join(",")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_shapes_name_the_path() {
        let cases = [
            (json!([1]), "$"),
            (json!({"data": {}}), "$.schemaId"),
            (json!({"schemaId": "other", "data": {}}), "$.schemaId"),
            (json!({"schemaId": SCHEMA_ID}), "$.data"),
            (json!({"schemaId": SCHEMA_ID, "data": []}), "$.data"),
            (
                json!({"schemaId": SCHEMA_ID, "data": {}}),
                "$.data.essentials",
            ),
            (
                json!({"schemaId": SCHEMA_ID, "data": {"essentials": 3}}),
                "$.data.essentials",
            ),
            (
                json!({"schemaId": SCHEMA_ID, "data": {"essentials": {}, "alertContext": "x"}}),
                "$.data.alertContext",
            ),
        ];
        for (v, path) in cases {
            assert_eq!(parse(&v).expect_err("refused").path, path, "{v}");
        }
    }

    #[test]
    fn nulls_everywhere_are_fine() {
        let v = json!({"schemaId": SCHEMA_ID, "data": {"essentials": {
            "alertId": null, "alertRule": null, "severity": null, "alertTargetIDs": null,
            "configurationItems": null, "monitorCondition": null}, "alertContext": null,
            "customProperties": null}});
        let a = parse(&v).expect("parsed");
        assert_eq!(a.dedup_key, None);
        assert_eq!(a.env(true)["RESOURCE_ID"], "");
    }
}
