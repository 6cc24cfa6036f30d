//! What runs leave on the host after a crash, and secrets on command lines.

use super::*;
use common::{folders, processes_with, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_killed_server_are_removed_at_the_next_start() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "daemon", "runbook": "daemon.sh", "timeout": 3}"#,
            r#"{"id": "long-p", "runbook": "long.sh"}"#,
            r#"{"id": "long-b", "runbook": "long.sh", "sandbox": "bwrap"}"#,
        ]),
        &[
            // Clears its environment and leaves the process group: only a cgroup finds it.
            ("daemon.sh", "env -i setsid sleep 3000.111 &\nsleep 300\n"),
            ("long.sh", "sleep 3000.222\n"),
        ],
    );
    // A file only its owner may read: the bwrap run gets a staged copy of the folder (a
    // readable folder is bound as it is), whose leftover is checked below too.
    std::fs::set_permissions(
        env.path().join("runbooks/daemon.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let tmp = env.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // Traversable by the bwrap sandbox's unprivileged user, like /tmp.
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env = env.env("TMPDIR", tmp.to_str().unwrap());
    let mut s = env.start();
    assert!(
        s.logs().contains("as this server's own user"),
        "the process sandbox warns that runbooks run as the server's user"
    );

    // An env -i setsid daemon ends at the run's timeout.
    let e = s.wait(&s.trigger("daemon").await).await;
    assert_eq!(e["status"], "timeout", "{e}");
    until(
        || processes_with("3000.111") == 0,
        "the env -i setsid daemon outlived the timeout",
    )
    .await;

    // Killed -9 while two runs are live (process and bwrap): their folders, the bwrap
    // staging copy, their cgroups and the runbooks themselves are left behind.
    let p = s.trigger("long-p").await;
    let b = s.trigger("long-b").await;
    s.wait_for_status(&p, "running").await;
    s.wait_for_status(&b, "running").await;
    until(|| processes_with("3000.222") == 2, "both runbooks started").await;
    let pid = s.child.id();
    s.kill9();
    let run_dirs = folders(&tmp, &format!("cloudo-run-{pid}n"));
    let stage_dirs = folders(&tmp, &format!("cloudo-stage-{pid}n"));
    assert!(
        !run_dirs.is_empty() && !stage_dirs.is_empty(),
        "{run_dirs:?} {stage_dirs:?}"
    );
    let groups = || {
        ["pids", "memory", "cpu"]
            .iter()
            .flat_map(|c| {
                folders(
                    &std::path::Path::new("/sys/fs/cgroup")
                        .join(c)
                        .join("cloudo"),
                    "",
                )
            })
            .filter(|n| n.contains(&format!("-{pid}n")))
            .count()
    };
    assert!(groups() > 0, "the runs' cgroups are there");

    // The next start removes what belongs to no live run, and the orphans go with it.
    let s = env.start();
    assert!(folders(&tmp, &format!("cloudo-run-{pid}n")).is_empty());
    assert!(folders(&tmp, &format!("cloudo-stage-{pid}n")).is_empty());
    assert_eq!(groups(), 0, "cgroups of the killed server's runs");
    until(
        || processes_with("3000.222") == 0,
        "a runbook of the killed server still runs",
    )
    .await;
    assert!(
        s.logs()
            .contains("removed what runs of stopped workers left behind"),
        "{}",
        s.logs()
    );
    let (_, e) = s.get(&format!("/api/executions/{p}")).await;
    assert_eq!(e["status"], "lost", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_on_any_command_line_while_a_bwrap_run_is_live() {
    let secret = "db-pass-7c1e9a44-not-on-a-cmdline";
    let env = Env::new(
        &catalog(&[r#"{"id": "db", "runbook": "db.sh", "secrets": ["DB_PASSWORD"]}"#]),
        &[(
            "db.sh",
            "test -n \"$DB_PASSWORD\" && echo has-it\necho \"$DB_PASSWORD\"\nsleep 1.5\n",
        )],
    )
    .arg("--sandbox")
    .arg("bwrap")
    .env("CLOUDO_SECRET_DB_PASSWORD", secret);
    let s = env.start();
    let id = s.trigger("db").await;
    s.wait_for_status(&id, "running").await;
    let (mut scans, mut seen) = (0, 0);
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        seen += processes_with(secret);
        scans += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = s.wait(&id).await;
    assert_eq!(e["sandbox"], "bwrap", "{e}");
    assert_eq!(e["output"], "has-it\n***\n", "{e}");
    assert!(scans > 10);
    assert_eq!(seen, 0, "a process showed the secret on its command line");
}

/// The server's environment (keys, the managed identity's header on Azure) is not readable
/// by other processes of its user, such as process-sandbox runbooks: it makes itself
/// non-dumpable, so its /proc files belong to root. Run as an unprivileged user to see it.
#[test]
fn the_servers_environment_is_hidden_from_its_own_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut child = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_cloudo"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dev-no-auth",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("CLOUDO_SLACK_TOKEN", "xoxb-only-the-server-may-read-0001")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("setpriv (util-linux)");
    // setpriv execs cloudo in place: the child's pid is the server's.
    let proc_dir = std::path::Path::new("/proc").join(child.id().to_string());
    let started = std::time::Instant::now();
    let owner = loop {
        let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("serve") {
            // Give it a moment past exec to run main's first lines.
            std::thread::sleep(std::time::Duration::from_millis(300));
            break std::fs::metadata(proc_dir.join("environ")).unwrap().uid();
        }
        assert!(started.elapsed().as_secs() < 10, "cloudo did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        owner, 0,
        "/proc/<server>/environ belongs to its own user (65534), readable by its runbooks"
    );
}
