//! Hostile runbooks, through the real binary, in each sandbox: each tries to escape, read
//! what it must not, outlive its run, flood, or hurt the engine. Each one must be contained,
//! reported on its execution, and leave nothing behind. The process sandbox runs the ones
//! that apply to it: it shares the host's user, files and network (docs/sandboxes.md), and
//! as root (as here) it reads every process's environment; its server's own environment is
//! hidden only from an unprivileged user (tests/hardening/processes.rs).

use std::time::Duration;

use serde_json::Value;

use crate::common::{ADMIN_KEY, catalog, folders, free_port, processes_with};
use crate::report::Row;

const TOKEN: &str = "tok-hostile-5150-very-secret";

/// (id, script, schema extras, for the process sandbox too).
fn cases(mark: &str) -> Vec<(&'static str, String, &'static str, bool)> {
    vec![
        (
            "read-env",
            "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' 2>/dev/null < \"$f\"; done | grep -c 'CLOUDO_ADMIN_KEY=' || true\n".into(),
            "",
            false,
        ),
        (
            "read-data",
            "head -c 15 \"$1/data/cloudo.db\" 2>/dev/null | grep -q 'SQLite format' && echo ESCAPED read the store || echo contained\n".into(),
            "",
            false,
        ),
        (
            "other-runs",
            "ls -d \"$1\"/tmp/cloudo-run-* 2>/dev/null | grep -q . && echo ESCAPED sees other runs || echo contained\n".into(),
            "",
            false,
        ),
        (
            "write-outside",
            "for p in /etc/x /usr/x /runbook/x /x \"$1\"/x; do touch \"$p\" 2>/dev/null && echo \"ESCAPED wrote $p\"; done; echo contained\n".into(),
            "",
            false,
        ),
        (
            "reach-out",
            "python3 -c '\nimport socket, sys\nfor host, port in ((\"127.0.0.1\", int(sys.argv[1])), (\"127.0.0.1\", int(sys.argv[2])), (\"10.255.255.1\", 80)):\n    try:\n        socket.create_connection((host, port), timeout=2); print(\"ESCAPED reached\", host, port)\n    except OSError:\n        pass\nprint(\"contained\")\n' \"$2\" \"$3\"\n".into(),
            "",
            false,
        ),
        (
            "fork-bomb",
            "bomb() { bomb | bomb & }; bomb; sleep 3; echo contained\n".into(),
            r#", "limits": {"pids": 32, "timeout": 8}"#,
            false,
        ),
        (
            "memory-bomb",
            "python3 -c 'b = bytearray(2 << 30); print(\"ESC\" \"APED\", len(b))'\n".into(),
            r#", "limits": {"memory_mb": 64}"#,
            false,
        ),
        (
            "fill-disk",
            "dd if=/dev/zero of=/tmp/fill bs=1M count=8192 2>&1 | tail -1; echo contained\n".into(),
            r#", "limits": {"memory_mb": 128, "timeout": 30}"#,
            false,
        ),
        (
            "daemon",
            format!("(setsid env -i sh -c 'exec -a {mark} sleep 600' &)\nsleep 600\n"),
            r#", "limits": {"timeout": 2}"#,
            true,
        ),
        (
            "flood",
            "head -c 100000000 /dev/zero | tr '\\0' x\n".into(),
            "",
            true,
        ),
        (
            "secret-split",
            "printf '%s' \"${HOSTILE_TOKEN:0:9}\"; printf 'x' >&2; printf '%s\\n' \"${HOSTILE_TOKEN:9}\"\necho \"$HOSTILE_TOKEN\" >&2\necho contained\n".into(),
            r#", "secrets": ["HOSTILE_TOKEN"]"#,
            true,
        ),
        (
            "signal-worker",
            "kill -9 -1 2>/dev/null; kill -TERM \"$PPID\" 2>/dev/null; kill -9 1 2>/dev/null; echo contained\n".into(),
            "",
            false,
        ),
        (
            "cmdline",
            "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; echo; echo contained\n".into(),
            "",
            true,
        ),
    ]
}

/// Did the execution show the case contained? `None` when it did, else why not.
fn breach(id: &str, e: &Value) -> Option<String> {
    let out = e["output"].as_str().unwrap_or_default();
    let status = e["status"].as_str().unwrap_or_default();
    let bad = |why: &str| {
        Some(format!(
            "{id}: {why} ({status}: {})",
            &out[..out.len().min(300)]
        ))
    };
    if out.contains("ESCAPED") {
        return bad("escaped");
    }
    match id {
        "read-env" if out.lines().last() != Some("0") => bad("saw a key in an environment"),
        "read-env" => None,
        "memory-bomb" if !(status == "failed" && e["oom"] == true) => bad("not killed as oom"),
        "daemon" if status != "timeout" => bad("not ended at its timeout"),
        "flood" if e["output_truncated"] != true => bad("output not capped"),
        // Judged by what the engine reports and what is left: a `kill -9 -1` may take the
        // runbook's own shell with it.
        "fork-bomb" | "fill-disk" | "flood" | "memory-bomb" | "daemon" | "signal-worker" => None,
        _ if !out.contains("contained") => bad("did not finish its checks"),
        _ => None,
    }
}

