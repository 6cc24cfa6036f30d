//! Which names a schema's `secrets` may use.

/// May a secret be called this? Upper-case names that cannot shadow the contract or the
/// process variables.
pub fn valid_secret_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !n.as_bytes()[0].is_ascii_digit()
        && ![
            "CLOUDO_",
            "RESOURCE_",
            "AKS_",
            "ALERT_",
            "MONITOR_",
            "LD_",
            "BASH_",
        ]
        .iter()
        .any(|p| n.starts_with(p))
        && ![
            "PATH",
            "HOME",
            "LANG",
            "SHELL",
            "IFS",
            "ENV",
            "PYTHONPATH",
            "PYTHONSTARTUP",
        ]
        .contains(&n)
}
