//! Git over ssh, as git's command line does it: `ssh host git-upload-pack '<path>'`, the
//! protocol on the child's stdin and stdout. Host keys are checked by ssh against
//! `known_hosts` (the user's, or `--git-known-hosts`); an unknown host fails the fetch
//! (`BatchMode`: ssh never asks).

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream};

use super::{Access, io_error};

/// What ssh says on stderr, kept for the error (the start of it).
const STDERR_KEPT: usize = 2048;

pub(super) struct Ssh {
    access: Access,
    conn: Mutex<Option<Arc<Mutex<Conn>>>>,
}

struct Conn {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: Arc<Mutex<String>>,
}

/// `ssh://[user@]host[:port]/path` or scp-like `[user@]host:path`.
#[derive(Debug, PartialEq)]
struct Address {
    user: String,
    host: String,
    port: Option<u16>,
    path: String,
}

fn parse(url: &str) -> Result<Address, String> {
    let bad = || format!("not an ssh repository address: {url:?}");
    let (authority, path) = match url.split_once("://") {
        Some((_, rest)) => {
            let slash = rest.find('/').ok_or_else(bad)?;
            (&rest[..slash], rest[slash..].to_string())
        }
        None => {
            let (authority, path) = url.split_once(':').ok_or_else(bad)?;
            (authority, path.to_string())
        }
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (u, h),
        // As before (libssh2): the user git hosts expect.
        None => ("git", authority),
    };
    let (host, port) = match host_port.strip_prefix('[') {
        // [IPv6]:port
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
        None => None,
    };
    // Never an option of ssh's.
    if host.is_empty() || host.starts_with('-') || user.starts_with('-') || path.is_empty() {
        return Err(bad());
    }
    Ok(Address {
        user: user.to_string(),
        host: host.to_string(),
        port,
        path,
    })
}

/// The path in single quotes, as the remote shell reads it (git's `sq_quote`).
fn quoted(path: &str) -> String {
    format!("'{}'", path.replace('\'', r"'\''"))
}

impl Ssh {
    pub(super) fn new(access: Access) -> Self {
        Self {
            access,
            conn: Mutex::new(None),
        }
    }

    fn connect(&self, url: &str) -> Result<Conn, git2::Error> {
        let addr = parse(url).map_err(|e| git2::Error::from_str(&e))?;
        let mut cmd = Command::new("ssh");
        cmd.args(["-x", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]);
        if let Some(key) = &self.access.ssh_key {
            cmd.args(["-o", "IdentitiesOnly=yes", "-i"]).arg(key);
        }
        if let Some(hosts) = &self.access.known_hosts {
            cmd.arg("-o")
                .arg(format!("UserKnownHostsFile={}", hosts.display()));
        }
        if let Some(port) = addr.port {
            cmd.args(["-p", &port.to_string()]);
        }
        cmd.args(["-l", &addr.user, "--", &addr.host])
            .arg(format!("git-upload-pack {}", quoted(&addr.path)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| git2::Error::from_str(&format!("cannot run ssh: {e}")))?;
        let (Some(stdin), Some(stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(git2::Error::from_str("ssh started without its pipes"));
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        let kept = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                let mut s = kept.lock().unwrap_or_else(|p| p.into_inner());
                if s.len() < STDERR_KEPT {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Ok(Conn {
            child,
            stdin,
            stdout,
            stderr,
        })
    }
}

impl SmartSubtransport for Ssh {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        if matches!(action, Service::ReceivePackLs | Service::ReceivePack) {
            return Err(git2::Error::from_str("runbook repositories are only read"));
        }
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        // The advertisement opens the connection; the negotiation goes on over it.
        let conn = match (&*slot, action) {
            (Some(conn), Service::UploadPack) => conn.clone(),
            _ => {
                if let Some(old) = slot.take() {
                    end(&old);
                }
                slot.insert(Arc::new(Mutex::new(self.connect(url)?)))
                    .clone()
            }
        };
        Ok(Box::new(Stream(conn)))
    }

    fn close(&self) -> Result<(), git2::Error> {
        if let Some(conn) = self.conn.lock().unwrap_or_else(|p| p.into_inner()).take() {
            end(&conn);
        }
        Ok(())
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Stops ssh (libgit2 has read what it wanted) and reaps it.
fn end(conn: &Mutex<Conn>) {
    let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
    let _ = c.child.kill();
    let _ = c.child.wait();
}

struct Stream(Arc<Mutex<Conn>>);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = c.stdout.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        // The other end closed before git was done: say why, if ssh failed.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match c.child.try_wait()? {
                Some(status) if !status.success() => {
                    std::thread::sleep(Duration::from_millis(20)); // its last words
                    let said = c.stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    return Err(io_error(format!("ssh failed ({status}): {}", said.trim())));
                }
                Some(_) => break,
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        Ok(0)
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stdin
            .write(data)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stdin
            .flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_both_forms() {
        let a = parse("ssh://deploy@git.example.com:2222/srv/runbooks.git").unwrap();
        assert_eq!(
            a,
            Address {
                user: "deploy".into(),
                host: "git.example.com".into(),
                port: Some(2222),
                path: "/srv/runbooks.git".into()
            }
        );
        let a = parse("git@github.com:org/runbooks.git").unwrap();
        assert_eq!((a.user.as_str(), a.port), ("git", None));
        assert_eq!(
            (a.host.as_str(), a.path.as_str()),
            ("github.com", "org/runbooks.git")
        );
        assert_eq!(parse("ssh://host/r.git").unwrap().user, "git");
        assert_eq!(parse("ssh://[::1]:22/r.git").unwrap().host, "::1");
        assert_eq!(parse("ssh://[::1]/r.git").unwrap().port, None);
        for bad in [
            "ssh://-oProxyCommand=x/r",
            "-oProxyCommand=x:r",
            "ssh://host",
            "x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_quoted_for_the_remote_shell() {
        assert_eq!(quoted("/srv/r.git"), "'/srv/r.git'");
        assert_eq!(quoted("it's; rm -rf /"), r"'it'\''s; rm -rf /'");
    }
}
