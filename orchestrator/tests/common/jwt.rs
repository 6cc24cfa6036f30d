//! RSA keys (made with the openssl CLI) and RS256 tokens, for the tests' fake token issuers
//! (Entra ID, an OpenID Connect provider).

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

/// An RSA key made with the openssl CLI: (PEM, modulus in base64url).
pub fn rsa_key(dir: &Path, name: &str) -> (Vec<u8>, String) {
    let pem = dir.join(name);
    super::stdout_of(
        Command::new("openssl")
            .args(["genrsa", "-traditional", "-out"])
            .arg(&pem)
            .arg("2048"),
    );
    let out = Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    let hex = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .trim_start_matches("Modulus=")
        .to_string();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    (
        std::fs::read(&pem).unwrap(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    )
}

pub fn token(pem: &[u8], kid: &str, claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    encode(&header, &claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}
