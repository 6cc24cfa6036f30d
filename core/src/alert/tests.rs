//! Alerts: severities, conditions, the fields every payload kind fills.

use super::*;

#[test]
fn severities() {
    assert_eq!("Sev3".parse::<Severity>(), Ok(Severity(3)));
    assert_eq!("sev0".parse::<Severity>(), Ok(Severity(0)));
    assert_eq!("2".parse::<Severity>(), Ok(Severity(2)));
    assert!("Sev5".parse::<Severity>().is_err());
    assert!("Sev2a".parse::<Severity>().is_err());
    // Found by the fuzz suite: a multi-byte character across byte 3.
    assert!("\u{466be}\u{202e}x".parse::<Severity>().is_err());
    assert!("ab\u{e9}1".parse::<Severity>().is_err());
    assert_eq!(Severity::from_word("critical"), Some(Severity(0)));
    assert_eq!(Severity::from_word("warning"), Some(Severity(2)));
    assert_eq!(Severity::from_word("weird"), None);
}

#[test]
fn env_names_are_sanitised() {
    assert_eq!(env_suffix("microsoft.resourceid"), "MICROSOFT_RESOURCEID");
    assert_eq!(env_suffix("Namespace"), "NAMESPACE");
    assert_eq!(env_suffix("a-b c"), "A_B_C");
}

#[test]
fn prometheus_job_label_is_not_a_kubernetes_job() {
    let a = Alert {
        labels: vec![("job".into(), "kube-state-metrics".into())],
        ..Alert::default()
    };
    let aks: BTreeMap<_, _> = a.aks().into_iter().collect();
    assert_eq!(aks["AKS_JOB"], "");
}
