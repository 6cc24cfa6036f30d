//! A [`Schema`] back in ClouDO's catalog format: the entity fields that load into the same
//! schema (what `PUT /api/schemas/{id}` takes, so an editor can change one field and keep
//! the rest).

use serde_json::{Map, Value, json};

use super::Schema;

impl Schema {
    /// The ClouDO entity that loads into this schema (without `partition_key`, which is
    /// the group's).
    pub fn to_entity(&self) -> Value {
        let mut m = Map::new();
        let mut set = |k: &str, v: Value| {
            if !v.is_null() {
                m.insert(k.to_string(), v);
            }
        };
        set("id", json!(self.id));
        set("name", json!(self.name));
        set("description", json!(self.description));
        set("runbook", json!(self.runbook));
        set("run_args", json!(self.run_args));
        set("worker", json!(self.pool));
        set("oncall", json!(self.oncall));
        set("require_approval", json!(self.require_approval));
        set("approval_timeout", json!(self.approval.timeout_secs));
        set("approvals_required", json!(self.approval.required));
        set("self_approval", json!(self.approval.self_approval));
        set("tags", json!(self.tags));
        set("timeout", json!(self.timeout_secs));
        set("enabled", json!(self.enabled));
        set("monitor_condition", json!(self.monitor_condition));
        set("severity", json!(self.severity));
        set("ref", json!(self.git_ref));
        let rt = &self.runtime;
        set("sandbox", json!(rt.sandbox));
        set("network", json!(rt.network));
        set("image", json!(rt.image));
        if let Some(a) = &rt.azure {
            set("azure", json!(true));
            set("azure_identity", json!(a.identity));
            set("azure_scopes", json!(a.scopes));
        }
        if let Some(a) = &rt.aks {
            set("aks", json!(true));
            set("aks_cluster", json!(a.cluster));
        }
        let limits = super::Limits {
            timeout: None,
            ..rt.limits
        };
        if limits != super::Limits::default() {
            set("limits", json!(limits));
        }
        if !self.secrets.is_empty() {
            set("secrets", json!(self.secrets));
        }
        set("retry_on_lost", json!(self.retry_on_lost));
        set("priority", json!(self.priority));
        let p = &self.policy;
        set("max_concurrency", json!(p.limits.max_concurrency));
        set("concurrency_key", json!(p.limits.concurrency_key));
        set("concurrency_policy", json!(p.limits.concurrency_policy));
        set("max_runs_per_hour", json!(p.limits.max_runs_per_hour));
        set(
            "max_runs_per_hour_per_resource",
            json!(p.limits.max_runs_per_hour_per_resource),
        );
        let g = &p.guardrails;
        for (k, v) in [
            ("allowed_namespaces", &g.allowed_namespaces),
            ("allowed_resource_groups", &g.allowed_resource_groups),
            ("allowed_subscriptions", &g.allowed_subscriptions),
            ("allowed_clusters", &g.allowed_clusters),
        ] {
            if !v.is_empty() {
                set(k, json!(v));
            }
        }
        set("dry_run", json!(p.dry_run));
        set("schedule", json!(self.schedule));
        set("schedule_tz", json!(self.schedule_tz));
        set("verify", json!(self.verify));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::Catalog;

    /// Every field survives the way back: a full entry and a minimal one.
    #[test]
    fn an_entity_loads_into_the_same_schema() {
        let text = r#"[{"partition_key": "p", "entity": [
            {"id": "full", "name": "Full", "description": "d", "runbook": "a/b.sh",
             "run_args": "--x 'y z'", "worker": "pool-1", "oncall": "true",
             "require_approval": true, "approval_timeout": 600, "approvals_required": 2,
             "self_approval": true, "tags": "a,b", "timeout": 120, "enabled": false,
             "monitor_condition": "fired", "severity": "Sev0-Sev2", "ref": "main",
             "sandbox": "bwrap", "network": true, "image": "img:1",
             "limits": {"memory_mb": 256, "pids": 64, "cpu": 0.5},
             "secrets": ["DB_PASSWORD"], "retry_on_lost": 2, "priority": "P2",
             "max_concurrency": 1, "concurrency_key": "RESOURCE_NAME",
             "concurrency_policy": "skip", "max_runs_per_hour": 5,
             "max_runs_per_hour_per_resource": 2, "allowed_namespaces": ["ns"],
             "allowed_resource_groups": "rg1,rg2", "allowed_subscriptions": ["s"],
             "dry_run": true, "schedule": "0 3 * * *", "schedule_tz": "Europe/Rome",
             "verify": {"runbook": "v.sh", "delay_secs": 30}},
            {"id": "min", "runbook": "m.sh"}]}]"#;
        let first = Catalog::parse(text).unwrap();
        let entities: Vec<_> = first.schemas().iter().map(|s| s.to_entity()).collect();
        let again = serde_json::json!([{"partition_key": "p", "entity": entities}]).to_string();
        let second = Catalog::parse(&again).unwrap();
        assert_eq!(first.schemas(), second.schemas());
    }
}
