//! What the isolating sandboxes (bwrap, docker) must also do.

use super::*;

/// What the isolating sandboxes must also do.
pub(super) async fn isolation(r: &Runner, network_allowed: impl Fn(&mut RunSpec) + Copy) {
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
