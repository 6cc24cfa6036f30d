//! Every command with `--json` (what scripts read), the human tables, `schemas validate`
//! offline, `login` and its private file, `keys --url`, and completions.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use serde_json::Value;

use super::common::{self, ADMIN_KEY};
use super::{admin, cloudo, code, env, file, json_of, run, stderr, stdout};

#[tokio::test]
async fn every_command_answers_json_for_scripts() {
    let env = env();
    let s = env.start();

    let t = admin(
        &s,
        &[
            "trigger", "args", "--arg", "who=ops", "--arg", "n=2", "--json",
        ],
    );
    assert_eq!(code(&t), 0, "{}", stderr(&t));
    let id = json_of(&t)["exec_id"].as_str().unwrap().to_string();
    s.wait(&id).await;

    let logs = json_of(&admin(&s, &["logs", &id, "--json"]));
    assert_eq!(logs["status"], "succeeded");
    let payload: Value = serde_json::from_str(logs["output"].as_str().unwrap().trim()).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({"who": "ops", "n": "2"}),
        "--arg"
    );

    let shown = json_of(&admin(&s, &["show", &id, "--json"]));
    assert_eq!(shown["exec_id"], id.as_str());

    let ls = json_of(&admin(
        &s,
        &["ls", "--schema", "args", "--limit", "5", "--json"],
    ));
    assert_eq!(ls["items"].as_array().unwrap().len(), 1);
    let none = json_of(&admin(&s, &["ls", "--status", "lost", "--json"]));
    assert_eq!(none["items"], serde_json::json!([]));

    // `--follow --json`: one JSON object per event, the last one `end`.
    let f = admin(&s, &["trigger", "count", "--follow", "--json"]);
    assert_eq!(code(&f), 0);
    let events: Vec<Value> = stdout(&f)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(events.last().unwrap()["event"], "end");
    let text: String = events
        .iter()
        .filter(|e| e["event"] == "output")
        .map(|e| e["data"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "line 1\nline 2\nline 3\nline 4\nline 5\n");

    // Approvals: approve one, with a comment.
    let g = json_of(&admin(&s, &["trigger", "gated", "--json"]));
    let gid = g["exec_id"].as_str().unwrap();
    assert_eq!(g["status"], "pending");
    let a = json_of(&admin(&s, &["approve", gid, "-c", "go", "--json"]));
    assert_ne!(a["status"], "pending", "{a}");
    let g2 = json_of(&admin(&s, &["trigger", "gated", "--json"]));
    let r = json_of(&admin(
        &s,
        &["reject", g2["exec_id"].as_str().unwrap(), "--json"],
    ));
    assert_eq!(r["status"], "rejected");
    let l = json_of(&admin(&s, &["trigger", "long", "--json"]));
    let c = json_of(&admin(
        &s,
        &["cancel", l["exec_id"].as_str().unwrap(), "--json"],
    ));
    assert_eq!(c["status"], "stopped");

    // The catalog.
    let list = json_of(&admin(&s, &["schemas", "list", "--json"]));
    assert!(list["schemas"].as_array().unwrap().len() >= 8);
    let one = json_of(&admin(&s, &["schemas", "show", "count", "--json"]));
    assert_eq!(one["id"], "count");
    let cat = file(
        &env,
        "new.json",
        &common::catalog(&[r#"{"id": "only", "runbook": "count.sh"}"#]),
    );
    let applied = json_of(&admin(&s, &["schemas", "apply", &cat, "--json"]));
    assert_eq!(applied["schemas"].as_array().unwrap().len(), 1);
    let valid = json_of(&admin(&s, &["schemas", "validate", &cat, "--json"]));
    assert_eq!(valid, serde_json::json!({"valid": true, "schemas": 1}));

    // Routing: what an Azure Monitor alert would run.
    let alert = file(
        &env,
        "alert.json",
        include_str!("../fixtures/azure-monitor/test-action-metric-static-threshold.json"),
    );
    let routed = json_of(&admin(&s, &["routes", "test", &alert, "--json"]));
    assert!(routed["alerts"].is_array(), "{routed}");

    let w = json_of(&admin(&s, &["workers", "--json"]));
    assert!(!w["workers"].as_array().unwrap().is_empty());
    let sc = json_of(&admin(&s, &["schedules", "--json"]));
    assert!(sc["schedules"].is_array());

    // Keys through the API.
    let k = json_of(&admin(
        &s,
        &[
            "keys", "--url", &s.base, "create", "--name", "ci", "--role", "operator", "--json",
        ],
    ));
    assert!(k["key"].as_str().unwrap().len() > 20);
    let keys = json_of(&admin(&s, &["keys", "--url", &s.base, "list", "--json"]));
    assert!(
        keys["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "ci")
    );
    assert!(
        !stdout(&admin(&s, &["keys", "--url", &s.base, "list", "--json"]))
            .contains(k["key"].as_str().unwrap())
    );
    let rv = json_of(&admin(
        &s,
        &["keys", "--url", &s.base, "revoke", "ci", "--json"],
    ));
    assert_eq!(rv["revoked"], "ci");
}

#[tokio::test]
async fn people_get_aligned_tables_without_colour_codes_off_a_terminal() {
    let env = env();
    let s = env.start();
    let id = s.trigger("count").await;
    s.wait(&id).await;
    let out = stdout(&admin(&s, &["ls"]));
    let mut lines = out.lines();
    let head = lines.next().unwrap();
    assert!(head.starts_with("ID"), "{out}");
    let row = lines.next().unwrap();
    assert!(row.starts_with(&id), "{out}");
    // Columns line up: STATUS starts where the row's status does.
    assert_eq!(head.find("STATUS"), row.find("succeeded"), "{out}");
    assert!(row.contains(" ago"), "relative times: {out}");
    assert!(!out.contains('\x1b'), "no colour off a terminal: {out:?}");
    let shown = stdout(&admin(&s, &["show", &id]));
    assert!(
        shown.contains("succeeded") && shown.contains("count.sh"),
        "{shown}"
    );
}

#[test]
fn schemas_validate_works_offline_and_names_entry_and_field() {
    let env = env();
    let bad = file(
        &env,
        "bad.json",
        r#"[{"partition_key": "p", "entity": [{"id": "a", "runbook": "a.sh"}, {"id": "b", "runbook": "b.sh", "oncall": "maybe"}]}]"#,
    );
    // No server anywhere: port 1 refuses.
    let o = run(&mut cloudo(
        "http://127.0.0.1:1",
        None,
        &["schemas", "validate", &bad],
    ));
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains(r#"entry [0].entity[1] (id "b"), field "oncall""#),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let good = file(
        &env,
        "good.json",
        &common::catalog(&[r#"{"id": "a", "runbook": "a.sh"}"#]),
    );
    let o = run(&mut cloudo(
        "http://127.0.0.1:1",
        None,
        &["schemas", "validate", &good],
    ));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("valid, 1 schemas"));
}

#[tokio::test]
async fn login_keeps_the_key_in_a_private_file_that_later_commands_use() {
    let env = env();
    let s = env.start();
    let home = tempfile::tempdir().unwrap();
    let login = |key: &str| {
        let mut child = cloudo(&s.base, None, &["login"])
            .env_remove("CLOUDO_CLIENT_CONFIG")
            .env("XDG_CONFIG_HOME", home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{key}").unwrap();
        child.wait_with_output().unwrap()
    };
    let path = home.path().join("cloudo").join("config.toml");

    let wrong = login("not-a-key");
    assert_eq!(code(&wrong), 2, "{}", stderr(&wrong));
    assert!(!path.exists(), "a refused key is not saved");

    let ok = login(ADMIN_KEY);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert!(stderr(&ok).contains("signed in"), "{}", stderr(&ok));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);

    // Without CLOUDO_URL or CLOUDO_KEY: the file's server and key.
    let ls = std::process::Command::new(env!("CARGO_BIN_EXE_cloudo"))
        .args(["ls", "--json"])
        .env_remove("CLOUDO_URL")
        .env_remove("CLOUDO_KEY")
        .env_remove("CLOUDO_CLIENT_CONFIG")
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(code(&ls), 0, "{}", stderr(&ls));
    json_of(&ls);
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&mut cloudo(
            "http://127.0.0.1:1",
            None,
            &["completions", shell],
        ));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let script = stdout(&o);
        assert!(
            script.contains("trigger") && script.contains("--follow"),
            "{shell}"
        );
    }
}

/// ClouDO's ROUTING_RULES: `cloudo import-routing` converts it offline, and the server takes
/// the file as it is (`--notify-routes`), with ClouDO's credential variables as references.
#[tokio::test]
async fn cloudo_routing_rules_are_imported_or_taken_as_they_are() {
    let env = env();
    let rules = file(
        &env,
        "routing.json",
        r##"{"version": "1",
             "defaults": {"slack": {"channel": "#cloudo-default"}},
             "teams": {"payments": {"slack": {"channel": "#payments"}}},
             "rules": [{"when": {"resourceGroupPrefix": "rg-pay", "statusIn": ["failed"]},
                        "then": [{"type": "opsgenie", "team": "payments"}, {"type": "slack", "team": "payments"}]}]}"##,
    );
    let offline = |args: &[&str]| {
        let mut cmd = cloudo("http://127.0.0.1:1", None, args);
        cmd.env("SLACK_TOKEN_PAYMENTS", "xoxb-never-printed");
        run(&mut cmd)
    };
    let o = offline(&["import-routing", &rules]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let yaml = stdout(&o);
    assert!(
        yaml.contains("SLACK_TOKEN_PAYMENTS") && yaml.contains("#payments"),
        "{yaml}"
    );
    // Offline, every credential is referenced; the ones not set here are named.
    assert!(yaml.contains("OPSGENIE_API_KEY_PAYMENTS"), "{yaml}");
    assert!(
        stderr(&o).contains("OPSGENIE_API_KEY_PAYMENTS is referenced and not set"),
        "{}",
        stderr(&o)
    );
    assert!(
        !yaml.contains("xoxb-never-printed"),
        "a value, not a reference: {yaml}"
    );
    let imported = json_of(&offline(&["import-routing", &rules, "--json"]));
    assert_eq!(
        imported["rules"][0]["then"]["team"], "payments",
        "{imported}"
    );
    assert_eq!(
        imported["rules"][0]["when"]["resource_group"],
        serde_json::json!({"prefix": "rg-pay"})
    );
    // Refused with the rule named: an inline token.
    let inline = file(
        &env,
        "inline.json",
        r#"{"version": "1", "rules": [{"when": {}, "then": [{"type": "slack", "token": "xoxb-inline"}]}]}"#,
    );
    let o = offline(&["import-routing", &inline]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("rule 0: an inline token"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("xoxb-inline"));

    // The server takes ClouDO's file as it is.
    let env = env
        .arg("--notify-routes")
        .arg(&rules)
        .env("SLACK_TOKEN_PAYMENTS", "xoxb-server");
    let s = env.start();
    let (code, routes) = s.get("/api/notify/routes").await;
    assert_eq!(code, 200, "{routes}");
    let text = routes.to_string();
    assert!(
        text.contains("SLACK_TOKEN_PAYMENTS") && text.contains("rg-pay"),
        "{routes}"
    );
    assert!(!text.contains("xoxb-server"));
}
