//! One conformance suite, run against every sandbox: `process`, `bwrap` and `docker`.
//! The set-up (`test-env/setup-sandbox.sh`, run by `make test`) provides bubblewrap, a
//! Docker engine (`DOCKER_HOST`) and a local image (`CLOUDO_TEST_IMAGE`); a missing one
//! fails these tests, it does not skip them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudo_worker::sandbox::bwrap::BwrapSandbox;
use cloudo_worker::sandbox::docker::DockerSandbox;
use cloudo_worker::sandbox::process::ProcessSandbox;
use cloudo_worker::secrets::MaskSet;
use cloudo_worker::{ResolvedLimits, RunOutcome, RunSpec, Sandbox};

const GRACE: Duration = Duration::from_secs(1);
const LIMITS: ResolvedLimits = ResolvedLimits {
    memory_mb: 128,
    pids: 64,
    cpu: 1.0,
};

struct Runner {
    sandbox: Arc<dyn Sandbox>,
    dir: tempfile::TempDir,
}

impl Runner {
    fn new(sandbox: Arc<dyn Sandbox>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { sandbox, dir }
    }

    async fn run_with(
        &self,
        script: &str,
        args: &[&str],
        f: impl FnOnce(&mut RunSpec),
    ) -> (RunOutcome, String) {
        let exec_id = uuid_like();
        let path = self.dir.path().join(format!("{exec_id}.sh"));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_string(),
            "/usr/local/bin:/usr/bin:/bin".to_string(),
        );
        env.insert("CLOUDO_EXEC_ID".to_string(), exec_id.clone());
        env.insert("RESOURCE_NAME".to_string(), "vm 1; $(rm -rf /)".to_string());
        let mut spec = RunSpec {
            exec_id: exec_id.clone(),
            runbook: path,
            args: args.iter().map(|a| a.to_string()).collect(),
            env,
            timeout: Duration::from_secs(20),
            output_cap: 1 << 20,
            network: false,
            limits: LIMITS,
            image: None,
            live: None,
            secrets: Default::default(),
            payload: None,
            cancel: Default::default(),
        };
        f(&mut spec);
        let out = self.sandbox.run(spec).await.expect("sandbox runs");
        (out, exec_id)
    }

    async fn run(&self, script: &str) -> RunOutcome {
        self.run_with(script, &[], |_| {}).await.0
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "00000000-0000-4000-8000-{:06}{:06}",
        std::process::id() % 1_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Host processes still carrying this run's exec id.
fn strays(exec_id: &str) -> usize {
    let needle = format!("CLOUDO_EXEC_ID={exec_id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|s| s.parse::<u32>().is_ok())
        })
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .map(|env| env.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
                .unwrap_or(false)
        })
        .count()
}

