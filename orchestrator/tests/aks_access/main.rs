//! A runbook acts on the alert's AKS cluster: the worker fetches the cluster's coordinates
//! from a fake Azure Resource Manager (`listClusterUserCredential`) with an ARM token, and
//! gives the runbook a kubeconfig whose user is a token for the AKS server application; a
//! real `kubectl` talks to a fake Kubernetes API over HTTPS (a test CA), which sees that token
//! and the alert's namespace. Entra, ARM and Kubernetes are faked on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod kube;

use kube::{Kube, certificates, fake_kube};

use base64::Engine as _;
use common::Env;
use common::fake::Fake;
use serde_json::Value;

const CLUSTER: &str = "/subscriptions/22222222-3333-4444-5555-666666666666/resourceGroups/RG-AKS-Prod/providers/Microsoft.ContainerService/managedClusters/AKS-Prod-WEU";
const ARM_TOKEN: &str = "arm-token-5d4c3b2a1f0e";
const AKS_TOKEN: &str = "aks-token-0a1b2c3d4e5f";

/// The fakes: Kubernetes (HTTPS, test CA), Entra (an ARM token, then an AKS one), ARM.
struct World {
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
    _kube: Kube,
    entra: Fake,
    arm: Fake,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca = certificates(dir.path());
    let log = dir.path().join("kube.log");
    let kube = fake_kube(dir.path(), &log);

    // Entra: an ARM token first, then one for the AKS server application.
    let entra = Fake::start(500, "{}").await;
    let token = |t: &str| {
        format!(
            r#"{{"access_token": "{t}", "expires_on": "4102444800", "resource": "x", "token_type": "Bearer"}}"#
        )
    };
    entra.answer("/msi/token", 200, &[], &token(ARM_TOKEN));
    entra.answer("/msi/token", 200, &[], &token(AKS_TOKEN));
    // ARM: the cluster's user kubeconfig (exec-based, as AKS returns it: only the server and
    // CA are used).
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let upstream = format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://127.0.0.1:{}\n  name: aks-prod-weu\nusers:\n- name: clusterUser\n  user:\n    exec:\n      command: kubelogin\n",
        b64(&ca),
        kube.port
    );
    let arm = Fake::start(404, "{}").await;
    arm.answer(
        &format!("{CLUSTER}/listClusterUserCredential"),
        200,
        &[("content-type", "application/json")],
        &serde_json::json!({"kubeconfigs": [{"name": "clusterUser", "value": b64(&upstream)}]})
            .to_string(),
    );

    World {
        _dir: dir,
        log,
        _kube: kube,
        entra,
        arm,
    }
}

const RUNBOOK: &str = "set -euo pipefail\nkubectl get deployment \"$AKS_DEPLOYMENT\" -o name\nkubectl rollout restart deployment \"$AKS_DEPLOYMENT\"\n";

/// The fakes' addresses for a server's environment.
fn pointed_at(env: Env, w: &World) -> Env {
    env.env("CLOUDO_RUNBOOK_CREDENTIAL", "managed")
        .env("IDENTITY_ENDPOINT", &format!("{}/msi/token", w.entra.base))
        .env("IDENTITY_HEADER", "upstream-secret")
        .env("CLOUDO_AZURE_ARM_URL", &w.arm.base)
}

fn alert() -> Value {
    serde_json::from_str(include_str!(
        "../fixtures/crafted/log-v2-container-insights.json"
    ))
    .unwrap()
}

