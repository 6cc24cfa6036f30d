//! Git over ssh, as git's command line does it: `ssh host git-upload-pack '<path>'`, the
//! protocol on the child's stdin and stdout. Host keys are checked by ssh against
//! `known_hosts` (the user's, or `--git-known-hosts`); an unknown host fails the fetch
//! (`BatchMode`, `StrictHostKeyChecking`: ssh never asks, never adds a key).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream};

use super::address::{option_path, parse, quoted};
use super::{Access, io_error};

/// What ssh says on stderr, kept for the error (the start of it).
const STDERR_KEPT: usize = 2048;
/// A server that says nothing for this long ends the fetch (libssh2 had the same limit).
const SILENCE: Duration = Duration::from_secs(60);
/// The only variables ssh gets: never the worker's secrets (`CLOUDO_GIT_TOKEN`, ...),
/// which a `ProxyCommand` or a `SendEnv` would otherwise see.
/// (Proxies and Kerberos stay: an `ssh_config` `ProxyCommand` or GSSAPI may need them.)
const ENV_KEPT: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "SSH_AUTH_SOCK",
    "KRB5CCNAME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

pub(super) struct Ssh {
    access: Access,
    conn: Mutex<Option<Arc<Mutex<Conn>>>>,
}

struct Conn {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    /// What ssh said on stderr, once it has been read to its end.
    stderr: Receiver<String>,
}

impl Ssh {
    pub(super) fn new(access: Access) -> Self {
        Self {
            access,
            conn: Mutex::new(None),
        }
    }

    fn command(&self, url: &str) -> Result<Command, String> {
        let addr = parse(url)?;
        let mut cmd = Command::new("ssh");
        cmd.env_clear().envs(
            ENV_KEPT
                .iter()
                .filter_map(|k| Some((k, std::env::var_os(k)?))),
        );
        cmd.args([
            "-x",
            "-T",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ]);
        // Connect, and then notice a server gone quiet at the ssh level (the read limit
        // below covers one that answers keepalives but sends nothing).
        cmd.args(["-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15"]);
        cmd.args(["-o", "ServerAliveCountMax=4"]);
        if let Some(key) = &self.access.ssh_key {
            cmd.args(["-o", "IdentitiesOnly=yes", "-o"])
                .arg(format!("IdentityFile={}", option_path(key)?));
        }
        if let Some(hosts) = &self.access.known_hosts {
            cmd.arg("-o")
                .arg(format!("UserKnownHostsFile={}", option_path(hosts)?));
        }
        if let Some(port) = addr.port {
            cmd.args(["-p", &port.to_string()]);
        }
        cmd.args(["-l", &addr.user, "--", &addr.host])
            .arg(format!("git-upload-pack {}", quoted(&addr.path)));
        Ok(cmd)
    }

    fn connect(&self, url: &str) -> Result<Conn, git2::Error> {
        let mut cmd = self.command(url).map_err(|e| git2::Error::from_str(&e))?;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| git2::Error::from_str(&format!("cannot run ssh: {e}")))?;
        let (Some(stdin), Some(stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(git2::Error::from_str("ssh started without its pipes"));
        };
        let (said, stderr) = channel();
        std::thread::spawn(move || {
            let (mut kept, mut buf) = (String::new(), [0u8; 512]);
            while let Ok(n @ 1..) = err.read(&mut buf) {
                if kept.len() < STDERR_KEPT {
                    kept.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
            let _ = said.send(kept);
        });
        Ok(Conn {
            child,
            stdin: Some(stdin),
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
        // The advertisement opens the connection; the negotiation goes on over it (git2
        // keeps the first stream for it and does not ask again).
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
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

/// Ends ssh once libgit2 has read what it wanted: its input closed, a moment to leave on
/// its own, then killed; always reaped.
fn end(conn: &Mutex<Conn>) {
    let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
    drop(c.stdin.take());
    let deadline = Instant::now() + Duration::from_millis(200);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = c.child.kill();
    let _ = c.child.wait();
}

impl Conn {
    /// ssh's reason when it has failed, else `None`.
    fn failure(&mut self) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return None,
                Ok(Some(status)) => {
                    let said = self
                        .stderr
                        .recv_timeout(Duration::from_secs(1))
                        .unwrap_or_default();
                    return Some(format!("ssh failed ({status}): {}", said.trim()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => return None,
            }
        }
        None
    }

    /// Waits until ssh has something to read, at most [`SILENCE`].
    fn readable(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + SILENCE;
        let mut fd = libc::pollfd {
            fd: self.stdout.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            // SAFETY: one valid pollfd, for the duration of the call.
            #[allow(unsafe_code)]
            let n = unsafe { libc::poll(&mut fd, 1, ms) };
            match n {
                0 => {
                    // Reaped by `end` when libgit2 closes the transport.
                    let _ = self.child.kill();
                    return Err(io_error(format!(
                        "the repository's server sent nothing for {} s",
                        SILENCE.as_secs()
                    )));
                }
                n if n > 0 => return Ok(()),
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
}

struct Stream(Arc<Mutex<Conn>>);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.readable()?;
        let n = c.stdout.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        // The other end closed before git was done: say why, if ssh failed.
        match c.failure() {
            Some(why) => Err(io_error(why)),
            None => Ok(0),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let written = match c.stdin.as_mut() {
            Some(stdin) => stdin.write(data),
            None => return Err(io_error("ssh's input is closed")),
        };
        match written {
            Ok(n) => Ok(n),
            // ssh is gone: its reason, not "broken pipe".
            Err(e) => Err(c.failure().map(io_error).unwrap_or(e)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match c.stdin.as_mut() {
            Some(stdin) => stdin.flush(),
            None => Ok(()),
        }
    }
}
