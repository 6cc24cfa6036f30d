//! The suite every sandbox passes: arguments, environment, output and masking, limits,
//! timeouts, cancellation, nothing left running.

use super::*;

/// What every sandbox must do.
pub(super) async fn conformance(r: &Runner) {
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
