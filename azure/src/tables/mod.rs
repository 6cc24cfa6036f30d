//! A small Azure Table Storage client on azure_core's HTTP pipeline (retries, transport,
//! logging with redaction, token caching come from there): tables, entities, insert /
//! upsert / ETag-conditioned replace and merge / delete, point reads and filtered queries
//! with continuation. No maintained Tables crate exists for the azure_core 1.x line.
//!
//! Entities are JSON objects (`serde_json::Map`) with `PartitionKey` and `RowKey`; values
//! are strings, booleans and 32-bit integers only (no `Edm.*` annotations needed).

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{
    ClientOptions, Context, Method, Pipeline, PipelineSendOptions, RawResponse, Request, Transport,
    Url,
};
use serde_json::{Map, Value};

use crate::auth::{Account, Auth, Service, SharedKeyPolicy};

pub type Entity = Map<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// 409: the entity (or table) exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 412: the ETag did not match (someone else wrote first).
    #[error("precondition failed")]
    Precondition,
    #[error("not found")]
    NotFound,
    #[error("table storage: {0}")]
    Other(String),
}

pub type TableResult<T> = Result<T, TableError>;

/// The HTTP transport: the workspace's reqwest (rustls) with bounded connect and request
/// times, so a stalled storage endpoint never hangs a caller.
pub(crate) fn transport(account: &Account) -> Option<Transport> {
    // The workspace builds rustls with ring only; install it unless the binary already has.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30));
    if let Some(pem) = &account.ca_pem {
        match reqwest::Certificate::from_pem_bundle(pem) {
            Ok(certs) => b = b.tls_certs_merge(certs),
            Err(e) => tracing::error!(error = %e, "the extra CA certificates are not PEM; ignored"),
        }
    }
    b.build().ok().map(|http| Transport::new(Arc::new(http)))
}

/// Pipeline options of every client: our transport, and retries (408, 429, 5xx,
/// connection errors) bounded to about 10 s so a caller is never held for a minute; the
/// engine's own loops retry beyond that.
pub(crate) fn client_options(account: &Account) -> ClientOptions {
    use azure_core::time::Duration as D;
    ClientOptions {
        transport: transport(account),
        retry: azure_core::http::RetryOptions::exponential(
            azure_core::http::ExponentialRetryOptions {
                initial_delay: D::milliseconds(200),
                max_retries: 4,
                max_total_elapsed: D::seconds(10),
                max_delay: D::seconds(2),
            },
        ),
        ..ClientOptions::default()
    }
}

/// The HTTP pipeline of the Table service of an account.
fn pipeline(account: &Account) -> Pipeline {
    let options = client_options(account);
    let auth: Arc<dyn Policy> = match &account.auth {
        Auth::SharedKey(key) => Arc::new(SharedKeyPolicy::new(
            &account.name,
            key.clone(),
            Service::Table,
        )),
        Auth::Token(c) => Arc::new(BearerTokenAuthorizationPolicy::new(
            c.clone(),
            vec!["https://storage.azure.com/.default"],
        )),
    };
    Pipeline::new(
        Some("cloudo-azure"),
        Some(env!("CARGO_PKG_VERSION")),
        options,
        Vec::new(),
        vec![auth],
        None,
    )
}

/// The entity as JSON with every non-ASCII character escaped (`\uXXXX`, surrogate pairs
/// beyond the BMP). Same meaning to the service, but no multi-byte sequence for a proxy or
/// an emulator to cut in two: Azurite decodes each TCP chunk of a body on its own, which
/// turned characters split across chunks into U+FFFD under load.
fn ascii_json(e: &Entity) -> String {
    let text = Value::Object(e.clone()).to_string();
    if text.is_ascii() {
        return text;
    }
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut units = [0u16; 2];
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// OData string literal: `'` doubled.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A table of an account.
#[derive(Debug, Clone)]
pub struct Table {
    pipeline: Arc<Pipeline>,
    endpoint: Url,
    name: String,
}

/// One page of a query.
#[derive(Debug)]
pub struct QueryPage {
    pub entities: Vec<(Entity, String)>,
    /// Continuation (next partition key, next row key), if there are more.
    pub next: Option<(String, Option<String>)>,
}

/// A query: `$filter`, `$top`, `$select`.
#[derive(Debug, Default, Clone)]
pub struct Query<'a> {
    pub filter: Option<&'a str>,
    pub top: Option<usize>,
    pub select: Option<&'a str>,
}

