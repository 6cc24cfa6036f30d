//! The Terraform module (`iac/`), checked without Terraform's registry: every `.tf` parses
//! (python-hcl2), checkov passes (each skip justified inline), and the module's own rules
//! hold: secrets reach no output that is not sensitive, no app setting holds a secret
//! value, role assignments stay below the subscription unless asked, the action group's URL
//! carries no admin key, the storage account takes Entra ID only. No `terraform` binary is
//! reachable here: `make iac-validate` runs `terraform fmt -check`, `init -backend=false`
//! and `validate` for users who have it. test-env/setup.sh installs the tools in their own
//! virtual environment (`CLOUDO_IAC_VENV`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Where test-env/setup.sh keeps the tools' virtual environments.
fn venvs() -> PathBuf {
    std::env::var_os("CLOUDO_IAC_VENV").map_or_else(
        || Path::new(&std::env::var("HOME").unwrap()).join(".cache/cloudo-test"),
        PathBuf::from,
    )
}

fn iac() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../iac")
}

/// Every `.tf` under `iac/`, parsed to JSON by python-hcl2: (path, document).
fn parsed() -> Vec<(PathBuf, Value)> {
    let script = r#"
import hcl2, json, pathlib, sys
out = {}
for p in sorted(pathlib.Path(sys.argv[1]).rglob("*.tf")):
    if ".terraform" in p.parts:
        continue
    with open(p) as f:
        out[str(p)] = hcl2.load(f)
print(json.dumps(out))
"#;
    let python = venvs().join("hcl-venv/bin/python");
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(iac())
        .output()
        .unwrap_or_else(|e| panic!("{} (test-env/setup.sh makes it): {e}", python.display()));
    assert!(
        out.status.success(),
        "a .tf file does not parse:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: serde_json::Map<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    all.into_iter()
        .map(|(p, v)| (PathBuf::from(p), v))
        .collect()
}

/// The module's own files (not its examples).
fn module() -> Vec<(PathBuf, Value)> {
    parsed()
        .into_iter()
        .filter(|(p, _)| p.parent().is_some_and(|d| d.ends_with("iac")))
        .collect()
}

/// `(type, name, body)` of every block of `kind` ("resource", "output", ...).
fn blocks(docs: &[(PathBuf, Value)], kind: &str) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (_, doc) in docs {
        for entry in doc[kind].as_array().into_iter().flatten() {
            for (ty, named) in entry.as_object().into_iter().flatten() {
                match named.as_object() {
                    Some(m) if kind == "resource" || kind == "data" || kind == "ephemeral" => {
                        for (name, body) in m {
                            found.push((unquote(ty), unquote(name), body.clone()));
                        }
                    }
                    _ => found.push((unquote(ty), String::new(), named.clone())),
                }
            }
        }
    }
    found
}

fn text(v: &Value) -> String {
    v.to_string()
}

/// python-hcl2 keeps the quotes of names and string literals.
fn unquote(s: &str) -> String {
    s.trim_matches('"').to_string()
}

/// A string attribute as written (a literal without its quotes, or `${expression}`).
fn lit(v: &Value) -> String {
    unquote(v.as_str().unwrap_or_default())
}

#[test]
fn every_file_parses_including_the_examples() {
    let docs = parsed();
    assert!(docs.len() >= 12, "{docs:?}");
    for example in ["basic", "aks"] {
        assert!(
            docs.iter()
                .any(|(p, d)| p.ends_with(format!("examples/{example}/main.tf"))
                    && text(d).contains("source")),
            "examples/{example}"
        );
    }
}

#[test]
fn secrets_reach_no_plain_output_or_setting() {
    let docs = module();
    let secretish = [
        "random_password",
        "ephemeral.",
        ".value_wo",
        "primary_access_key",
        "connection_string",
    ];
    for (name, _, body) in blocks(&docs, "output") {
        let value = text(&body["value"]);
        let sensitive = body["sensitive"] == Value::Bool(true);
        assert!(
            sensitive || !secretish.iter().any(|s| value.contains(s)),
            "output {name} shows a secret without sensitive = true: {value}"
        );
        let named_secret = name.ends_with("_key")
            || ["password", "secret", "token"]
                .iter()
                .any(|w| name.contains(w));
        assert!(!named_secret || sensitive, "output {name}");
    }
    // Container settings: values never reference a secret; secrets go by secret_name.
    for (ty, name, body) in blocks(&docs, "resource") {
        if ty != "azurerm_container_app" {
            continue;
        }
        let all = text(&body);
        assert!(all.contains("secret_name"), "{name}: secrets by reference");
        for s in [
            "random_password",
            "ephemeral.",
            "azurerm_key_vault_secret",
            "var.secret_ids",
        ] {
            assert!(!all.contains(&format!("\"value\":\"${{{s}")), "{name}: {s}");
        }
        // Every secret block read from Key Vault takes an identity.
        assert!(
            !all.contains("key_vault_secret_id") || all.contains("\"identity\":"),
            "{name}"
        );
    }
    // Generated keys are written write-only: never `value`.
    for (ty, name, body) in blocks(&docs, "resource") {
        if ty == "azurerm_key_vault_secret" {
            assert!(
                body.get("value").is_none(),
                "{name} keeps its value in the state"
            );
            assert!(body.get("value_wo").is_some(), "{name}");
        }
    }
}

