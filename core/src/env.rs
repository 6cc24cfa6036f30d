//! The runbook environment contract: exactly which variables a runbook sees.
//!
//! A runbook starts from an empty environment. It gets `PATH`, `HOME`, `LANG`, the `CLOUDO_*`
//! execution variables and the alert-context variables of ClouDO's contract (always defined,
//! empty when the trigger carried no alert, so `set -u` runbooks work). Nothing of the
//! worker's own environment leaks through (ClouDO's defect §9.1-8 and §9.3-27).

use std::collections::BTreeMap;

use crate::job::Job;
use crate::time;

/// `PATH` given to every runbook.
pub const RUNBOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Alert-context variables that are always defined (empty when unknown).
pub const CONTEXT_VARS: [&str; 8] = [
    "MONITOR_CONDITION",
    "RESOURCE_ID",
    "RESOURCE_RG",
    "RESOURCE_NAME",
    "AKS_JOB",
    "AKS_DEPLOYMENT",
    "AKS_NAMESPACE",
    "AKS_POD",
];

/// Prefixes of names a trigger may set (alert context). Anything else in a job's `env` is
/// dropped by the worker, so a job can never set `PATH`, `LD_PRELOAD` or `BASH_ENV`.
const CONTEXT_PREFIXES: [&str; 6] = ["RESOURCE_", "AKS_", "ALERT_", "MONITOR_", "CLOUDO_", "K8S_"];

/// The largest value a single variable may carry (the payload excepted).
pub const MAX_VALUE_BYTES: usize = 4096;
/// The largest payload passed in `CLOUDO_PAYLOAD`: the kernel refuses to start a program
/// with one environment string over 128 KiB (`Argument list too long`). A larger payload
/// leaves `CLOUDO_PAYLOAD` empty; `CLOUDO_PAYLOAD_FILE` (set by every sandbox) always has it.
pub const MAX_ENV_PAYLOAD_BYTES: usize = 64 * 1024;

/// May a job carry this variable name?
pub fn is_contract_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && CONTEXT_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The environment of one runbook run, with `payload` (the trigger's body), but for `HOME`
/// and `CLOUDO_PAYLOAD_FILE`: each sandbox adds those, pointing at the private working
/// directory it creates and the payload's file in it.
pub fn runbook_env(job: &Job, payload: Option<&str>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for name in CONTEXT_VARS {
        env.insert(name.to_string(), String::new());
    }
    for (k, v) in &job.env {
        if is_contract_name(k) {
            env.insert(k.clone(), truncate(v, MAX_VALUE_BYTES).to_string());
        }
    }
    let fixed = [
        ("PATH", RUNBOOK_PATH.to_string()),
        ("LANG", "C.UTF-8".to_string()),
        ("CLOUDO_EXEC_ID", job.exec_id.to_string()),
        ("CLOUDO_SCHEMA_ID", job.schema_id.clone()),
        ("CLOUDO_NAME", job.name.clone()),
        ("CLOUDO_RUNBOOK", job.runbook.clone()),
        ("CLOUDO_WORKER", job.pool.clone()),
        ("CLOUDO_ONCALL", job.oncall.to_string()),
        ("CLOUDO_REQUESTED_AT", time::rfc3339(job.requested_at)),
        (
            "CLOUDO_DRY_RUN",
            if job.dry_run { "1" } else { "0" }.to_string(),
        ),
        (
            "CLOUDO_PAYLOAD",
            payload
                .filter(|p| p.len() <= MAX_ENV_PAYLOAD_BYTES)
                .unwrap_or_default()
                .to_string(),
        ),
    ];
    for (k, v) in fixed {
        env.insert(k.to_string(), v);
    }
    env
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    &s[..crate::text::floor_char_boundary(s, max)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::ExecId;

    fn job(env: &[(&str, &str)]) -> Job {
        Job {
            exec_id: ExecId::generate(),
            schema_id: "s".into(),
            name: "n".into(),
            runbook: "r.sh".into(),
            runbook_ref: None,
            run_args: String::new(),
            runtime: Default::default(),
            secrets: Vec::new(),
            pool: "default".into(),
            oncall: true,
            timeout_secs: 5,
            requested_at: time::now(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            payload: None,
            payload_bytes: 0,
            dry_run: false,
            not_before: None,
        }
    }

    #[test]
    fn jobs_cannot_set_process_variables() {
        let env = runbook_env(
            &job(&[
                ("PATH", "/evil"),
                ("LD_PRELOAD", "x.so"),
                ("BASH_ENV", "/tmp/x"),
                ("RESOURCE_NAME", "vm1"),
                ("resource_rg", "lower"),
            ]),
            None,
        );
        assert_eq!(env["PATH"], RUNBOOK_PATH);
        assert!(!env.contains_key("LD_PRELOAD") && !env.contains_key("BASH_ENV"));
        assert!(!env.contains_key("resource_rg"));
        assert_eq!(env["RESOURCE_NAME"], "vm1");
        assert_eq!(env["AKS_POD"], "");
        assert_eq!(env["CLOUDO_ONCALL"], "true");
        assert_eq!(env["CLOUDO_DRY_RUN"], "0");
        assert!(!env.contains_key("HOME"), "the sandbox sets HOME");
    }

    #[test]
    fn a_large_payload_is_left_out_of_the_environment() {
        let small = "{\"a\": 1}";
        assert_eq!(runbook_env(&job(&[]), Some(small))["CLOUDO_PAYLOAD"], small);
        let big = "x".repeat(MAX_ENV_PAYLOAD_BYTES + 1);
        assert_eq!(runbook_env(&job(&[]), Some(&big))["CLOUDO_PAYLOAD"], "");
        assert_eq!(runbook_env(&job(&[]), None)["CLOUDO_PAYLOAD"], "");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
