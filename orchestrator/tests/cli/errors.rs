//! Failures are one line saying what to do, with an exit code a script can tell apart.

use super::common::ADMIN_KEY;
use super::{admin, cloudo, code, env, json_of, run, stderr, stdout};

/// Exactly one line on stderr, starting `cloudo: `; nothing on stdout.
fn one_line(o: &std::process::Output) -> String {
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("cloudo: "), "{err:?}");
    assert_eq!(stdout(o), "", "nothing on stdout");
    err
}

#[tokio::test]
async fn refusals_name_the_cause_and_the_fix() {
    let env = env();
    let s = env.start();

    // 401: a key the server does not know.
    let o = run(&mut cloudo(&s.base, Some("cloudo_wrong_key"), &["ls"]));
    assert_eq!(code(&o), 2);
    let err = one_line(&o);
    assert!(
        err.contains("refused the key") && err.contains("cloudo login"),
        "{err}"
    );

    // 403: the role it would need.
    let viewer = json_of(&admin(
        &s,
        &[
            "keys", "--url", &s.base, "create", "--name", "v", "--role", "viewer", "--json",
        ],
    ))["key"]
        .as_str()
        .unwrap()
        .to_string();
    let id = s.trigger("count").await;
    let o = run(&mut cloudo(&s.base, Some(&viewer), &["cancel", &id]));
    assert_eq!(code(&o), 2);
    let err = one_line(&o);
    assert!(
        err.contains("not allowed") && err.contains("operator"),
        "{err}"
    );
    // ... while reading is fine.
    let o = run(&mut cloudo(&s.base, Some(&viewer), &["show", &id]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // 404 names the id.
    let unknown = "01a23eb4-0000-744c-a54e-07fb8c8a502e";
    let o = admin(&s, &["show", unknown]);
    assert_eq!(code(&o), 2);
    let err = one_line(&o);
    assert!(err.contains("not found") && err.contains(unknown), "{err}");
    let o = admin(&s, &["trigger", "no-such-schema"]);
    let err = one_line(&o);
    assert!(err.contains("no-such-schema"), "{err}");

    // Bad input, before anything is sent.
    let o = admin(&s, &["trigger", "count", "--arg", "novalue"]);
    assert_eq!(code(&o), 2);
    assert!(one_line(&o).contains("NAME=VALUE"));
}

#[test]
fn an_unreachable_server_is_said_with_where_and_what_to_check() {
    let port = super::common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let o = run(&mut cloudo(&url, Some(ADMIN_KEY), &["ls"]));
    assert_eq!(code(&o), 3, "worth retrying");
    let err = one_line(&o);
    assert!(err.contains(&url) && err.contains("CLOUDO_URL"), "{err}");
    let o = run(&mut cloudo("not a url", None, &["ls"]));
    assert_eq!(code(&o), 2);
    assert!(one_line(&o).contains("not a server address"));
}
