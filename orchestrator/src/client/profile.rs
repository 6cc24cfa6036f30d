//! Which server, with which key: `--url`/`--key`, else `CLOUDO_URL`/`CLOUDO_KEY` (clap reads
//! both), else the file `cloudo login` wrote, else a local server without a key.
//!
//! The file is `$CLOUDO_CLIENT_CONFIG`, or `cloudo/config.toml` in the user's config dir
//! (`$XDG_CONFIG_HOME`, else `~/.config`), written with mode 0600 in a 0700 folder; one
//! readable by others is refused, as ssh refuses such a key.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Failure;

/// Where a server runs when nothing says otherwise (`cloudo serve`'s default).
pub const DEFAULT_URL: &str = "http://127.0.0.1:7071";

/// A server and, unless it runs without authentication, a key.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("url", &self.url)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The config file's path.
pub fn config_path() -> Result<PathBuf, Failure> {
    if let Some(p) = std::env::var_os("CLOUDO_CLIENT_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| Failure::new("neither XDG_CONFIG_HOME nor HOME is set: set CLOUDO_CLIENT_CONFIG to the config file's path"))?;
    Ok(dir.join("cloudo").join("config.toml"))
}

/// What the config file holds, if there is one.
pub fn read_file(path: &Path) -> Result<Option<Profile>, Failure> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::new(format!("cannot read {}: {e}", path.display()))),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::new(format!(
            "{} holds a key but others may read it (mode {mode:04o}): run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map(Some).map_err(|e| {
        Failure::new(format!(
            "{} is not a valid config file: {e}",
            path.display()
        ))
    })
}

/// Writes the file with mode 0600 (its folder 0700), replacing it atomically.
pub fn write_file(path: &Path, profile: &Profile) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::new(format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let text = toml::to_string(profile)
        .map_err(|e| Failure::new(format!("cannot encode the config: {e}")))?;
    let tmp = path.with_extension("toml.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(
        format!("# written by `cloudo login`; keep it private (mode 0600)\n{text}").as_bytes(),
    )
    .and_then(|()| f.sync_all())
    .map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// The profile to use: flags and environment (`url`, `key`, already merged by clap) over
/// the file.
pub fn resolve(url: Option<String>, key: Option<String>) -> Result<Profile, Failure> {
    let file = match (&url, &key) {
        (Some(_), Some(_)) => None,
        _ => read_file(&config_path()?)?,
    };
    let from_file = file.filter(|f| url.as_ref().is_none_or(|u| same_server(u, &f.url)));
    let url = url
        .or_else(|| from_file.as_ref().map(|f| f.url.clone()))
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    check_url(&url)?;
    let key = key
        .filter(|k| !k.is_empty())
        .or_else(|| from_file.and_then(|f| f.key));
    Ok(Profile { url, key })
}

/// The saved key belongs to the saved server only: `--url` of another server does not
/// send it there.
fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

pub fn check_url(url: &str) -> Result<(), Failure> {
    let ok = reqwest::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if ok {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{url:?} is not a server address: give one like {DEFAULT_URL} or https://cloudo.example.com"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("config.toml");
        let p = Profile {
            url: "https://c.example".into(),
            key: Some("ck_secret".into()),
        };
        write_file(&path, &p).expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_file(&path).expect("read"), Some(p));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_file(&path).expect_err("readable by others");
        assert!(err.message.contains("chmod 600"), "{}", err.message);
    }

    #[test]
    fn a_key_is_never_in_debug_output() {
        let p = Profile {
            url: "http://x".into(),
            key: Some("ck_secret".into()),
        };
        assert!(!format!("{p:?}").contains("ck_secret"));
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("http://127.0.0.1:7071").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("127.0.0.1:7071").is_err());
    }
}