impl Table {
    pub fn new(account: &Account, name: &str) -> Self {
        Self {
            pipeline: Arc::new(pipeline(account)),
            endpoint: account.table_endpoint.clone(),
            name: name.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn url(&self, suffix: &str) -> TableResult<Url> {
        Url::parse(&format!(
            "{}/{suffix}",
            self.endpoint.as_str().trim_end_matches('/')
        ))
        .map_err(|e| TableError::Other(format!("bad url: {e}")))
    }

    fn entity_url(&self, pk: &str, rk: &str) -> TableResult<Url> {
        // The whole key segment is percent-encoded as a path segment.
        let keys = format!("PartitionKey={},RowKey={}", quote(pk), quote(rk));
        let mut url = self.url("")?;
        url.path_segments_mut()
            .map_err(|()| TableError::Other("endpoint cannot be a base".into()))?
            .pop_if_empty()
            .push(&format!("{}({keys})", self.name));
        Ok(url)
    }

    async fn send(&self, mut req: Request) -> TableResult<RawResponse> {
        req.insert_header("x-ms-version", "2019-02-02");
        req.insert_header("dataserviceversion", "3.0");
        req.insert_header("accept", "application/json;odata=minimalmetadata");
        let rsp = self
            .pipeline
            .send(
                &Context::new(),
                &mut req,
                Some(PipelineSendOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| TableError::Other(e.to_string()))?;
        let status = u16::from(rsp.status());
        if (200..300).contains(&status) {
            return Ok(rsp);
        }
        let code = rsp
            .headers()
            .get_optional_str(&azure_core::http::headers::HeaderName::from_static(
                "x-ms-error-code",
            ))
            .unwrap_or("")
            .to_string();
        Err(match status {
            409 => TableError::Conflict(code),
            412 => TableError::Precondition,
            404 => TableError::NotFound,
            _ => TableError::Other(format!("HTTP {status} {code}")),
        })
    }

    /// Creates the table; an existing one is fine.
    pub async fn create_if_missing(&self) -> TableResult<()> {
        let mut req = Request::new(self.url("Tables")?, Method::Post);
        req.insert_header("content-type", "application/json");
        req.insert_header("prefer", "return-no-content");
        req.set_body(serde_json::json!({ "TableName": self.name }).to_string());
        match self.send(req).await {
            Ok(_) | Err(TableError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Inserts; [`TableError::Conflict`] when the entity exists. Returns the ETag.
    pub async fn insert(&self, entity: &Entity) -> TableResult<String> {
        let mut req = Request::new(self.url(&self.name)?, Method::Post);
        req.insert_header("content-type", "application/json");
        req.insert_header("prefer", "return-no-content");
        req.set_body(ascii_json(entity));
        let rsp = self.send(req).await?;
        Ok(etag(&rsp))
    }

    /// Replaces (`merge` false) or merges into the entity. `if_match`: `None` inserts or
    /// writes unconditionally; `Some(etag)` fails with [`TableError::Precondition`] when the
    /// entity changed since, and with [`TableError::NotFound`] when it is gone.
    pub async fn write(
        &self,
        entity: &Entity,
        merge: bool,
        if_match: Option<&str>,
    ) -> TableResult<String> {
        let (pk, rk) = keys(entity)?;
        let method = if merge { Method::Patch } else { Method::Put };
        let mut req = Request::new(self.entity_url(pk, rk)?, method);
        req.insert_header("content-type", "application/json");
        if let Some(tag) = if_match {
            req.insert_header("if-match", tag.to_string());
        }
        req.set_body(ascii_json(entity));
        let rsp = self.send(req).await?;
        Ok(etag(&rsp))
    }

    /// Deletes; false when there was nothing to delete. `if_match` `None` means any version.
    pub async fn delete(&self, pk: &str, rk: &str, if_match: Option<&str>) -> TableResult<bool> {
        let mut req = Request::new(self.entity_url(pk, rk)?, Method::Delete);
        req.insert_header("if-match", if_match.unwrap_or("*").to_string());
        match self.send(req).await {
            Ok(_) => Ok(true),
            Err(TableError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The entity and its ETag, if it exists.
    pub async fn get(&self, pk: &str, rk: &str) -> TableResult<Option<(Entity, String)>> {
        let req = Request::new(self.entity_url(pk, rk)?, Method::Get);
        match self.send(req).await {
            Ok(rsp) => {
                let tag = etag(&rsp);
                let mut e: Entity = rsp
                    .into_body()
                    .json()
                    .map_err(|e| TableError::Other(format!("bad entity: {e}")))?;
                strip_metadata(&mut e);
                Ok(Some((e, tag)))
            }
            Err(TableError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page of a query; `from` is the continuation of the previous page.
    pub async fn query_page(
        &self,
        q: &Query<'_>,
        from: Option<&(String, Option<String>)>,
    ) -> TableResult<QueryPage> {
        let mut url = self.url(&format!("{}()", self.name))?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(f) = q.filter {
                pairs.append_pair("$filter", f);
            }
            if let Some(t) = q.top {
                pairs.append_pair("$top", &t.clamp(1, 1000).to_string());
            }
            if let Some(s) = q.select {
                pairs.append_pair("$select", s);
            }
            if let Some((pk, rk)) = from {
                pairs.append_pair("NextPartitionKey", pk);
                if let Some(rk) = rk {
                    pairs.append_pair("NextRowKey", rk);
                }
            }
        }
        let rsp = self.send(Request::new(url, Method::Get)).await?;
        let header = |name: &'static str| {
            rsp.headers()
                .get_optional_string(&azure_core::http::headers::HeaderName::from_static(name))
        };
        let next = header("x-ms-continuation-nextpartitionkey")
            .map(|pk| (pk, header("x-ms-continuation-nextrowkey")));
        #[derive(serde::Deserialize)]
        struct Body {
            value: Vec<Entity>,
        }
        let body: Body = rsp
            .into_body()
            .json()
            .map_err(|e| TableError::Other(format!("bad query result: {e}")))?;
        let entities = body
            .value
            .into_iter()
            .map(|mut e| {
                let tag = e
                    .get("odata.etag")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                strip_metadata(&mut e);
                (e, tag)
            })
            .collect();
        Ok(QueryPage { entities, next })
    }

    /// Every entity matching `filter`, following continuations.
    pub async fn query_all(&self, filter: Option<&str>) -> TableResult<Vec<(Entity, String)>> {
        let q = Query {
            filter,
            ..Query::default()
        };
        let mut out = Vec::new();
        let mut from = None;
        loop {
            let page = self.query_page(&q, from.as_ref()).await?;
            out.extend(page.entities);
            match page.next {
                Some(n) => from = Some(n),
                None => return Ok(out),
            }
        }
    }
}

fn strip_metadata(e: &mut Entity) {
    e.retain(|k, _| !k.starts_with("odata.") && !k.contains("@odata.") && k != "Timestamp");
}

fn etag(rsp: &RawResponse) -> String {
    rsp.headers()
        .get_optional_string(&azure_core::http::headers::HeaderName::from_static("etag"))
        .unwrap_or_default()
}

fn keys(e: &Entity) -> TableResult<(&str, &str)> {
    let get = |k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| TableError::Other(format!("entity without {k}")))
    };
    Ok((get("PartitionKey")?, get("RowKey")?))
}

/// Makes any string usable as a partition or row key (Azure refuses `/ \ # ?` and control
/// characters): everything outside `[A-Za-z0-9._-]` becomes `~XX` per byte.
pub fn safe_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