#[tokio::test]
async fn kubectl_restarts_the_alerts_deployment_with_a_token_for_the_aks_server_app() {
    let w = world().await;
    let (log, entra, arm) = (&w.log, &w.entra, &w.arm);
    let env = Env::new(
        &common::catalog(&[
            r#"{"id": "restart-pod", "runbook": "restart.sh", "aks": true}"#,
            r#"{"id": "no-cluster", "runbook": "restart.sh", "aks": true}"#,
            r#"{"id": "infra-only", "runbook": "restart.sh", "aks": true, "allowed_namespaces": "infra"}"#,
            r#"{"id": "dev-only", "runbook": "restart.sh", "aks": true, "allowed_clusters": "aks-dev-*"}"#,
        ]),
        &[("restart.sh", RUNBOOK)],
    );
    // The same alert is delivered to several schemas.
    let env = pointed_at(env, &w).arg("--dedup-window").arg("0");
    let s = env.start();

    let alert = alert();
    let (code, answer) =
        common::post_json(&s.http, &s.url("/api/Trigger?id=restart-pod"), &alert).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["exec_id"].as_str().unwrap().to_string();
    let e = s.wait(&id).await;
    let (_, out) = s.get(&format!("/api/executions/{id}/output")).await;
    assert_eq!(
        e["status"],
        "succeeded",
        "{out}\nthe fake API saw:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let text = out["data"].as_str().unwrap();
    assert!(text.contains("deployment.apps/payments-api"), "{text}");
    assert!(text.contains("restarted"), "{text}");

    // ARM saw the ARM token; the cluster saw the AKS token, in the alert's namespace.
    let arm_seen = arm.seen();
    assert_eq!(arm_seen.len(), 1, "{arm_seen:#?}");
    assert_eq!(arm_seen[0].method, "POST");
    assert_eq!(
        arm_seen[0].headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {ARM_TOKEN}").as_str())
    );
    let asked: Vec<String> = entra.seen().iter().map(|r| r.uri.clone()).collect();
    assert!(
        asked.iter().any(|u| u.contains("management.azure.com")),
        "{asked:?}"
    );
    assert!(
        asked
            .iter()
            .any(|u| u.contains("6dae42f8-4368-4678-94ff-3960e28e3630")),
        "{asked:?}"
    );
    let kube_seen: Vec<Value> = std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let on_deployment: Vec<&Value> = kube_seen
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap()
                .contains("/deployments/payments-api")
        })
        .collect();
    assert!(
        on_deployment.iter().any(|r| r["method"] == "GET"),
        "{kube_seen:#?}"
    );
    let patch = on_deployment
        .iter()
        .find(|r| r["method"] == "PATCH")
        .expect("rollout restart patches the deployment");
    assert!(
        patch["path"]
            .as_str()
            .unwrap()
            .starts_with("/apis/apps/v1/namespaces/payments/"),
        "the alert's namespace: {patch}"
    );
    assert!(
        patch["body"].as_str().unwrap().contains("restartedAt"),
        "{patch}"
    );
    for r in &kube_seen {
        assert_eq!(r["auth"], format!("Bearer {AKS_TOKEN}"), "{r}");
    }
    // No token in the record or the logs; the kubeconfig is gone with the run.
    let (_, record) = s.get(&format!("/api/executions/{id}")).await;
    for t in [ARM_TOKEN, AKS_TOKEN] {
        assert!(!record.to_string().contains(t));
        assert!(!s.logs().contains(t));
        assert!(!text.contains(t));
    }
    let leftover = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .any(|d| {
            d.file_name().to_string_lossy().ends_with(".kubeconfig")
                && std::fs::read_to_string(d.path()).is_ok_and(|c| c.contains(AKS_TOKEN))
        });
    assert!(!leftover, "a kubeconfig was left behind");

    // A manual run names no cluster, and the schema has none: error, before any call.
    let before = arm.seen().len();
    let id = s.trigger("no-cluster").await;
    let e = s.wait(&id).await;
    assert_eq!(e["status"], "error", "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("no AKS cluster"),
        "{e}"
    );
    assert_eq!(arm.seen().len(), before);

    // Guardrails hold before any credential: the alert's namespace, the alert's cluster.
    for (schema, why) in [
        ("infra-only", "namespace \"payments\""),
        ("dev-only", "cluster \"AKS-Prod-WEU\""),
    ] {
        let (_, answer) = common::post_json(
            &s.http,
            &s.url(&format!("/api/Trigger?id={schema}")),
            &alert,
        )
        .await;
        let e = &answer["executions"][0];
        assert_eq!(e["status"], "skipped", "{answer}");
        assert!(e["reason"].as_str().unwrap().contains(why), "{answer}");
    }
    assert_eq!(arm.seen().len(), before, "no call to ARM for a refused run");
    assert_eq!(entra.seen().len(), 2, "no token for a refused run");
}