async fn no_strays(exec_id: &str) {
    for _ in 0..50 {
        if strays(exec_id) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("processes of {exec_id} survived");
}

/// What every sandbox must do.
async fn conformance(r: &Runner) {
    let name = r.sandbox.name();
    // Contract variables arrive as plain values; nothing of the worker's environment does.
    let o = r
        .run("echo \"name=$RESOURCE_NAME\"; env | grep -c '^CARGO_' || true; echo \"home=$HOME\"")
        .await;
    assert_eq!(o.exit_code, Some(0), "{name}: {}", o.output);
    let lines: Vec<&str> = o.output.lines().collect();
    assert_eq!(
        lines[0], "name=vm 1; $(rm -rf /)",
        "{name}: values are never evaluated"
    );
    assert_eq!(
        lines[1], "0",
        "{name}: the worker's CARGO_* variables are not visible"
    );
    assert!(lines[2].starts_with("home=/"), "{name}");

    // argv and exit codes propagate; stdout and stderr arrive in order.
    let (o, _) = r
        .run_with("printf '[%s]\\n' \"$@\"; exit 7", &["a", "b c"], |_| {})
        .await;
    assert_eq!(
        (o.exit_code, o.output.as_str()),
        (Some(7), "[a]\n[b c]\n"),
        "{name}"
    );
    let o = r
        .run("echo 1; sleep 0.1; echo 2 >&2; sleep 0.1; echo 3; sleep 0.1; echo 4 >&2")
        .await;
    assert_eq!(o.output, "1\n2\n3\n4\n", "{name}");

    // A secret is masked per stream: written in pieces around a write to the other stream,
    // and across the pipe's chunks (every sandbox, many times: the interleaving varies).
    for i in 0..20 {
        let (o, _) = r
            .run_with(
                "printf 's3cr3t-'; echo err >&2; printf 'value-42\\n'; echo done; printf 'tail s3cr3t-value-42'",
                &[],
                |s| {
                    s.secrets = MaskSet::new(["s3cr3t-value-42"]);
                },
            )
            .await;
        assert!(
            !o.output.contains("s3cr3t") && !o.output.contains("value-42"),
            "{name} (run {i}): {:?}",
            o.output
        );
        assert_eq!(o.output.matches("***").count(), 2, "{name}: {:?}", o.output);
        assert!(
            o.output.contains("err\n") && o.output.contains("done\n"),
            "{name}"
        );
    }

    // No secret value on any command line on the host while the runbook runs: the
    // environment reaches the sandbox some other way (bwrap's own environment, the Engine API).
    let secret = format!("pw-{}-on-no-cmdline", uuid_like());
    let scan = {
        let secret = secret.clone();
        std::thread::spawn(move || {
            let (mut seen, mut scans) = (Vec::new(), 0);
            let end = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < end {
                for e in std::fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(cmd) = std::fs::read(e.path().join("cmdline"))
                        && cmd.windows(secret.len()).any(|w| w == secret.as_bytes())
                    {
                        let program = cmd.split(|&b| b == 0).next().unwrap_or_default();
                        let program = String::from_utf8_lossy(program).into_owned();
                        if !seen.contains(&program) {
                            seen.push(program);
                        }
                    }
                }
                scans += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (seen, scans)
        })
    };
    let (o, _) = r
        .run_with(
            "test -n \"$DB_PASSWORD\" && echo has-it; sleep 1",
            &[],
            |s| {
                s.env.insert("DB_PASSWORD".into(), secret.clone());
            },
        )
        .await;
    let (seen, scans) = scan.join().unwrap();
    assert_eq!(
        o.output, "has-it\n",
        "{name}: the runbook gets the variable"
    );
    assert!(scans > 10, "{name}: scanned {scans} times");
    assert!(
        seen.is_empty(),
        "{name}: a secret on the command line of {seen:?}"
    );

    // The payload is a file the runbook can read, however large (an environment string
    // over 128 KiB would stop the runbook from starting at all).
    let payload = format!(r#"{{"alerts": "{}"}}"#, "p".repeat(1_000_000));
    let (o, _) = r
        .run_with(
            "wc -c < \"$CLOUDO_PAYLOAD_FILE\"; head -c 13 \"$CLOUDO_PAYLOAD_FILE\"; echo",
            &[],
            |s| s.payload = Some(payload.clone()),
        )
        .await;
    let lines: Vec<&str> = o.output.lines().collect();
    assert_eq!(
        lines.first().map(|l| l.trim()),
        Some(payload.len().to_string().as_str()),
        "{name}: {}",
        o.output
    );
    assert_eq!(
        lines.get(1),
        Some(&"{\"alerts\": \"p"),
        "{name}: {}",
        o.output
    );
    let o = r.run("wc -c < \"$CLOUDO_PAYLOAD_FILE\"").await;
    assert_eq!(o.output.trim(), "0", "{name}: no payload, an empty file");

    // The timeout kills everything, a detached grandchild too.
    let t = Instant::now();
    let (o, id) = r
        .run_with("setsid sleep 300 &\nsleep 300 &\nsleep 300\n", &[], |s| {
            s.timeout = Duration::from_secs(2)
        })
        .await;
    assert!(o.timed_out, "{name}: {o:?}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "{name}: took {:?}",
        t.elapsed()
    );
    no_strays(&id).await;

    // A daemon that clears its environment and leaves the process group (the exec id
    // cannot find it) still ends with the run: at the timeout and at a normal exit.
    for (script, timeout) in [
        ("env -i setsid sleep {mark} & sleep 300\n", 2),
        ("env -i setsid sleep {mark} & echo started\n", 20),
    ] {
        // Unique per run (pid and counter): `sleep 3000.009900000005`, 50 minutes.
        let mark = format!("3000.{}", &uuid_like()[24..]);
        let (o, _) = r
            .run_with(&script.replace("{mark}", &mark), &[], |s| {
                s.timeout = Duration::from_secs(timeout)
            })
            .await;
        assert_eq!(o.timed_out, timeout == 2, "{name}: {o:?}");
        assert!(
            !o.output.contains("No such file"),
            "{name}: the daemon did not start: {o:?}"
        );
        let survivors = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("cmdline"))
                        .is_ok_and(|c| c.windows(mark.len()).any(|w| w == mark.as_bytes()))
                })
                .count()
        };
        let mut left = survivors();
        for _ in 0..50 {
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = survivors();
        }
        assert_eq!(
            left, 0,
            "{name}: an env -i setsid daemon outlived its run ({script:?})"
        );
    }

    // A cancelled run stops promptly, its whole tree with it.
    let token = tokio_util::sync::CancellationToken::new();
    let live = cloudo_worker::output::LiveOutput::new(1 << 20, 0);
    // Cancelled once the runbook is under way (a container can take a while to start).
    let canceller = {
        let (token, live) = (token.clone(), live.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            while !live
                .piece(1 << 20)
                .is_some_and(|(_, text)| text.contains("started"))
                && t.elapsed() < Duration::from_secs(30)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            token.cancel();
        })
    };
    let mark = format!("3000.{}", &uuid_like()[24..]);
    let t = Instant::now();
    let (o, id) = r
        .run_with(
            &format!("env -i setsid sleep {mark} &\nsleep 300 &\necho started\nsleep 300\n"),
            &[],
            |s| {
                s.cancel = token.clone();
                s.live = Some(live.clone());
            },
        )
        .await;
    canceller.await.unwrap();
    assert!(o.cancelled && !o.timed_out, "{name}: {o:?}");
    assert!(o.output.contains("started"), "{name}: {o:?}");
    assert!(!o.output.contains("No such file"), "{name}: {o:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "{name}: stopped after {:?}",
        t.elapsed()
    );
    no_strays(&id).await;
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.windows(mark.len()).any(|w| w == mark.as_bytes()))
            })
            .count();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "{name}: a process of the cancelled run survived");

    // An output flood is capped.
    let (o, _) = r
        .run_with(
            "head -c 5000000 /dev/zero | tr '\\0' x; echo; echo END",
            &[],
            |s| s.output_cap = 65536,
        )
        .await;
    assert!(
        o.output_truncated && o.output.len() <= 65536 + 200,
        "{name}: {} bytes",
        o.output.len()
    );
    assert!(o.output.ends_with("xxx\nEND\n"), "{name}");
    assert_eq!(o.output_bytes, 5_000_005, "{name}");
}

