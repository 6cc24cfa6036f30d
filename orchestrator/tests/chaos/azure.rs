//! Crash and restart scaled out on Azure Storage: two orchestrators and a standalone worker
//! on an Azurite of the scenario's own (so it can be restarted), under load over both
//! orchestrators. Faults: kill -9 of the worker, kill -9 of one orchestrator, a restart of
//! Azurite.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::azure::{Worker, on_storage, uuid_like, worker_key};
use crate::common::{Env, Server, free_port};
use crate::crash::{PACE, leftovers, prepared, secrets_in, settle};
use crate::load;
use crate::report::{Row, pick};

/// An Azurite of its own, on fixed ports and a folder kept across restarts.
pub struct Azurite {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ports: [u16; 3],
}

impl Azurite {
    pub fn start() -> Self {
        let mut a = Self {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            ports: [free_port(), free_port(), free_port()],
        };
        a.spawn();
        a
    }

    fn spawn(&mut self) {
        let bin = std::env::var("CLOUDO_TEST_AZURITE").expect(
            "CLOUDO_TEST_AZURITE is not set: run through test-env/with-azurite.sh (make test does)",
        );
        let [b, q, t] = self.ports.map(|p| p.to_string());
        let child = Command::new(bin)
            .args(["--silent", "--skipApiVersionCheck", "--location"])
            .arg(self.dir.path())
            .args(["--blobHost", "127.0.0.1", "--blobPort", &b])
            .args(["--queueHost", "127.0.0.1", "--queuePort", &q])
            .args(["--tableHost", "127.0.0.1", "--tablePort", &t])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn azurite");
        self.child = Some(child);
        for p in &self.ports[1..] {
            let up = (0..150).any(|_| {
                std::thread::sleep(Duration::from_millis(100));
                std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok()
            });
            assert!(up, "azurite did not listen on {p}");
        }
    }

    pub fn connection(&self) -> String {
        let [b, q, t] = self.ports;
        let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};\
             BlobEndpoint=http://127.0.0.1:{b}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{q}/devstoreaccount1;\
             TableEndpoint=http://127.0.0.1:{t}/devstoreaccount1;"
        )
    }

    /// Stops it (SIGTERM: it saves its data), waits `down`, starts it again on the same data.
    pub async fn restart(&mut self, down: Duration) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
        tokio::time::sleep(down).await;
        self.spawn();
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Two orchestrators (no workers of their own) and one standalone worker of pool `alpha`.
pub struct Cluster {
    pub azurite: Azurite,
    pub envs: Vec<Env>,
    pub servers: Vec<Server>,
    pub bases: Vec<String>,
    pub worker: Worker,
    worker_key: String,
    prefix: String,
    tmp: tempfile::TempDir,
    /// Every server and worker process started, for the leftovers of their runs.
    pub pids: Vec<u32>,
    /// The admin key seen in the logs of processes already replaced.
    secrets: usize,
}

const WORK: &str = "echo \"run $CLOUDO_EXEC_ID\"\nsleep 0.0$((RANDOM % 10))\necho done\n";

