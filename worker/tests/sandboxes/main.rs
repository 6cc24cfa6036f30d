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
            files: Vec::new(),
            broker: None,
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

mod conformance;
mod isolation;

use conformance::conformance;
use isolation::isolation;

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

/// A runbook folder every user can read is bound as it is (nothing copied); one below a
/// private (0700) folder, or holding a file only its owner may read, is staged: all run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bwrap_binds_readable_runbook_folders_and_stages_private_ones() {
    let sb = BwrapSandbox::detect(GRACE)
        .expect("bwrap sandbox available (run test-env/setup-sandbox.sh)");
    let r = Runner::new(Arc::new(sb));
    let parent = tempfile::tempdir().unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let folder = parent.path().join("runbooks");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = folder.join("run.sh");
    // The staged copies of this run's folder, were there any.
    let stages = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name().to_string_lossy().starts_with("cloudo-stage-")
                    && e.path().join("marker-7f3a").exists()
            })
            .count()
    };
    let body = "echo ran; ls /runbook; cat /runbook/marker-7f3a; sleep 0.3\n";
    std::fs::write(&script, body).unwrap();
    std::fs::write(folder.join("marker-7f3a"), "shared\n").unwrap();
    for f in ["run.sh", "marker-7f3a"] {
        std::fs::set_permissions(folder.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let want = "ran\nmarker-7f3a\nrun.sh\nshared\n";
    let watch = tokio::spawn(async move {
        let mut most = 0;
        for _ in 0..20 {
            most = most.max(stages());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        most
    });
    let (o, _) = r.run_with("", &[], |s| s.runbook = script.clone()).await;
    assert_eq!(o.output, want, "{o:?}");
    assert_eq!(
        watch.await.unwrap(),
        0,
        "a readable folder is bound, not copied"
    );
    // A file only its owner reads: staged (the copy is readable), and it runs the same.
    std::fs::set_permissions(
        folder.join("marker-7f3a"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (o, _) = r.run_with("", &[], |s| s.runbook = script.clone()).await;
    assert_eq!(o.output, want, "staged for a private file: {o:?}");
    // Below a private folder: staged too.
    std::fs::set_permissions(
        folder.join("marker-7f3a"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let (o, _) = r.run_with("", &[], |s| s.runbook = script.clone()).await;
    assert_eq!(o.output, want, "staged below a private folder: {o:?}");
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
    // Tests in parallel share the daemon: another test's sandbox may sweep the orphan
    // first (a sandbox sweeps as it connects); then this sweep finds nothing left.
    let before = running(ids[0].clone()).await;
    let removed = sb.remove_orphans().await;
    assert!(
        removed >= 1 || before.is_none(),
        "an orphan running ({before:?}) and none removed"
    );
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