#[test]
fn role_assignments_stay_below_the_subscription_unless_asked() {
    let docs = module();
    let assignments: Vec<_> = blocks(&docs, "resource")
        .into_iter()
        .filter(|(ty, _, _)| ty == "azurerm_role_assignment")
        .collect();
    assert!(assignments.len() >= 10, "{}", assignments.len());
    let broad = [
        "Owner",
        "Contributor",
        "User Access Administrator",
        "Azure Kubernetes Service RBAC Admin",
        "Azure Kubernetes Service RBAC Cluster Admin",
        "Azure Kubernetes Service Cluster Admin Role",
    ];
    for (_, name, body) in &assignments {
        let scope = lit(&body["scope"]);
        let role = lit(&body["role_definition_name"]);
        let at_subscription = scope.starts_with("/subscriptions/${")
            && !scope.contains("/resourceGroups/")
            && scope.matches('/').count() <= 2;
        // Only the assignments a variable asks for by name may be that broad.
        if at_subscription {
            assert_eq!(
                name, "subscription",
                "{name} at subscription scope: {scope}"
            );
            assert!(
                role.contains("var.") || role.contains("each.value"),
                "{name}: {role}"
            );
        }
        for b in broad {
            assert_ne!(role, b, "{name} grants {b}");
        }
    }
    // Storage roles only on this account or its queues.
    for (_, name, body) in &assignments {
        let role = lit(&body["role_definition_name"]);
        if role.contains("Storage ") {
            let scope = lit(&body["scope"]);
            assert!(
                scope.contains("azurerm_storage_account.this.id")
                    || scope.contains("resource_manager_id")
                    || scope.contains("each.value.id"),
                "{name}: {scope}"
            );
        }
    }
}

#[test]
fn the_action_group_url_carries_no_admin_key_and_storage_takes_entra_only() {
    let docs = module();
    let resources = blocks(&docs, "resource");
    let (_, _, trigger) = resources
        .iter()
        .find(|(ty, name, _)| ty == "azurerm_monitor_action_group" && name == "trigger")
        .expect("the trigger's action group");
    let hook = text(&trigger["webhook_receiver"]);
    assert!(hook.contains("/api/Trigger"), "{hook}");
    assert!(hook.contains("\"use_common_alert_schema\":true"), "{hook}");
    let url = &trigger["webhook_receiver"][0]["service_uri"];
    assert!(!text(url).contains("admin"), "{url}");
    // With a key, only the ingest key (role ingest) is in the URL.
    assert!(
        text(url).contains("code=${one(random_password.ingest"),
        "{url}"
    );
    assert!(hook.contains("aad_auth"), "Entra secure webhook: {hook}");
    // Alerts on cloudo itself notify someone.
    let alerts = resources
        .iter()
        .filter(|(ty, _, _)| ty.starts_with("azurerm_monitor_") && ty.contains("alert"))
        .collect::<Vec<_>>();
    assert!(alerts.len() >= 3);
    for (_, name, body) in alerts {
        assert!(
            text(&body["action"]).contains("azurerm_monitor_action_group.ops.id"),
            "{name}"
        );
    }
    let (_, _, sa) = resources
        .iter()
        .find(|(ty, _, _)| ty == "azurerm_storage_account")
        .unwrap();
    assert_eq!(sa["shared_access_key_enabled"], Value::Bool(false));
    assert_eq!(lit(&sa["min_tls_version"]), "TLS1_2");
    assert_eq!(sa["allow_nested_items_to_be_public"], Value::Bool(false));
}

#[test]
fn every_variable_is_typed_and_described() {
    let docs = module();
    let vars = blocks(&docs, "variable");
    assert!(vars.len() >= 20);
    for (name, _, body) in vars {
        let readme = std::fs::read_to_string(iac().join("README.md")).unwrap();
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "README.md lacks input {name}"
        );
        assert!(body.get("type").is_some(), "variable {name} has no type");
        assert!(
            body["description"].as_str().is_some_and(|d| d.len() > 20),
            "variable {name} has no description"
        );
    }
}

#[test]
fn checkov_passes_with_every_skip_justified() {
    let checkov = venvs().join("checkov-venv/bin/checkov");
    let out = Command::new(&checkov)
        .args([
            "--quiet",
            "--compact",
            "--framework",
            "terraform",
            "--download-external-modules",
            "false",
            "-d",
        ])
        .arg(iac())
        .env("LOG_LEVEL", "ERROR")
        .output()
        .unwrap_or_else(|e| panic!("{} (test-env/setup.sh makes it): {e}", checkov.display()));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "checkov failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every inline skip says why.
    for (path, _) in parsed() {
        let source = std::fs::read_to_string(&path).unwrap();
        for line in source.lines().filter(|l| l.contains("checkov:skip=")) {
            let why = line.split_once(':').map(|x| x.1).unwrap_or_default();
            assert!(
                why.split_once(':')
                    .is_some_and(|(_, r)| r.trim().len() > 15),
                "{}: {line}",
                path.display()
            );
        }
    }
}