impl Cluster {
    pub async fn start() -> Self {
        let azurite = Azurite::start();
        let prefix = format!("chaos{}", uuid_like());
        let mut envs = Vec::new();
        let mut bases = Vec::new();
        for _ in 0..2 {
            let addr = format!("127.0.0.1:{}", free_port());
            let env = prepared(
                &[r#"{"id": "work", "runbook": "work.sh", "worker": "alpha", "timeout": 30}"#],
                &[("work.sh", WORK)],
            )
            .arg("--listen")
            .arg(&addr)
            .arg("--lost-after")
            .arg("6");
            envs.push(on_storage(env, &prefix, &azurite.connection()));
            bases.push(format!("http://{addr}"));
        }
        let servers: Vec<Server> = envs.iter().map(Env::start).collect();
        let worker_key = worker_key(&servers[0], "w-chaos", "alpha").await;
        let tmp = tempfile::tempdir().unwrap();
        let mut c = Self {
            worker: Self::worker_on(&azurite, &envs[0], &prefix, &bases, &worker_key, &tmp),
            pids: servers.iter().map(|s| s.child.id()).collect(),
            azurite,
            envs,
            servers,
            bases,
            worker_key,
            prefix,
            tmp,
            secrets: 0,
        };
        c.pids.push(c.worker.pid());
        c
    }

    fn worker_on(
        azurite: &Azurite,
        env: &Env,
        prefix: &str,
        bases: &[String],
        key: &str,
        tmp: &tempfile::TempDir,
    ) -> Worker {
        Worker::start_on(
            &azurite.connection(),
            &env.path().join("runbooks"),
            prefix,
            ("alpha", &bases.join(","), key),
            (&[], &[("TMPDIR", tmp.path().to_str().unwrap())]),
        )
    }

    pub fn restart_worker(&mut self) {
        self.worker.kill9();
        self.secrets += self.worker.logs().matches(crate::common::ADMIN_KEY).count();
        self.worker = Self::worker_on(
            &self.azurite,
            &self.envs[0],
            &self.prefix,
            &self.bases,
            &self.worker_key,
            &self.tmp,
        );
        self.pids.push(self.worker.pid());
    }

    pub fn restart_server(&mut self, i: usize) {
        self.servers[i].kill9();
        self.secrets += secrets_in(&self.servers[i]);
        self.servers[i] = self.envs[i].start();
        self.pids.push(self.servers[i].child.id());
    }

    /// Jobs of pool `alpha` still in the queue, as an orchestrator's metrics show them.
    async fn queued(&self) -> usize {
        let res = self.servers[0]
            .http
            .get(self.servers[0].url("/metrics"))
            .send()
            .await
            .unwrap();
        let text = res.text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with("cloudo_queue_depth{") && l.contains("pool=\"alpha\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<f64>().ok())
            .map_or(usize::MAX, |n| n as usize)
    }

    /// Stops the load, settles the row, stops everything and counts what was left.
    pub async fn finish(mut self, mut row: Row, load: load::Load) {
        let t = load.stop().await;
        settle(&mut row, &self.servers[0], &t).await;
        // Jobs of runs that ended are deleted by the worker that ran them (or, for lost
        // runs, by the next worker to lease them): wait for the queue to empty.
        let mut queued = self.queued().await;
        for _ in 0..60 {
            if queued == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            queued = self.queued().await;
        }
        self.worker.stop();
        let mut secrets = self.secrets;
        for s in &mut self.servers {
            s.stop();
            secrets += secrets_in(s);
        }
        secrets += self.worker.logs().matches(crate::common::ADMIN_KEY).count();
        let mut left = 0;
        let mut what = Vec::new();
        for env in &self.envs {
            let (n, w) = leftovers(env, &self.pids);
            left += n;
            what.push(w);
        }
        let worker_dirs = crate::common::folders(self.tmp.path(), "cloudo-").len();
        row.leftovers = left + worker_dirs + queued;
        row.secrets = secrets;
        row.notes = format!(
            "{}; left: {} (orchestrators), {worker_dirs} worker run folders, {queued} jobs queued",
            row.notes,
            what.join(" / ")
        );
        row.finish();
    }
}

fn row(scenario: &str, faults: String, clients: usize) -> Row {
    let mut row = Row::new(scenario);
    row.load = format!(
        "{clients} clients over 2 orchestrators, manual triggers and Azure alerts, 1 worker"
    );
    row.faults = faults;
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_a_standalone_worker_under_load() {
    let _serial = crate::report::serial().await;
    let mut c = Cluster::start().await;
    let (kills, clients) = (pick(2, 6), 6);
    let load = load::start(&c.bases, "work", clients, PACE);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(pick(2000, 5000))).await;
        c.restart_worker();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let faults = format!("kill -9 of the worker {kills} times, a new one started at once");
    c.finish(row("kill9-worker", faults, clients), load).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_one_of_two_orchestrators_under_load() {
    let _serial = crate::report::serial().await;
    let mut c = Cluster::start().await;
    let (kills, clients) = (pick(2, 6), 6);
    let load = load::start(&c.bases, "work", clients, PACE);
    for i in 0..kills {
        tokio::time::sleep(Duration::from_millis(pick(2000, 5000))).await;
        c.restart_server(i % 2);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let faults = format!("kill -9 of an orchestrator {kills} times (each in turn), restarted");
    c.finish(row("kill9-orchestrator", faults, clients), load)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_azure_storage_under_load() {
    let _serial = crate::report::serial().await;
    let mut c = Cluster::start().await;
    let (restarts, clients) = (pick(1, 3), 6);
    let down = Duration::from_secs(pick(2, 5));
    let load = load::start(&c.bases, "work", clients, PACE);
    for _ in 0..restarts {
        tokio::time::sleep(Duration::from_secs(3)).await;
        c.azurite.restart(down).await;
    }
    tokio::time::sleep(Duration::from_secs(pick(4, 8))).await;
    let faults = format!(
        "Azurite stopped for {} s and started again on its data, {restarts} times",
        down.as_secs()
    );
    c.finish(row("azurite-restart", faults, clients), load)
        .await;
}