/// What the isolating sandboxes must also do.
async fn isolation(r: &Runner, network_allowed: impl Fn(&mut RunSpec) + Copy) {
    let name = r.sandbox.name();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let probe = format!(
        "python3 -c 'import socket\ntry:\n    socket.create_connection((\"127.0.0.1\", {port}), timeout=3); print(\"connected\")\nexcept OSError as e:\n    print(\"no network:\", e)'"
    );
    let o = r.run(&probe).await;
    assert!(o.output.starts_with("no network"), "{name}: {}", o.output);
    let (o, _) = r.run_with(&probe, &[], network_allowed).await;
    assert_eq!(o.output.trim(), "connected", "{name} with network allowed");

    // Read-only everywhere but /tmp; /tmp starts empty and is private to the run.
    let o = r
        .run("echo \"tmp:$(ls -A /tmp | wc -l)\"; touch /tmp/mine && echo tmp-ok; for p in /etc/x /usr/x /runbook/x /x; do touch $p 2>/dev/null && echo \"wrote $p\"; done; id -u")
        .await;
    assert_eq!(o.output, "tmp:0\ntmp-ok\n65534\n", "{name}");
    let o = r.run("ls -A /tmp | wc -l").await;
    assert_eq!(o.output.trim(), "0", "{name}: /tmp is gone after a run");

    // The worker's files are out of sight.
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("cloudo.db");
    std::fs::write(&secret, "worker data").unwrap();
    let o = r
        .run(&format!("cat {} || echo unreadable", secret.display()))
        .await;
    assert!(
        o.output.contains("unreadable") && !o.output.contains("worker data"),
        "{name}: {}",
        o.output
    );

    // A fork bomb meets the pids limit; the host is unaffected.
    let bomb = "python3 -c '\nimport os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print(\"forks\", n, e.errno)\n'";
    let (o, id) = r
        .run_with(bomb, &[], |s| {
            s.timeout = Duration::from_secs(10);
            s.limits.pids = 32;
        })
        .await;
    let forks: Vec<&str> = o.output.split_whitespace().collect();
    assert_eq!(forks.first(), Some(&"forks"), "{name}: {}", o.output);
    let n: u32 = forks[1].parse().unwrap();
    assert!(
        n < 32 && forks[2] == "11",
        "{name}: stopped at {n} forks with errno {} (EAGAIN = 11)",
        forks[2]
    );
    no_strays(&id).await;
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success(),
        "host can still fork"
    );

    // A memory bomb is killed and reported as oom.
    let (o, _) = r
        .run_with(
            "python3 -c 'b = bytearray(512 << 20); print(len(b))'",
            &[],
            |s| s.limits.memory_mb = 64,
        )
        .await;
    assert!(o.oom, "{name}: {o:?}");
    assert_ne!(o.exit_code, Some(0), "{name}");
}