/// Containers the Engine API still has for cloudo runs (`docker ps -a`).
fn containers() -> usize {
    let Ok(host) = std::env::var("DOCKER_HOST") else {
        return 0;
    };
    let script = "import json, socket, sys\nhost = sys.stdin.read().strip().removeprefix('unix://')\ns = socket.socket(socket.AF_UNIX); s.connect(host)\ns.sendall(b'GET /containers/json?all=1 HTTP/1.0\\r\\n\\r\\n')\ndata = b''\nwhile True:\n    c = s.recv(65536)\n    if not c: break\n    data += c\nbody = data.split(b'\\r\\n\\r\\n', 1)[1]\nprint(sum(1 for c in json.loads(body) if 'cloudo.exec_id' in (c.get('Labels') or {})))\n";
    crate::common::python(script, host.as_bytes())
        .trim()
        .parse()
        .unwrap()
}

async fn hostile(sandbox: &str) {
    let _serial = crate::report::serial().await;
    let mark = format!("hostile-daemon-{}", std::process::id());
    let api = free_port();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in other.incoming() {});
    let cases: Vec<_> = cases(&mark)
        .into_iter()
        .filter(|c| sandbox != "process" || c.3)
        .collect();
    let files: Vec<(String, String)> = cases
        .iter()
        .map(|(id, s, _, _)| (format!("{id}.sh"), s.clone()))
        .collect();
    let frefs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let mut env = crate::crash::prepared(&[], &frefs)
        .arg("--listen")
        .arg(&format!("127.0.0.1:{api}"))
        .arg("--kill-grace")
        .arg("1")
        .env("CLOUDO_SECRET_HOSTILE_TOKEN", TOKEN);
    if sandbox == "docker" {
        let image = std::env::var("CLOUDO_TEST_IMAGE")
            .expect("CLOUDO_TEST_IMAGE (run test-env/setup-sandbox.sh)");
        env = env.arg("--sandbox-image").arg(&image);
    }
    // Each runbook gets the test's folder (the data dir, the runs' folders) and two ports
    // it must not reach: the API's and another local listener's.
    let root = env.path().display().to_string();
    let entities: Vec<String> = cases
        .iter()
        .map(|(id, _, extra, _)| {
            format!(
                r#"{{"id": "{id}", "runbook": "{id}.sh", "run_args": "{root} {api} {other_port}", "sandbox": "{sandbox}", "timeout": 60{extra}}}"#
            )
        })
        .collect();
    let refs: Vec<&str> = entities.iter().map(String::as_str).collect();
    std::fs::write(env.path().join("schemas.json"), catalog(&refs)).unwrap();
    let mut s = env.start();
    let mut breaches = Vec::new();
    let mut secrets = 0;
    let mut outcomes = Vec::new();
    for (id, _, _, _) in &cases {
        let e = s.wait(&s.trigger(id).await).await;
        let out = e["output"].as_str().unwrap_or_default();
        secrets += out.matches(ADMIN_KEY).count() + out.matches(TOKEN).count();
        outcomes.push(format!(
            "{id}: {}",
            e["status"].as_str().unwrap_or_default()
        ));
        breaches.extend(breach(id, &e));
        let (code, _) = s.get("/api/healthz").await;
        if code != 200 {
            breaches.push(format!("{id}: the engine stopped answering"));
        }
    }
    let alive = s.child.try_wait().unwrap().is_none();
    let pid = s.child.id();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let daemons = processes_with(&mark);
    s.stop();
    secrets += s.logs().matches(ADMIN_KEY).count() + s.logs().matches(TOKEN).count();
    let (left, what) = crate::crash::leftovers(&env, &[pid]);
    let boxes = if sandbox == "docker" { containers() } else { 0 };
    let stage = folders(&env.path().join("tmp"), "cloudo-stage-").len();

    let mut row = Row::new(&format!("hostile-runbooks-{sandbox}"));
    row.load = format!("{} hostile runbooks, one after another", cases.len());
    row.faults = cases.iter().map(|c| c.0).collect::<Vec<_>>().join(", ");
    row.accepted = cases.len();
    row.found = outcomes.len();
    row.leftovers = left + daemons + boxes + stage;
    row.secrets = secrets;
    row.violations = breaches.len() + usize::from(!alive);
    row.notes = format!(
        "{}; breaches: {breaches:?}; left: {what}, {daemons} daemons, {boxes} containers",
        outcomes.join(", ")
    );
    row.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_runbooks_in_bwrap() {
    hostile("bwrap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_runbooks_in_docker() {
    hostile("docker").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_runbooks_in_the_process_sandbox() {
    hostile("process").await;
}
