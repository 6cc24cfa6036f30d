//! ssh repository addresses, as git reads them, and the quoting they need on their way to
//! ssh and the remote shell.

use super::decode;

/// `ssh://[user@]host[:port]/path` (also `ssh+git://`, `git+ssh://`) or scp-like
/// `[user@]host:path`.
#[derive(Debug, PartialEq)]
pub(super) struct Address {
    pub user: String,
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

pub(super) fn parse(url: &str) -> Result<Address, String> {
    let bad = || format!("not an ssh repository address: {url:?}");
    let (authority, path) = match url.split_once("://") {
        Some((scheme, rest)) => {
            // libgit2 hands every address with a ':' and no known scheme to ssh: a typo
            // such as `htps://` must not become an ssh connection.
            if !["ssh", "ssh+git", "git+ssh"].contains(&scheme.to_ascii_lowercase().as_str()) {
                return Err(bad());
            }
            let slash = rest.find('/').ok_or_else(bad)?;
            // A URL: percent-encoded, as git reads it.
            let path = decode(&rest[slash..]);
            // `ssh://host/~user/repo` is relative to that user's home, as in git.
            let path = match path.strip_prefix("/~") {
                Some(rest) => format!("~{rest}"),
                None => path,
            };
            (&rest[..slash], path)
        }
        None => {
            let (authority, path) = url.split_once(':').ok_or_else(bad)?;
            (authority, path.to_string())
        }
    };
    let user_decoded;
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) if url.contains("://") => {
            user_decoded = decode(u);
            (user_decoded.as_str(), h)
        }
        Some((u, h)) => (u, h),
        // As before (libssh2): the user git hosts expect.
        None => ("git", authority),
    };
    let (host, port) = match host_port.strip_prefix('[') {
        // [IPv6]:port
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or_else(bad)?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
            }
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
    // Names only: never an option of ssh's, nothing a ProxyCommand's shell would read.
    let name = |s: &str| {
        !s.is_empty()
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:%+".contains(c))
    };
    // And a path git-upload-pack cannot take for an option.
    if !name(host) || !name(user) || path.is_empty() || path.starts_with('-') {
        return Err(bad());
    }
    Ok(Address {
        user: user.to_string(),
        host: host.to_string(),
        port,
        path,
    })
}

/// The path in single quotes for the remote shell, as git's `sq_quote` writes it (`!` too,
/// for csh).
pub(super) fn quoted(path: &str) -> String {
    format!("'{}'", path.replace('\'', r"'\''").replace('!', r"'\!'"))
}

/// A file path as an ssh option's value: quoted, `%` not taken for a token.
pub(super) fn option_path(path: &std::path::Path) -> Result<String, String> {
    let p = path.to_string_lossy();
    // ssh's option parser reads `\` as an escape and expands `${VAR}`.
    if p.contains('"') || p.contains('\\') || p.contains("${") {
        return Err(format!(
            "{p:?}: a file path for ssh cannot hold '\"', '\\' or '${{'"
        ));
    }
    Ok(format!("\"{}\"", p.replace('%', "%%")))
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
        assert_eq!(parse("git+ssh://host/r.git").unwrap().host, "host");
        assert_eq!(parse("ssh://[::1]:22/r.git").unwrap().host, "::1");
        assert_eq!(parse("ssh://[::1]/r.git").unwrap().port, None);
        assert_eq!(parse("ssh://host/~ops/r.git").unwrap().path, "~ops/r.git");
        let a = parse("ssh://me%2Eops@host/My%20Repo.git").unwrap();
        assert_eq!(
            (a.user.as_str(), a.path.as_str()),
            ("me.ops", "/My Repo.git")
        );
        for bad in [
            "ssh://-oProxyCommand=x/r",
            "-oProxyCommand=x:r",
            "ssh://host",
            "x",
            "htps://host/r.git",
            "ssh://a;b@host/r",
            "ssh://host$(id)/r",
            "host:--upload-pack=x",
            "ssh://[::1]x/r.git",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_quoted_for_the_remote_shell_and_ssh() {
        assert_eq!(quoted("/srv/r.git"), "'/srv/r.git'");
        assert_eq!(quoted("it's; rm -rf /"), r"'it'\''s; rm -rf /'");
        assert_eq!(quoted("a!b"), r"'a'\!'b'");
        let p = std::path::Path::new("/etc/my hosts%h");
        assert_eq!(option_path(p).unwrap(), "\"/etc/my hosts%%h\"");
        for bad in ["/a\"b", "/a\\b", "/a${HOME}"] {
            assert!(option_path(std::path::Path::new(bad)).is_err(), "{bad}");
        }
    }
}
