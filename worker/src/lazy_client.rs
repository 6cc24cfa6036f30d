//! An HTTP client built on its first use.
//!
//! Building a client loads and parses the system's CA certificates (rustls' platform
//! verifier reads the whole bundle, several hundred KB at its peak, and each client keeps
//! its own roots). Features that may never send a request in a process's life (AKS access,
//! Slack and Opsgenie notifications) should not pay for it at start-up.

use std::sync::OnceLock;

pub struct LazyClient {
    build: fn() -> reqwest::ClientBuilder,
    client: OnceLock<reqwest::Client>,
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient")
            .field("built", &self.client.get().is_some())
            .finish()
    }
}

impl LazyClient {
    /// A client `build` configures, built when first asked for.
    pub const fn new(build: fn() -> reqwest::ClientBuilder) -> Self {
        Self {
            build,
            client: OnceLock::new(),
        }
    }

    /// The client. A failure to build it (reading the CA certificates, the TLS set-up) is
    /// not kept: the next call tries again.
    pub fn get(&self) -> Result<&reqwest::Client, String> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let built = (self.build)().build().map_err(|e| {
            // reqwest's own text is only "builder error": its causes say what failed.
            format!("cannot build the HTTP client: {:#}", anyhow::Error::from(e))
        })?;
        Ok(self.client.get_or_init(|| built))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_built_once_and_only_when_asked_for() {
        // As the binaries do at start.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let lazy = LazyClient::new(reqwest::Client::builder);
        assert!(format!("{lazy:?}").contains("built: false"));
        let first: *const reqwest::Client = lazy.get().unwrap();
        let again: *const reqwest::Client = lazy.get().unwrap();
        assert_eq!(first, again);
        assert!(format!("{lazy:?}").contains("built: true"));
    }
}
