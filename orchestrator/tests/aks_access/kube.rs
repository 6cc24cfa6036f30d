//! The fake Kubernetes API and its certificates.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The fake Kubernetes API: discovery, one Deployment `payments-api` in every namespace,
/// GET and PATCH; each request is appended to `log` as a JSON line.
const FAKE_KUBE: &str = include_str!("../fixtures/fake_kube.py");

/// A test CA and a server certificate for 127.0.0.1 (openssl); the CA's PEM.
pub fn certificates(dir: &Path) -> String {
    let run = |args: &[&str]| {
        let st = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=cloudo test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    std::fs::read_to_string(dir.join("ca.pem")).unwrap()
}

pub struct Kube {
    child: Child,
    pub port: u16,
}

impl Drop for Kube {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn fake_kube(dir: &Path, log: &Path) -> Kube {
    let mut child = Command::new("python3")
        .args(["-c", FAKE_KUBE])
        .arg(dir.join("server.pem"))
        .arg(dir.join("server.key"))
        .arg(log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Kube {
        child,
        port: line.trim().parse().expect("the fake API's port"),
    }
}