/// A runbook in docker: reads the kubeconfig the relay wrote (0600, its own, in its private
/// HOME) and calls the cluster with it (the test image has python, not kubectl).
const DOCKER_RUNBOOK: &str = r#"import base64, json, os, ssl, stat, tempfile, urllib.request
path = os.environ["KUBECONFIG"]
st = os.stat(path)
print("kubeconfig", path, oct(stat.S_IMODE(st.st_mode)), "mine" if st.st_uid == os.getuid() else "not mine")
print("relay secret seen:", "CLOUDO_RELAY_SECRET" in os.environ)
cfg = json.load(open(path))
print("token", cfg["users"][0]["user"]["token"])
cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
ns = cfg["contexts"][0]["context"]["namespace"]
ca = tempfile.NamedTemporaryFile(delete=False)
ca.write(base64.b64decode(cluster["certificate-authority-data"]))
ca.close()
url = cluster["server"] + "/apis/apps/v1/namespaces/" + ns + "/deployments/" + os.environ["AKS_DEPLOYMENT"]
req = urllib.request.Request(url, headers={"Authorization": "Bearer " + user["token"]})
answer = urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca.name), timeout=10)
print("deployment", json.load(answer)["metadata"]["name"])
"#;

/// In bwrap (with the schema's network, to reach the cluster) the kubeconfig is a file only
/// the runbook's user reads; in docker the relay fetches it into the container's private
/// HOME (the container on the host's network here, to reach the fake cluster).
#[tokio::test]
async fn in_bwrap_and_docker_the_kubeconfig_is_the_runbooks_alone() {
    let w = world().await;
    let image = std::env::var("CLOUDO_TEST_IMAGE")
        .expect("CLOUDO_TEST_IMAGE (run through test-env/with-sandboxes.sh; make test does)");
    let env = Env::new(
        &common::catalog(&[
            r#"{"id": "in-bwrap", "runbook": "restart.sh", "aks": true, "sandbox": "bwrap", "network": true}"#,
            r#"{"id": "in-docker", "runbook": "look.py", "aks": true, "sandbox": "docker", "network": true}"#,
        ]),
        &[
            ("restart.sh", &format!("ls -l \"$KUBECONFIG\"\n{RUNBOOK}")),
            ("look.py", DOCKER_RUNBOOK),
        ],
    )
    .arg("--sandbox")
    .arg("auto")
    .arg("--sandbox-image")
    .arg(&image)
    .arg("--sandbox-network")
    .arg("host")
    .arg("--dedup-window")
    .arg("0");
    let env = pointed_at(env, &w);
    let mut s = env.start();
    let (_, answer) =
        common::post_json(&s.http, &s.url("/api/Trigger?id=in-bwrap"), &alert()).await;
    let id = answer["exec_id"].as_str().unwrap().to_string();
    let e = s.wait(&id).await;
    let (_, out) = s.get(&format!("/api/executions/{id}/output")).await;
    let text = out["data"].as_str().unwrap();
    assert_eq!(e["status"], "succeeded", "{e}\n{text}");
    assert_eq!(e["sandbox"], "bwrap");
    assert!(
        text.contains("-r-------- ") && text.contains("/run/cloudo/kubeconfig"),
        "{text}"
    );
    assert!(text.contains("restarted"), "{text}");
    let seen = std::fs::read_to_string(&w.log).unwrap();
    assert!(seen.contains(&format!("Bearer {AKS_TOKEN}")), "{seen}");
    let calls = seen.lines().count();

    let (_, answer) =
        common::post_json(&s.http, &s.url("/api/Trigger?id=in-docker"), &alert()).await;
    let id = answer["exec_id"].as_str().unwrap().to_string();
    let e = s.wait(&id).await;
    let (_, out) = s.get(&format!("/api/executions/{id}/output")).await;
    let text = out["data"].as_str().unwrap();
    assert_eq!(e["status"], "succeeded", "{e}\n{text}");
    assert_eq!(e["sandbox"], "docker");
    assert!(
        text.contains("kubeconfig /tmp/.cloudo/kubeconfig 0o600 mine"),
        "{text}"
    );
    assert!(text.contains("relay secret seen: False"), "{text}");
    assert!(
        text.contains("token ***") && !text.contains(AKS_TOKEN),
        "the cluster token is masked: {text}"
    );
    let seen = std::fs::read_to_string(&w.log).unwrap();
    let docker_call = seen.lines().skip(calls).collect::<Vec<_>>().join("\n");
    assert!(
        docker_call.contains(&format!("Bearer {AKS_TOKEN}")),
        "{seen}"
    );
    assert!(docker_call.contains("GET"), "{seen}");
    assert!(
        !s.final_logs().await.contains(AKS_TOKEN),
        "a token in the logs"
    );
}
