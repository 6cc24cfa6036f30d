//! Every fixture payload gives the runbook exactly the expected variables.

use super::*;

#[tokio::test]
async fn every_fixture_gives_exactly_the_expected_variables() {
    let env = Env::new(
        &catalog(&[r#"{"id": "printenv", "runbook": "printenv.py"}"#]),
        &[("printenv.py", PRINTENV_PY)],
    )
    .arg("--dedup-window")
    .arg("0");
    let s = env.start();
    let exp = expected();
    let mut checked = 0;

    for (name, want) in exp["full"].as_object().unwrap() {
        let rel = if name.starts_with("crafted/") {
            format!("{name}.json")
        } else {
            format!("azure-monitor/{name}.json")
        };
        let body = read(&rel);
        let (code, ack) = post(&s, "/api/Trigger?id=printenv", &body).await;
        assert_eq!(code, 202, "{name}: {ack}");
        let (vars, payload) = printed(&s, ack["exec_id"].as_str().unwrap()).await;
        assert_eq!(vars, as_map(want), "variables of {name}");
        assert_eq!(
            payload, body,
            "{name}: CLOUDO_PAYLOAD is the body as received"
        );
        checked += 1;
    }

    let base = as_map(&exp["envelope"]);
    for (stem, extra) in exp["fragments"].as_object().unwrap() {
        let fragment: Value =
            serde_json::from_str(&read(&format!("azure-monitor/{stem}.json"))).unwrap();
        let body = envelope(stem, &fragment).to_string();
        let (code, ack) = post(&s, "/api/Trigger?id=printenv", &body).await;
        assert_eq!(code, 202, "{stem}: {ack}");
        let (vars, _) = printed(&s, ack["exec_id"].as_str().unwrap()).await;
        let mut want: BTreeMap<String, String> = base
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("{stem}", stem)))
            .collect();
        want.extend(as_map(extra));
        assert_eq!(vars, want, "variables of fragment {stem}");
        checked += 1;
    }

    for (name, by_fingerprint) in exp["alertmanager"].as_object().unwrap() {
        let body = read(&format!("alertmanager/{name}.json"));
        let (code, ack) = post(&s, "/api/webhooks/alertmanager?id=printenv", &body).await;
        assert_eq!(code, 202, "{name}: {ack}");
        let answers = ack["alerts"].as_array().unwrap();
        assert_eq!(
            answers.len(),
            by_fingerprint.as_object().unwrap().len(),
            "{name}: one per alert"
        );
        for a in answers {
            let fp = a["fingerprint"].as_str().unwrap();
            let (vars, payload) =
                printed(&s, a["executions"][0]["exec_id"].as_str().unwrap()).await;
            assert_eq!(
                vars,
                as_map(&by_fingerprint[fp]),
                "variables of {name} alert {fp}"
            );
            assert_eq!(payload, body);
            checked += 1;
        }
    }
    // 10 full payloads, 15 fragments, 4 Alertmanager alerts.
    assert_eq!(checked, 29);
}
