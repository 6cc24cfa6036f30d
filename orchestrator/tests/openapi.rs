//! `GET /api/openapi.json` through the real binary: served to any key holder, a valid
//! OpenAPI 3.1 document (openapi-spec-validator), and real answers of the server conform to
//! the schemas it names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Env;
use serde_json::{Value, json};

const VALIDATE_DOCUMENT: &str = r#"
import json, sys
from openapi_spec_validator import validate
doc = json.load(sys.stdin)
validate(doc)
print(doc["openapi"])
"#;

/// Each `[schema name, instance]` against the document's components (OAS 3.1 dialect).
const VALIDATE_ANSWERS: &str = r##"
import json, sys
from openapi_schema_validator import OAS31Validator
data = json.load(sys.stdin)
components = data["document"]["components"]
for name, instance in data["answers"]:
    schema = {"$ref": "#/components/schemas/" + name, "components": components}
    OAS31Validator(schema).validate(instance)
print(len(data["answers"]))
"##;

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_and_real_answers_conform() {
    let env = Env::new(
        &common::catalog(&[
            r#"{"id": "hello", "runbook": "hello.sh"}"#,
            r#"{"id": "gated", "runbook": "hello.sh", "require_approval": true}"#,
        ]),
        &[("hello.sh", "echo hello\n")],
    );
    let s = env.start();
    // Any key may read it; no key may not.
    let ingest = common::new_key(&s, "alerts", "ingest").await;
    let res = common::client(None)
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = common::client(Some(&ingest))
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(
        common::python(VALIDATE_DOCUMENT, doc.to_string().as_bytes()).trim(),
        "3.1.0"
    );

    // Every route of docs/security.md's table is in the document, with that method.
    let table = include_str!("../../docs/security.md");
    let mut routes = 0;
    for line in table.lines() {
        let cells: Vec<&str> = line
            .split('|')
            .map(|c| c.trim().trim_matches('`'))
            .collect();
        if cells.len() >= 5 && cells[2].starts_with('/') {
            let path = cells[2].replace("{*", "{");
            let method = cells[1].to_lowercase();
            assert!(
                doc["paths"][&path][&method].is_object(),
                "{method} {path} is not in the document"
            );
            routes += 1;
        }
    }
    assert!(routes > 50, "{routes} routes read from docs/security.md");

    // Real answers, checked against the schemas the document gives them.
    let (_, trigger) =
        common::post_json(&s.http, &s.url("/api/Trigger?id=hello"), &json!({"a": "b"})).await;
    let id = trigger["exec_id"].as_str().unwrap().to_string();
    let done = s.wait(&id).await;
    let (_, gated) = common::post_json(&s.http, &s.url("/api/Trigger?id=gated"), &json!({})).await;
    let gid = gated["exec_id"].as_str().unwrap();
    let (_, rejected) = common::post_json(
        &s.http,
        &s.url(&format!("/api/executions/{gid}/reject")),
        &json!({"comment": "no"}),
    )
    .await;
    let (_, page) = s.get("/api/executions?limit=5").await;
    let (_, output) = s.get(&format!("/api/executions/{id}/output")).await;
    let (_, schemas) = s.get("/api/schemas").await;
    let (_, schema) = s.get("/api/schemas/hello").await;
    let (_, workers) = s.get("/api/workers").await;
    let (_, runbooks) = s.get("/api/runbooks").await;
    let (_, health) = s.get("/api/healthz").await;
    let (_, ready) = s.get("/api/readyz").await;
    let (_, me) = s.get("/api/session").await;
    let (_, schedules) = s.get("/api/schedules").await;
    let (_, routes_doc) = s.get("/api/routes").await;
    let (_, created) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "k2", "role": "viewer"}),
    )
    .await;
    let (_, error) = s.get("/api/executions/not-an-id").await;
    let mut answers = vec![
        json!(["TriggerAnswer", trigger]),
        json!(["ExecutionView", done]),
        json!(["ExecutionView", rejected]),
        json!(["OutputView", output]),
        json!(["SchemaList", schemas]),
        json!(["Schema", schema]),
        json!(["Workers", workers]),
        json!(["Runbooks", runbooks]),
        json!(["Health", health]),
        json!(["Ready", ready]),
        json!(["Me", me]),
        json!(["ScheduleList", schedules]),
        json!(["RoutingRulesView", routes_doc]),
        json!(["CreatedKey", created]),
        json!(["ErrorBody", error]),
    ];
    for e in page["items"].as_array().unwrap() {
        answers.push(json!(["ExecutionView", e]));
    }
    let input = json!({"document": doc, "answers": answers}).to_string();
    let n = common::python(VALIDATE_ANSWERS, input.as_bytes());
    assert_eq!(n.trim(), answers.len().to_string());
}
