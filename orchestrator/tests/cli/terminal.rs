//! On a terminal (a pseudo-terminal from util-linux's `script`): colours, unless
//! `NO_COLOR`; and the spinner with the status while `--follow` waits.

use std::process::Command;

use super::common::ADMIN_KEY;
use super::{code, env};

/// Runs `cloudo <args>` on a pseudo-terminal; everything it wrote (stdout and stderr
/// share the terminal) and its exit code.
fn on_tty(url: &str, args: &str, no_color: bool) -> (String, i32) {
    let bin = env!("CARGO_BIN_EXE_cloudo");
    let mut cmd = Command::new("script");
    cmd.args(["-qefc", &format!("{bin} {args}"), "/dev/null"])
        .env("CLOUDO_URL", url)
        .env("CLOUDO_KEY", ADMIN_KEY)
        .env(
            "CLOUDO_CLIENT_CONFIG",
            "/nonexistent/cloudo-test-config.toml",
        )
        .env("TERM", "xterm");
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let out = cmd.output().expect("script (util-linux)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        code(&out),
    )
}

#[tokio::test]
async fn a_terminal_gets_colours_and_a_spinner_and_no_color_turns_colours_off() {
    let env = env();
    let s = env.start();
    let id = s.trigger("count").await;
    s.wait(&id).await;

    let (coloured, rc) = on_tty(&s.base, "ls", false);
    assert_eq!(rc, 0, "{coloured}");
    assert!(
        coloured.contains("\x1b[1mID\x1b[0m"),
        "a bold header: {coloured:?}"
    );
    assert!(
        coloured.contains("\x1b[32msucceeded\x1b[0m"),
        "a green status: {coloured:?}"
    );
    let (plain, _) = on_tty(&s.base, "ls", true);
    assert!(!plain.contains("\x1b["), "NO_COLOR: {plain:?}");
    assert!(plain.contains("succeeded"));

    // Waiting for an approval: the spinner says so, with the time elapsed; the approval
    // comes from elsewhere and the follow then ends with the run.
    let base = s.base.clone();
    let follow = std::thread::spawn(move || on_tty(&base, "trigger gated --follow", true));
    let gid = loop {
        let (_, page) = s.get("/api/executions?schema_id=gated&limit=1").await;
        if let Some(e) = page["items"].get(0)
            && e["status"] == "pending"
        {
            break e["exec_id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let res = s
        .http
        .post(s.url(&format!("/api/executions/{gid}/approve")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (screen, rc) = follow.join().unwrap();
    assert_eq!(rc, 0, "{screen}");
    assert!(
        screen.contains("⠙") || screen.contains("⠹"),
        "a spinner: {screen:?}"
    );
    assert!(
        screen.contains(" pending 1s"),
        "the status and time: {screen:?}"
    );
    assert!(screen.contains("line 5"), "then the output: {screen:?}");
}
