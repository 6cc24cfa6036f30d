//! What tests read off the host and sign like third parties do.

use std::process::{Command, Stdio};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Names of the entries in `dir` that start with `prefix` (none if `dir` is missing).
pub fn folders(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Bytes of the files in an engine's data dir (the SQLite database and its WAL).
pub fn stored_bytes(env: &super::Env) -> u64 {
    std::fs::read_dir(super::data_dir(env))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Slack's v0 signature of `body` sent at `ts`: `v0=<hex HMAC-SHA256 of v0:ts:body>`.
pub fn slack_signature(secret: &str, ts: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v0={hex}")
}

/// Runs the Python `script` (the test tools' python3) with `input` on stdin; its stdout, or
/// the test fails with its stderr.
pub fn python(script: &str, input: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (test-env/setup.sh installs the test tools)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Host processes whose command line contains `mark` (a container's processes too: they
/// run on the host kernel).
pub fn processes_with(mark: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| c.windows(mark.len()).any(|w| w == mark.as_bytes()))
        })
        .count()
}