#[tokio::test]
async fn process_sandbox_conforms() {
    let r = Runner::new(Arc::new(ProcessSandbox::new(GRACE)));
    conformance(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bwrap_sandbox_conforms_and_isolates() {
    let sb = BwrapSandbox::detect(GRACE)
        .expect("bwrap sandbox available (run test-env/setup-sandbox.sh)");
    let r = Runner::new(Arc::new(sb));
    conformance(&r).await;
    isolation(&r, |s| s.network = true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_sandbox_conforms_and_isolates() {
    let image = std::env::var("CLOUDO_TEST_IMAGE")
        .expect("CLOUDO_TEST_IMAGE (run test-env/setup-sandbox.sh)");
    let sb = DockerSandbox::connect(&image, false, Some("host".into()))
        .await
        .expect("docker sandbox available (run test-env/setup-sandbox.sh)");
    let r = Runner::new(Arc::new(sb));
    conformance(&r).await;
    isolation(&r, |s| s.network = true).await;
}

/// A worker killed mid-run leaves its container running; whichever docker sandbox runs on
/// that daemon next removes it once past the deadline it carries, and no sooner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_containers_past_their_deadline_are_removed() {
    use bollard::Docker;
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{
        CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    };
    use std::collections::HashMap;

    let image = std::env::var("CLOUDO_TEST_IMAGE")
        .expect("CLOUDO_TEST_IMAGE (run test-env/setup-sandbox.sh)");
    let sb = DockerSandbox::connect(&image, false, None)
        .await
        .expect("docker sandbox available (run test-env/setup-sandbox.sh)");
    let docker = Docker::connect_with_defaults().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // What a dead worker leaves: a running container past its deadline; and one that is
    // not yet (its worker may be alive and about to time it out itself).
    let mut ids = Vec::new();
    for (name, deadline) in [("orphan", now - 1), ("young", now + 3600)] {
        let exec_id = uuid_like();
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            cmd: Some(vec!["sleep".into(), "300".into()]),
            labels: Some(HashMap::from([
                ("cloudo.deadline".to_string(), deadline.to_string()),
                ("cloudo.exec_id".to_string(), exec_id.clone()),
            ])),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&format!("cloudo-test-{name}-{exec_id}"))
            .build();
        let id = docker.create_container(Some(opts), body).await.unwrap().id;
        docker.start_container(&id, None).await.unwrap();
        ids.push(id);
    }
    let running = |id: String| {
        let docker = docker.clone();
        async move {
            docker
                .inspect_container(&id, None)
                .await
                .ok()
                .and_then(|c| c.state)
                .and_then(|s| s.running)
        }
    };
    assert_eq!(running(ids[0].clone()).await, Some(true));

    assert!(sb.remove_orphans().await >= 1);
    assert_eq!(running(ids[0].clone()).await, None, "the orphan is gone");
    assert_eq!(
        running(ids[1].clone()).await,
        Some(true),
        "the young one stays"
    );

    let rm = RemoveContainerOptionsBuilder::default().force(true).build();
    docker.remove_container(&ids[1], Some(rm)).await.unwrap();

    // The sandbox's own containers carry their deadline: start + timeout + drain + margin
    // (a timeout unlike the other tests', which may run meanwhile on the same daemon).
    let r = Runner::new(Arc::new(sb));
    let watcher = {
        let docker = docker.clone();
        tokio::spawn(async move {
            let filters = HashMap::from([("label", vec!["cloudo.deadline"])]);
            let mut seen = Vec::new();
            for _ in 0..100 {
                let opts = ListContainersOptionsBuilder::default()
                    .filters(&filters)
                    .build();
                for c in docker.list_containers(Some(opts)).await.unwrap() {
                    let l = c.labels.unwrap_or_default();
                    seen.extend(l.get("cloudo.deadline").and_then(|d| d.parse::<u64>().ok()));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            seen
        })
    };
    let (out, _) = r
        .run_with("sleep 3\n", &[], |s| s.timeout = Duration::from_secs(100))
        .await;
    assert_eq!(out.exit_code, Some(0), "{}", out.output);
    let seen = watcher.await.unwrap();
    // 100 s timeout + 5 s drain + 60 s margin.
    assert!(
        seen.iter().any(|d| (now + 165..now + 165 + 30).contains(d)),
        "{seen:?} vs {now}"
    );
}
