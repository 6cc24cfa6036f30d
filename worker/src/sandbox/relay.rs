//! The relay: how a runbook in a sandbox with a network of its own (bwrap, docker) reaches
//! the worker's token endpoint. The sandbox gets the endpoint's Unix socket and this
//! program (the worker's own binary) at [`RELAY_PATH`], and starts the runbook through it:
//! `relay __cloudo-relay <program> <args>...`.
//!
//! The relay, inside the sandbox and as the runbook's user:
//! 1. fetches the run's files (a kubeconfig) from the endpoint when [`FILES_VAR`] names
//!    them, writes them under `$HOME/.cloudo` (0600) and points their variables at them;
//! 2. when the run has Azure access (`IDENTITY_HEADER` is set), listens on an ephemeral
//!    port of the sandbox's own loopback, sets `IDENTITY_ENDPOINT` to it, and leaves a
//!    detached process that forwards each connection to the socket;
//! 3. replaces itself with the runbook (exec), so exit codes and signals are the runbook's.
//!
//! The forwarder is forked twice so that it belongs to the sandbox's init (bwrap's, or the
//! container's), never to the runbook, which might wait for its children; it ends with the
//! sandbox. The relay's own secret ([`SECRET_VAR`]) never reaches the runbook.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{RunSpec, SandboxError};

/// The first argument that makes the worker's binary the relay.
pub const RELAY_ARG: &str = "__cloudo-relay";
/// Where sandboxes put the relay program.
pub const RELAY_PATH: &str = "/run/cloudo/relay";
/// Where sandboxes put the token endpoint's socket.
pub const SOCKET_PATH: &str = "/run/cloudo/identity.sock";
/// The run's secret, for fetching its files (removed before the runbook starts).
pub const SECRET_VAR: &str = "CLOUDO_RELAY_SECRET";
/// The run's files to fetch: `name=VARIABLE` pairs, comma-separated.
pub const FILES_VAR: &str = "CLOUDO_RELAY_FILES";
/// The endpoint's path for a run's file.
pub const FILE_PATH: &str = "/cloudo/run-file/";

/// For the docker sandbox: a run with Azure access or run files starts through the relay,
/// with the token endpoint's socket mapped in: the relay serves tokens on the container's
/// loopback and writes the files (fetched with the run's secret) into its private `HOME`.
pub(super) fn for_container(
    spec: &RunSpec,
    cmd: &mut Vec<String>,
    env: &mut Vec<String>,
    binds: &mut Vec<String>,
) -> Result<(), SandboxError> {
    let Some(link) = &spec.broker else {
        if spec.files.is_empty() {
            return Ok(());
        }
        return Err(SandboxError(
            "this run has files (a kubeconfig) and no token endpoint to fetch them from".into(),
        ));
    };
    if !link.tokens && spec.files.is_empty() {
        return Ok(());
    }
    binds.push(format!("{}:{}:ro", link.relay.display(), RELAY_PATH));
    binds.push(format!("{}:{}", link.socket.display(), SOCKET_PATH));
    cmd.splice(0..0, [RELAY_PATH.to_string(), RELAY_ARG.to_string()]);
    env.push(format!("{}={}", SECRET_VAR, link.secret.expose()));
    let files: Vec<String> = spec
        .files
        .iter()
        .map(|f| format!("{}={}", f.name, f.env))
        .collect();
    if !files.is_empty() {
        env.push(format!("{}={}", FILES_VAR, files.join(",")));
    }
    Ok(())
}

/// Largest run file the relay takes.
const MAX_FILE: usize = 1 << 20;

/// When this process was started as the relay, runs it; returns only otherwise. Call it
/// first thing in `main`, before any thread starts.
pub fn run_if_relay() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(RELAY_ARG)) {
        return;
    }
    let why = relay(args.collect());
    eprintln!("cloudo: the runbook could not start: {why}");
    std::process::exit(127);
}

