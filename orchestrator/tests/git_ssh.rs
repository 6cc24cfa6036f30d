//! Runbooks from git over ssh through the real binary, against a real OpenSSH server on
//! loopback: the key and known_hosts options, an unknown host and a refused key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::git::{Repo, hello_from, refresh};
use common::{Env, stdout_of};

/// `sshd` on a free loopback port, serving the test's user with `client_key`.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "client_key", "other_key"] {
            stdout_of(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join(key)),
            );
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // Its privilege separation folder (Debian's package makes it at boot).
        std::fs::create_dir_all("/run/sshd").unwrap();
        // A free port can be taken between our look and sshd's bind: try a few.
        let (child, port) = (0..5)
            .find_map(|_| Self::listen(d))
            .expect("sshd never listened (Debian's openssh-server, from test-env/setup.sh)");
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}"),
        )
        .unwrap();
        std::fs::write(d.join("empty_known_hosts"), "").unwrap();
        Self { child, port, dir }
    }

    /// sshd on a port that was free a moment ago, once it accepts connections.
    fn listen(d: &Path) -> Option<(Child, u16)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run /usr/sbin/sshd (Debian's openssh-server, from test-env/setup.sh)");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some((child, port));
            }
            if let Ok(Some(_)) = child.try_wait() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self, bare: &Path) -> String {
        let user = stdout_of(Command::new("id").arg("-un"));
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            user.trim(),
            self.port,
            bare.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn env(url: &str, key: &Path, known_hosts: &Path) -> Env {
    hello_from(url)
        .arg("--git-ssh-key")
        .arg(key.to_str().unwrap())
        .arg("--git-known-hosts")
        .arg(known_hosts.to_str().unwrap())
}

/// The reason the runbooks are not ready, as a key holder reads it.
async fn not_ready(env: &Env) -> String {
    let s = env.start();
    let (code, ready) = s.get("/api/readyz").await;
    assert_eq!(code, 503, "{ready}");
    let (code, list) = s.get("/api/runbooks").await;
    assert_eq!(code, 503, "{list}");
    list["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn runbooks_come_over_ssh_with_the_key_and_known_hosts_given() {
    let sshd = Sshd::start();
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path());
    repo.write("ops/hello.sh", "echo over-ssh\n");
    let commit = repo.commit("v1");
    let url = sshd.url(&repo.bare);

    let env_ok = env(&url, &sshd.path("client_key"), &sshd.path("known_hosts"));
    let s = env_ok.start();
    let (code, ready) = s.get("/api/readyz").await;
    assert_eq!(code, 200, "{ready}\n{}", s.logs());
    let e = s.wait(&s.trigger("hello").await).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["output"], "over-ssh\n");
    assert_eq!(e["runbook_commit"], commit.as_str());
    // A new commit arrives on refresh, over a new connection.
    repo.write("ops/hello.sh", "echo over-ssh again\n");
    let second = repo.commit("v2");
    let res = refresh(&s).await;
    assert_eq!(res.status(), 200);
    let e = s.wait(&s.trigger("hello").await).await;
    assert_eq!(e["runbook_commit"], second.as_str(), "{e}");
    assert_eq!(e["output"], "over-ssh again\n");
    drop(s);

    // A host whose key is not listed is refused (ssh never asks).
    let unknown = env(
        &url,
        &sshd.path("client_key"),
        &sshd.path("empty_known_hosts"),
    );
    let err = not_ready(&unknown).await;
    assert!(err.contains("Host key verification failed"), "{err}");

    // A key the server does not accept.
    let refused = env(&url, &sshd.path("other_key"), &sshd.path("known_hosts"));
    let err = not_ready(&refused).await;
    assert!(err.contains("Permission denied"), "{err}");
}
