//! Connection strings, SharedKey signing, credential choice.

#![allow(clippy::unwrap_used)]
use super::*;
use azure_core::http::Method;

#[test]
fn development_storage_and_explicit_endpoints() {
    let dev = Account::from_connection_string("UseDevelopmentStorage=true").unwrap();
    assert_eq!(dev.name, "devstoreaccount1");
    assert_eq!(
        dev.table_endpoint.as_str(),
        "http://127.0.0.1:10002/devstoreaccount1"
    );
    assert_eq!(
        dev.queue_endpoint.as_str(),
        "http://127.0.0.1:10001/devstoreaccount1"
    );
    let explicit = Account::from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=a1;AccountKey=a2V5==;\
             TableEndpoint=http://h:1/a1/;QueueEndpoint=http://h:2/a1;",
    )
    .unwrap();
    assert_eq!(explicit.table_endpoint.as_str(), "http://h:1/a1");
    assert_eq!(explicit.queue_endpoint.as_str(), "http://h:2/a1");
    let Auth::SharedKey(k) = &explicit.auth else {
        panic!("shared key expected")
    };
    assert_eq!(k.secret(), "a2V5==", "split at the first '=' only");
    let cloud = Account::from_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn",
        )
        .unwrap();
    assert_eq!(
        cloud.queue_endpoint.as_str(),
        "https://acct.queue.core.chinacloudapi.cn/"
    );
}

#[test]
fn bad_connection_strings_are_refused_without_echoing_the_key() {
    for s in [
        "AccountName=a",
        "AccountKey=secretvalue",
        "AccountName=a;AccountKey=secretvalue;SharedAccessSignature=sv=1",
        "AccountName=a;AccountKey=secretvalue;junk",
    ] {
        let e = Account::from_connection_string(s).unwrap_err().to_string();
        assert!(!e.contains("secretvalue"), "{e}");
    }
    let dbg = format!(
        "{:?}",
        Account::from_connection_string("AccountName=a;AccountKey=secretvalue").unwrap()
    );
    assert!(!dbg.contains("secretvalue"), "{dbg}");
}

#[test]
fn auto_credential_follows_the_environment() {
    let env = |vars: &'static [&'static str]| move |k: &str| vars.contains(&k).then(String::new);
    assert_eq!(
        CredentialKind::Auto.resolve(env(&["AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT"])),
        CredentialKind::Workload
    );
    assert_eq!(
        CredentialKind::Auto.resolve(env(&["IDENTITY_ENDPOINT"])),
        CredentialKind::Managed
    );
    assert_eq!(
        CredentialKind::Auto.resolve(env(&[])),
        CredentialKind::Developer
    );
    assert_eq!(
        CredentialKind::Managed.resolve(env(&["AZURE_FEDERATED_TOKEN_FILE"])),
        CredentialKind::Managed
    );
}

#[test]
fn queue_string_to_sign_has_canonical_headers_and_query() {
    let url =
        Url::parse("http://h/acct/jobs/messages?visibilitytimeout=5&numofmessages=1").unwrap();
    let mut r = Request::new(url, Method::Get);
    r.insert_header("x-ms-version", "2026-04-06");
    r.insert_header("x-ms-date", "Sun, 11 Oct 2009 21:49:13 GMT");
    let s = string_to_sign("acct", Service::Queue, &r);
    assert_eq!(
        s,
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2026-04-06\n\
             /acct/acct/jobs/messages\nnumofmessages:1\nvisibilitytimeout:5"
    );
    let t = string_to_sign("acct", Service::Table, &r);
    assert_eq!(
        t,
        "GET\n\n\nSun, 11 Oct 2009 21:49:13 GMT\n/acct/acct/jobs/messages"
    );
}