/// Prepares the run and execs the runbook; returns why it could not.
fn relay(argv: Vec<OsString>) -> String {
    let Some((program, args)) = argv.split_first() else {
        return "no runbook to start".into();
    };
    let mut env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    let secret = env
        .remove(OsStr::new(SECRET_VAR))
        .and_then(|s| s.into_string().ok())
        .unwrap_or_default();
    let files = env
        .remove(OsStr::new(FILES_VAR))
        .and_then(|s| s.into_string().ok())
        .unwrap_or_default();
    let home = PathBuf::from(
        env.get(OsStr::new("HOME"))
            .map_or("/tmp".into(), Clone::clone),
    );
    for pair in files.split(',').filter(|p| !p.is_empty()) {
        match fetch_file(pair, &secret, &home) {
            Ok((var, path)) => {
                env.insert(var.into(), path.into_os_string());
            }
            Err(why) => return why,
        }
    }
    if env.contains_key(OsStr::new("IDENTITY_HEADER")) {
        match start_forwarder() {
            Ok(endpoint) => {
                env.insert("IDENTITY_ENDPOINT".into(), endpoint.into());
            }
            Err(why) => return why,
        }
    }
    let err = std::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .exec();
    format!("cannot start {}: {err}", program.to_string_lossy())
}

/// Fetches one `name=VARIABLE` file; returns the variable and where the file is.
fn fetch_file(pair: &str, secret: &str, home: &Path) -> Result<(String, PathBuf), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let (name, var) = pair
        .split_once('=')
        .filter(|(n, v)| is_plain(n) && is_plain(v))
        .ok_or_else(|| format!("bad run file {pair:?}"))?;
    let body = get(&format!("{FILE_PATH}{name}"), secret)
        .map_err(|e| format!("cannot fetch the run's {name}: {e}"))?;
    let dir = home.join(".cloudo");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(&body))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((var.to_string(), path))
}

fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// GET `path` from the endpoint over its socket (HTTP/1.1, one request, the answer's body).
fn get(path: &str, secret: &str) -> Result<Vec<u8>, String> {
    let mut s = UnixStream::connect(SOCKET_PATH).map_err(|e| format!("{SOCKET_PATH}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(30)));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: cloudo\r\nX-IDENTITY-HEADER: {secret}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    s.take(MAX_FILE as u64 + 4096)
        .read_to_end(&mut answer)
        .map_err(|e| e.to_string())?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no answer")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head.split(' ').nth(1).unwrap_or_default();
    let body = answer[split + 4..].to_vec();
    if status != "200" {
        return Err(format!(
            "the token endpoint answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    if head.to_ascii_lowercase().contains("transfer-encoding") {
        return Err("unexpected chunked answer".into());
    }
    Ok(body)
}

/// Listens on the sandbox's loopback and leaves the forwarder running; returns the
/// endpoint's URL.
#[allow(unsafe_code)]
fn start_forwarder() -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot listen on the sandbox's loopback: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    // SAFETY: the relay is single-threaded (it runs before `main` starts anything), so the
    // forked children may run any code; each child leaves by `_exit` or never returns.
    match unsafe { libc::fork() } {
        -1 => Err(format!(
            "cannot start the forwarder: {}",
            std::io::Error::last_os_error()
        )),
        0 => {
            // SAFETY: as above; the middle child exits at once so the forwarder is adopted
            // by the sandbox's init.
            unsafe {
                if libc::fork() == 0 {
                    quiet();
                    forward(&listener);
                }
                libc::_exit(0)
            }
        }
        middle => {
            let mut status = 0;
            // SAFETY: waits for the child forked above, whose pid this is.
            unsafe { libc::waitpid(middle, &mut status, 0) };
            Ok(format!("http://127.0.0.1:{port}/msi/token"))
        }
    }
}

/// Points the forwarder's standard streams at /dev/null: it must not hold the runbook's
/// output open.
#[allow(unsafe_code)]
fn quiet() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this (single-threaded) process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// Forwards every connection to the endpoint's socket, until the sandbox ends.
fn forward(listener: &TcpListener) -> ! {
    loop {
        if let Ok((tcp, _)) = listener.accept() {
            std::thread::spawn(move || {
                if let Ok(unix) = UnixStream::connect(SOCKET_PATH) {
                    pipe(tcp, unix);
                }
            });
        }
    }
}

/// Copies both ways until either side closes.
fn pipe(tcp: TcpStream, unix: UnixStream) {
    let (Ok(mut tcp_in), Ok(mut unix_in)) = (tcp.try_clone(), unix.try_clone()) else {
        return;
    };
    let (mut tcp_out, mut unix_out) = (tcp, unix);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut tcp_in, &mut unix_out);
        let _ = unix_out.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut unix_in, &mut tcp_out);
    let _ = tcp_out.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}
