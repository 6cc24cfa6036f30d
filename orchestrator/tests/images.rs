//! The container images (`make images`, built here from the test binaries) run cloudo for
//! real: the orchestrator image and a worker image against Azurite, on the private dockerd
//! of test-env/with-sandboxes.sh, with the keys an install gives by environment
//! (`CLOUDO_ADMIN_KEY`, `CLOUDO_WORKER_KEY_<POOL>`). Both run as a non-root user, and the
//! orchestrator's HEALTHCHECK command passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::ADMIN_KEY;

const TAG: &str = "test";
const WORKER_KEY: &str = "worker-key-of-the-images-test-0001";

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the containers whatever happens.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
    }
}

/// Readable by the images' users (10001): folders 0755, files 0644.
fn readable(path: &Path) {
    let mode = if path.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            readable(&e.unwrap().path());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_orchestrator_and_worker_images_run_a_runbook_against_azurite() {
    let storage = std::env::var("CLOUDO_TEST_AZURE_CONNECTION_STRING")
        .expect("run through test-env/with-azurite.sh (make test does)");
    std::env::var("DOCKER_HOST").expect("run through test-env/with-sandboxes.sh (make test does)");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bins = common::worker_binary().parent().unwrap().to_path_buf();
    let build = tokio::task::spawn_blocking(move || {
        Command::new(root.join("images/build.sh"))
            .arg(TAG)
            .current_dir(&root)
            .env("CLOUDO_BIN_DIR", bins)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        build.status.success(),
        "images/build.sh: {}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );

    // Runbook repositories at ssh:// addresses need OpenSSH's client in both images.
    for image in ["cloudo-orchestrator", "cloudo-worker"] {
        let image = format!("{image}:{TAG}");
        let found = docker(&[
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            &image,
            "-c",
            "command -v ssh",
        ]);
        assert_eq!(found, "/usr/bin/ssh", "{image}");
    }

    let files = tempfile::tempdir().unwrap();
    let runbooks = files.path().join("runbooks");
    std::fs::create_dir(&runbooks).unwrap();
    std::fs::write(
        runbooks.join("where.py"),
        "import os, sys\nprint('python', sys.version.split()[0], 'uid', os.getuid(), 'pool', os.environ['CLOUDO_WORKER'])\n",
    )
    .unwrap();
    let catalog = files.path().join("catalog.json");
    std::fs::write(
        &catalog,
        common::catalog(&[r#"{"id": "where", "runbook": "where.py", "worker": "images"}"#]),
    )
    .unwrap();
    readable(files.path());

    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (cat, rb) = (
        catalog.display().to_string(),
        runbooks.display().to_string(),
    );
    let suffix = format!("{}x{port}", std::process::id());
    // Both containers: the host's network (Azurite and the orchestrator on its loopback),
    // the same storage and table prefix, the runbooks mounted read-only.
    let run = |name: &str, env: &[String], mounts: &[String], image: &str, args: &[&str]| {
        let mut cmd: Vec<String> = ["run", "-d", "--network", "host", "--name"]
            .map(String::from)
            .to_vec();
        cmd.push(format!("cloudo-{name}-{suffix}"));
        let storage_env = [
            "CLOUDO_BACKEND=azure".to_string(),
            format!("CLOUDO_AZURE_STORAGE_CONNECTION_STRING={storage}"),
            format!("CLOUDO_AZURE_PREFIX=img{}", suffix.replace('x', "")),
        ];
        for e in storage_env.iter().chain(env) {
            cmd.extend(["-e".to_string(), e.clone()]);
        }
        for m in mounts.iter().chain([&format!("{rb}:/runbooks:ro")]) {
            cmd.extend(["-v".to_string(), m.clone()]);
        }
        cmd.push(format!("{image}:{TAG}"));
        cmd.extend(args.iter().map(|a| a.to_string()));
        docker(&cmd.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let mut running = Containers(Vec::new());
    let orchestrator = run(
        "orch",
        &[
            format!("CLOUDO_ADMIN_KEY={ADMIN_KEY}"),
            format!("CLOUDO_WORKER_KEY_IMAGES={WORKER_KEY}"),
            format!("CLOUDO_LISTEN=127.0.0.1:{port}"),
        ],
        &[format!("{cat}:/etc/cloudo/catalog.json:ro")],
        "cloudo-orchestrator",
        &[
            "serve",
            "--catalog",
            "/etc/cloudo/catalog.json",
            "--runbooks",
            "/runbooks",
            "--worker-pools",
            "none",
        ],
    );
    running.0.push(orchestrator.clone());
    let http = common::client(Some(ADMIN_KEY));
    common::until(
        || {
            std::process::Command::new("curl")
                .args(["-sf", "-o", "/dev/null", &format!("{url}/api/readyz")])
                .status()
                .is_ok_and(|s| s.success())
        },
        "the orchestrator container to be ready",
    )
    .await;
    let worker = run(
        "worker",
        &[
            format!("CLOUDO_WORKER_KEY={WORKER_KEY}"),
            "CLOUDO_WORKER_POOL=images".to_string(),
            format!("CLOUDO_METRICS_LISTEN=127.0.0.1:{}", common::free_port()),
        ],
        &[],
        "cloudo-worker",
        &[
            "--orchestrator",
            &url,
            "--runbooks",
            "/runbooks",
            "--sandbox",
            "process",
        ],
    );
    running.0.push(worker.clone());

    let (code, t) = common::answer(http.post(format!("{url}/api/Trigger?id=where"))).await;
    assert_eq!(code, 202, "{t}");
    let id = t["exec_id"].as_str().unwrap();
    let (_, e) = common::answer(http.get(format!("{url}/api/executions/{id}?wait=60"))).await;
    let logs = || docker(&["logs", &worker]);
    assert_eq!(e["status"], "succeeded", "{e}\n{}", logs());
    let out = e["output"].as_str().unwrap_or_default();
    assert!(out.contains("uid 10001 pool images"), "{out}");

    // Non-root, and the orchestrator's health check passes as Docker would run it.
    assert_eq!(docker(&["exec", &orchestrator, "id", "-u"]), "10001");
    let check = docker(&[
        "inspect",
        "-f",
        "{{json .Config.Healthcheck.Test}}",
        &orchestrator,
    ]);
    let test: Vec<String> = serde_json::from_str(&check).unwrap();
    assert_eq!(test[0], "CMD", "{check}");
    let mut exec = vec!["exec".to_string(), orchestrator.clone()];
    exec.extend(test[1..].iter().cloned());
    let exec: Vec<&str> = exec.iter().map(String::as_str).collect();
    docker(&exec);
}
