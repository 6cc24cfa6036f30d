//! libgit2's network transports, written here: smart HTTP(S) on reqwest and rustls, and
//! ssh through the system's OpenSSH client.
//!
//! libgit2 would otherwise link OpenSSL (its HTTPS) and libssh2 (its SSH): a second TLS
//! stack beside rustls, 1.5 MB of idle memory in every process, and its own idea of
//! proxies, timeouts and host keys. Here HTTPS is the same client as every other request
//! the worker sends, and ssh is the one the host's operators already configure
//! (`known_hosts`, `ssh_config`), as git's own command line uses it.
//!
//! libgit2 picks a transport by the URL's scheme and builds it with a factory that sees
//! only the remote, so what a fetch may present (token, key) is lent to the fetching
//! thread for the fetch's duration ([`with_access`]).

mod address;
mod http;
mod ssh;

use std::cell::RefCell;
use std::path::PathBuf;

use git2::transport::Transport;

use crate::secrets::Secret;

/// What a fetch may present to the server.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// HTTPS: sent as the password of basic auth.
    pub token: Option<Secret>,
    /// ssh: the private key file (`IdentityFile`).
    pub ssh_key: Option<PathBuf>,
    /// ssh: the known hosts file, instead of the user's.
    pub known_hosts: Option<PathBuf>,
}

thread_local! {
    static ACCESS: RefCell<Option<Access>> = const { RefCell::new(None) };
}

/// Runs `f` (which fetches) with `access` lent to this thread's transports.
pub fn with_access<T>(access: &Access, f: impl FnOnce() -> T) -> T {
    struct Lent;
    impl Drop for Lent {
        fn drop(&mut self) {
            ACCESS.with(|a| a.borrow_mut().take());
        }
    }
    ACCESS.with(|a| *a.borrow_mut() = Some(access.clone()));
    let _lent = Lent;
    f()
}

fn lent() -> Access {
    ACCESS.with(|a| a.borrow().clone()).unwrap_or_default()
}

/// Registers the transports with libgit2, once per process, before any fetch.
#[allow(unsafe_code)]
pub fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for scheme in ["http", "https"] {
            // SAFETY: registration changes libgit2's global transport list; it runs once,
            // before the first git source fetches, never beside another libgit2 call.
            let done = unsafe {
                git2::transport::register(scheme, |remote| {
                    // Stateless: each request of a fetch is its own HTTP exchange.
                    Transport::smart(remote, true, http::Http::new(lent()))
                })
            };
            if let Err(e) = done {
                tracing::error!(scheme, error = %e, "cannot register the git transport");
            }
        }
        // libgit2 also hands scp-like addresses (`git@host:org/repo.git`) to "ssh".
        for scheme in ["ssh", "ssh+git", "git+ssh"] {
            // SAFETY: as above.
            let done = unsafe {
                git2::transport::register(scheme, |remote| {
                    // One connection for the whole fetch: git's own protocol over ssh.
                    Transport::smart(remote, false, ssh::Ssh::new(lent()))
                })
            };
            if let Err(e) = done {
                tracing::error!(scheme, error = %e, "cannot register the git transport");
            }
        }
    });
}

/// An error libgit2 shows as the fetch's reason.
fn io_error(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::other(msg.into())
}

/// A URL's percent-encoded part (user, password, path) as git reads it.
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
