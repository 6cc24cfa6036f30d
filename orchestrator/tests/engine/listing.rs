//! The status page and the executions list: HTML and JSON, newest first, filters, pages.

use crate::basic_env;

#[tokio::test]
async fn logs_page_lists_executions_as_html_and_json() {
    let env = basic_env();
    let s = env.start();
    let id = s.trigger("fail").await;
    let e = s.wait(&id).await;

    let res = s.http.get(s.url("/api/logs")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(res.headers().contains_key("content-security-policy"));
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("/api/executions/{id}")), "{html}");
    assert!(html.contains("<b>failed</b>"));

    let res = s
        .http
        .get(s.url("/api/logs"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let list: serde_json::Value = res.json().await.unwrap();
    assert_eq!(list["items"][0]["exec_id"], id.as_str());

    let pk = e["partition_key"].as_str().unwrap();
    assert_eq!(pk.len(), 8);
    let (c, one) = s.get(&format!("/api/logs/{pk}/{id}")).await;
    assert_eq!(c, 200);
    assert_eq!(one["output"], e["output"]);

    // ClouDO's search: one day, narrowed by status, execId, text.
    let ids = |path: &str| {
        let path = path.to_string();
        let s = &s;
        async move {
            let (c, page) = s.get(&path).await;
            assert_eq!(c, 200, "{path}: {page}");
            let items = page["items"].as_array().unwrap().clone();
            items
                .iter()
                .map(|e| e["exec_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(&format!("/api/logs/query?partitionKey={pk}")).await,
        vec![id.clone()]
    );
    assert_eq!(
        ids(&format!(
            "/api/logs/query?partitionKey={pk}&status=failed&execId={id}&order=asc"
        ))
        .await,
        vec![id.clone()]
    );
    assert!(
        ids(&format!(
            "/api/logs/query?partitionKey={pk}&status=succeeded"
        ))
        .await
        .is_empty()
    );
    assert!(
        ids("/api/logs/query?partitionKey=20000101")
            .await
            .is_empty()
    );
    let (c, err) = s.get("/api/logs/query?status=failed").await;
    assert_eq!(c, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("partitionKey")
    );
    // More runs: `limit` takes the newest, or with order=asc the oldest, of the day;
    // limits up to 5000 are ClouDO's.
    let mut all = vec![id.clone()];
    for _ in 0..3 {
        let more = s.trigger("fail").await;
        s.wait(&more).await;
        all.push(more);
    }
    let q = format!("/api/logs/query?partitionKey={pk}&limit=2");
    assert_eq!(ids(&q).await, vec![all[3].clone(), all[2].clone()]);
    assert_eq!(ids(&format!("{q}&order=asc")).await, all[..2].to_vec());
    let q = format!("/api/logs/query?partitionKey={pk}&limit=5000&order=asc");
    assert_eq!(ids(&q).await, all);

    let (c, ready) = s.get("/api/readyz").await;
    assert_eq!((c, ready["status"].as_str()), (200, Some("ready")));
}

#[tokio::test]
async fn listing_is_newest_first_filtered_and_paged() {
    let env = basic_env();
    let s = env.start();
    let mut ids = Vec::new();
    for id in ["args", "fail", "args", "fail", "args"] {
        let x = s.trigger(id).await;
        s.wait(&x).await;
        ids.push(x);
    }
    let (_, p1) = s.get("/api/executions?limit=2").await;
    let got: Vec<_> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["exec_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, vec![ids[4].clone(), ids[3].clone()]);
    let next = p1["next"].as_str().unwrap();
    let (_, p2) = s
        .get(&format!("/api/executions?limit=2&cursor={next}"))
        .await;
    assert_eq!(p2["items"][0]["exec_id"], ids[2].as_str());
    let (_, failed) = s.get("/api/executions?status=failed").await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 2);
    let (_, by_schema) = s.get("/api/executions?schema_id=args&limit=10").await;
    assert_eq!(by_schema["items"].as_array().unwrap().len(), 3);
}
