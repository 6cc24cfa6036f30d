//! [`Store`] on Azure Table Storage. The key design is written down in
//! `docs/azure.md`; in short:
//!
//! * `executions`: PartitionKey = the day of the id's UUIDv7 time, inverted
//!   (`99999999 - YYYYMMDD`); RowKey = the id with every hex digit inverted. Ascending key
//!   order is therefore newest first, a point read needs only the id, and the listing cursor
//!   is the last RowKey. The execution is a JSON document property (`doc`), with `status` and
//!   `schema_id` as plain properties for `$filter`. Every change is a read + replace with
//!   `If-Match` (compare-and-set), so concurrent orchestrators never both apply a report.
//! * `execstatus`: PartitionKey = status, RowKey = id: the reaper's "oldest in status X". A
//!   row is written *before* the execution moves and the old one deleted after, so the index
//!   is a superset; readers check each row against the execution and repair stale ones.
//! * `chunks`: outputs and request bodies larger than one property, in entities of up to
//!   eight 30 000-byte properties, keyed by a per-write nonce so a losing concurrent write
//!   never mixes its chunks into the winner's.
//! * `notifications` (PartitionKey = execution id) and `outbox` (the held and pending
//!   ones, one partition): what the API shows per execution, what the deliverer reads.
//! * `dedup`, `keys`, `audit`, `settings`, `workers`, `leases`: one small table each.

use std::time::Duration;

use async_trait::async_trait;
use cloudo_core::auth::{ApiKey, AuditRecord, Role};
use cloudo_core::execution::{ExecId, Execution, Status, StatusChange, Transition};
use cloudo_core::notify::{Delivery, Notification};
use cloudo_core::schema::Schema;
use cloudo_core::store::{
    AuditQuery, Created, DedupKey, ExecutionQuery, NewExecution, Page, Store, StoreError,
    StoreResult, WorkerInfo,
};
use cloudo_core::time::{self, Timestamp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::Account;
use crate::tables::{Entity, Query, Table, TableError, quote, safe_key};

/// Bytes per string property (Azure allows 64 KiB of UTF-16; UTF-8 bytes >= UTF-16 units).
const PART: usize = 30_000;
/// Properties per chunk entity (8 x 30 000 bytes stays well under the 1 MiB entity limit).
const PARTS_PER_ENTITY: usize = 8;
/// A CAS loop that keeps losing gives up after this many tries.
const CAS_TRIES: usize = 20;

impl From<TableError> for StoreError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Conflict(c) => StoreError::Conflict(c),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The tables of one deployment (all names start with the prefix).
#[derive(Debug, Clone)]
pub struct AzureStore {
    executions: Table,
    status: Table,
    chunks: Table,
    dedup: Table,
    keys: Table,
    audit: Table,
    settings: Table,
    workers: Table,
    leases: Table,
    notifications: Table,
    outbox: Table,
}

/// Table and queue name prefixes are letters and digits, starting with a letter (Azure's
/// rule for table names).
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = prefix.len() <= 40
        && prefix
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphabetic())
        && prefix.chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "prefix {prefix:?}: letters and digits only, starting with a letter, at most 40"
        ))
    }
}

impl AzureStore {
    /// Opens (creating the tables if needed) the store of `prefix`.
    pub async fn open(account: &Account, prefix: &str) -> StoreResult<Self> {
        check_prefix(prefix).map_err(StoreError::Unavailable)?;
        let t = |n: &str| Table::new(account, &format!("{prefix}{n}"));
        let s = Self {
            executions: t("executions"),
            status: t("execstatus"),
            chunks: t("chunks"),
            dedup: t("dedup"),
            keys: t("keys"),
            audit: t("audit"),
            settings: t("settings"),
            workers: t("workers"),
            leases: t("leases"),
            notifications: t("notifications"),
            outbox: t("outbox"),
        };
        for table in [
            &s.executions,
            &s.status,
            &s.chunks,
            &s.dedup,
            &s.keys,
            &s.audit,
            &s.settings,
            &s.workers,
            &s.leases,
            &s.notifications,
            &s.outbox,
        ] {
            table.create_if_missing().await?;
        }
        Ok(s)
    }
}

// ---- keys ----------------------------------------------------------------------------

fn invert_hex(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(16) {
            Some(d) => char::from_digit(15 - d, 16).unwrap_or(c),
            None => c,
        })
        .collect()
}

/// `99999999 - YYYYMMDD` of a time: newer days sort first.
fn inverted_day(t: Timestamp) -> String {
    let day: u32 = time::partition_key(t).parse().unwrap_or(0);
    format!("{:08}", 99_999_999 - day)
}

/// (PartitionKey, RowKey) of an execution; `None` for ids that are not UUIDv7.
fn exec_keys(id: &ExecId) -> Option<(String, String)> {
    let uuid = uuid::Uuid::parse_str(id.as_str()).ok()?;
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    let at = chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)?;
    Some((inverted_day(at), invert_hex(id.as_str())))
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---- text spread over properties -------------------------------------------------------

/// Splits at char boundaries into pieces of at most `max` bytes.
fn split_utf8(s: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

fn part_name(name: &str, n: usize) -> String {
    if n == 0 {
        name.to_string()
    } else {
        format!("{name}__{n}")
    }
}

/// Writes `text` as properties `name`, `name__1`, ... (and removes stale higher parts).
fn put_text(e: &mut Entity, name: &str, text: &str) {
    let parts = split_utf8(text, PART);
    e.retain(|k, _| k != name && !k.starts_with(&format!("{name}__")));
    if parts.is_empty() {
        e.insert(name.to_string(), json!(""));
    }
    for (n, p) in parts.iter().enumerate() {
        e.insert(part_name(name, n), json!(p));
    }
}

fn get_text(e: &Entity, name: &str) -> Option<String> {
    let mut out = e.get(name)?.as_str()?.to_string();
    for n in 1.. {
        match e.get(&part_name(name, n)).and_then(Value::as_str) {
            Some(p) => out.push_str(p),
            None => break,
        }
    }
    Some(out)
}

fn str_prop<'a>(e: &'a Entity, name: &str) -> Option<&'a str> {
    e.get(name).and_then(Value::as_str)
}

// ---- executions ---------------------------------------------------------------------

impl AzureStore {
    /// Stores a large text as chunk entities; returns the reference kept on the execution.
    async fn put_chunks(&self, id: &ExecId, kind: &str, text: &str) -> StoreResult<String> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let pk = format!("{id}.{kind}.{nonce}");
        let parts = split_utf8(text, PART);
        let entities = parts.chunks(PARTS_PER_ENTITY).count();
        for (n, group) in parts.chunks(PARTS_PER_ENTITY).enumerate() {
            let mut e = Entity::new();
            e.insert("PartitionKey".into(), json!(pk));
            e.insert("RowKey".into(), json!(format!("{n:05}")));
            for (i, p) in group.iter().enumerate() {
                e.insert(format!("t{i}"), json!(p));
            }
            self.chunks.write(&e, false, None).await?;
        }
        Ok(format!("{pk}/{entities}"))
    }

    async fn get_chunks(&self, reference: &str) -> StoreResult<String> {
        let (pk, _) = reference
            .rsplit_once('/')
            .ok_or_else(|| corrupt(format!("bad chunk reference {reference:?}")))?;
        let rows = self
            .chunks
            .query_all(Some(&format!("PartitionKey eq {}", quote(pk))))
            .await?;
        let mut out = String::new();
        for (e, _) in rows {
            for i in 0..PARTS_PER_ENTITY {
                match str_prop(&e, &format!("t{i}")) {
                    Some(p) => out.push_str(p),
                    None => break,
                }
            }
        }
        Ok(out)
    }

    /// Puts a text inline or, when large, in chunks (property `{name}_ref`).
    async fn put_big(
        &self,
        e: &mut Entity,
        id: &ExecId,
        name: &str,
        text: Option<&str>,
    ) -> StoreResult<()> {
        let reference = format!("{name}_ref");
        e.retain(|k, _| k != &reference && k != name && !k.starts_with(&format!("{name}__")));
        match text {
            None => {}
            Some(t) if t.len() <= PART * 2 => put_text(e, name, t),
            Some(t) => {
                let r = self.put_chunks(id, name, t).await?;
                e.insert(reference, json!(r));
            }
        }
        Ok(())
    }

    async fn get_big(&self, e: &Entity, name: &str) -> StoreResult<Option<String>> {
        if let Some(r) = str_prop(e, &format!("{name}_ref")) {
            return self.get_chunks(r).await.map(Some);
        }
        Ok(get_text(e, name))
    }

    /// The entity of an execution (without loading chunks) and its ETag.
    async fn load(&self, id: &ExecId) -> StoreResult<Option<(Entity, String, Execution)>> {
        let Some((pk, rk)) = exec_keys(id) else {
            return Ok(None);
        };
        match self.executions.get(&pk, &rk).await? {
            None => Ok(None),
            Some((e, tag)) => {
                let x = decode(&e)?;
                Ok(Some((e, tag, x)))
            }
        }
    }

    async fn index(&self, status: Status, id: &ExecId) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!(status.as_str()));
        e.insert("RowKey".into(), json!(id.as_str()));
        self.status.write(&e, false, None).await?;
        Ok(())
    }

    async fn insert_execution(&self, n: &NewExecution) -> StoreResult<()> {
        let x = &n.execution;
        let (pk, rk) = exec_keys(&x.exec_id)
            .ok_or_else(|| corrupt(format!("execution id {} is not a UUIDv7", x.exec_id)))?;
        let mut doc = x.clone();
        doc.transitions = vec![Transition {
            from: None,
            to: x.status,
            at: x.requested_at,
            reason: n.reason.clone(),
        }];
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!(pk));
        e.insert("RowKey".into(), json!(rk));
        self.put_big(&mut e, &x.exec_id, "body", x.request_body.as_deref())
            .await?;
        self.put_big(&mut e, &x.exec_id, "output", x.output.as_deref())
            .await?;
        encode(&mut e, &doc)?;
        self.index(x.status, &x.exec_id).await?;
        match self.executions.insert(&e).await {
            Ok(_) => Ok(()),
            Err(TableError::Conflict(_)) => Err(StoreError::Duplicate {
                exec_id: x.exec_id.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Claims a dedup key: `None` when this caller may create, else the first creation's ids.
    async fn claim(&self, d: &DedupKey, ids: &[&str]) -> StoreResult<Option<Vec<ExecId>>> {
        let rk = sha256_hex(&d.key);
        let window = chrono::Duration::from_std(d.window).unwrap_or(chrono::Duration::days(365));
        for _ in 0..CAS_TRIES {
            let now = time::now();
            let mut e = Entity::new();
            e.insert("PartitionKey".into(), json!("d"));
            e.insert("RowKey".into(), json!(rk));
            e.insert(
                "ids".into(),
                json!(serde_json::to_string(ids).map_err(corrupt)?),
            );
            e.insert("created_at".into(), json!(time::rfc3339(now)));
            let (old, tag) = match self.dedup.insert(&e).await {
                Ok(_) => return Ok(None),
                Err(TableError::Conflict(_)) => match self.dedup.get("d", &rk).await? {
                    Some(found) => found,
                    None => continue,
                },
                Err(err) => return Err(err.into()),
            };
            let at = str_prop(&old, "created_at")
                .and_then(time::parse_rfc3339)
                .ok_or_else(|| corrupt("dedup row without created_at"))?;
            let first: Vec<String> =
                serde_json::from_str(str_prop(&old, "ids").unwrap_or("[]")).map_err(corrupt)?;
            let first: Vec<ExecId> = first.iter().filter_map(|i| ExecId::parse(i)).collect();
            let live = at > now - window;
            // A claimer that died before creating its executions must not swallow the key:
            // after a grace period, a claim whose first execution never appeared is void.
            let orphaned = live
                && at < now - chrono::Duration::seconds(30)
                && match first.first() {
                    Some(id) => self.load(id).await?.is_none(),
                    None => true,
                };
            if live && !orphaned {
                return Ok(Some(first));
            }
            match self.dedup.write(&e, false, Some(&tag)).await {
                Ok(_) => return Ok(None),
                Err(TableError::Precondition | TableError::NotFound) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Unavailable(
            "dedup claim kept conflicting".into(),
        ))
    }
}

impl AzureStore {
    /// Notifications of `table` matching `filter`, in id (creation) order.
    async fn notifications_where(
        &self,
        table: &Table,
        filter: &str,
    ) -> StoreResult<Vec<Notification>> {
        table
            .query_all(Some(filter))
            .await?
            .iter()
            .map(|(e, _)| {
                let doc = get_text(e, "doc").ok_or_else(|| corrupt("notification without doc"))?;
                serde_json::from_str(&doc).map_err(corrupt)
            })
            .collect()
    }
}

/// Writes the execution document and its filterable properties into `e`.
fn encode(e: &mut Entity, x: &Execution) -> StoreResult<()> {
    let mut doc = x.clone();
    let transitions = std::mem::take(&mut doc.transitions);
    doc.output = None;
    doc.request_body = None;
    put_text(e, "doc", &serde_json::to_string(&doc).map_err(corrupt)?);
    put_text(
        e,
        "transitions",
        &serde_json::to_string(&transitions).map_err(corrupt)?,
    );
    e.insert("exec_id".into(), json!(x.exec_id.as_str()));
    e.insert("status".into(), json!(x.status.as_str()));
    e.insert("schema_id".into(), json!(x.schema_id));
    Ok(())
}

/// The execution of an entity, without output and request body.
fn decode(e: &Entity) -> StoreResult<Execution> {
    let doc = get_text(e, "doc").ok_or_else(|| corrupt("execution without doc"))?;
    let mut x: Execution = serde_json::from_str(&doc).map_err(corrupt)?;
    if let Some(t) = get_text(e, "transitions") {
        x.transitions = serde_json::from_str(&t).map_err(corrupt)?;
    }
    Ok(x)
}

fn after_cursor(pk: &str, rk: &str) -> String {
    format!(
        "((PartitionKey eq {} and RowKey gt {}) or PartitionKey gt {})",
        quote(pk),
        quote(rk),
        quote(pk)
    )
}

fn and(filters: &[String]) -> Option<String> {
    (!filters.is_empty()).then(|| filters.join(" and "))
}

/// One page of a newest-first listing: entities matching every filter, in key order, each
/// mapped by `keep` to an item and its cursor (or skipped), following continuations until
/// `limit` items and one more (to know whether there is a next page) are found.
async fn newest_page<T>(
    table: &Table,
    filters: &[String],
    limit: usize,
    mut keep: impl FnMut(&Entity) -> StoreResult<Option<(T, String)>>,
) -> StoreResult<Page<T>> {
    let filter = and(filters);
    let query = Query {
        filter: filter.as_deref(),
        top: Some(limit + 1),
        select: None,
    };
    let mut items = Vec::new();
    let mut from = None;
    loop {
        let page = table.query_page(&query, from.as_ref()).await?;
        for (e, _) in &page.entities {
            if let Some(item) = keep(e)? {
                items.push(item);
            }
        }
        match page.next {
            Some(n) if items.len() <= limit => from = Some(n),
            _ => break,
        }
    }
    Ok(Page::overfetched(items, limit))
}

// ---- keys and audit ---------------------------------------------------------------

fn key_entity(k: &ApiKey) -> Entity {
    let mut e = Entity::new();
    e.insert("PartitionKey".into(), json!("k"));
    e.insert("RowKey".into(), json!(safe_key(&k.name)));
    e.insert("name".into(), json!(k.name));
    e.insert("role".into(), json!(k.role.as_str()));
    e.insert("pool".into(), json!(k.pool));
    e.insert("hash".into(), json!(k.hash));
    e.insert("created_at".into(), json!(time::rfc3339(k.created_at)));
    e.insert("expires_at".into(), json!(k.expires_at.map(time::rfc3339)));
    e.insert(
        "last_used_at".into(),
        json!(k.last_used_at.map(time::rfc3339)),
    );
    e
}

fn key_of(e: &Entity) -> StoreResult<ApiKey> {
    let s = |n: &str| {
        str_prop(e, n)
            .map(str::to_string)
            .ok_or_else(|| corrupt(format!("key without {n}")))
    };
    let t = |n: &str| str_prop(e, n).and_then(time::parse_rfc3339);
    Ok(ApiKey {
        name: s("name")?,
        role: s("role")?.parse::<Role>().map_err(corrupt)?,
        pool: str_prop(e, "pool").map(str::to_string),
        hash: s("hash")?,
        created_at: t("created_at").ok_or_else(|| corrupt("key without created_at"))?,
        expires_at: t("expires_at"),
        last_used_at: t("last_used_at"),
    })
}

#[async_trait]
impl Store for AzureStore {
    async fn replace_schemas(&self, schemas: &[Schema]) -> StoreResult<()> {
        let body = serde_json::to_string(schemas).map_err(corrupt)?;
        self.put_setting("catalog", &body).await
    }

    async fn list_schemas(&self) -> StoreResult<Vec<Schema>> {
        match self.get_setting("catalog").await? {
            None => Ok(Vec::new()),
            Some(b) => serde_json::from_str(&b).map_err(corrupt),
        }
    }

    async fn create_executions(
        &self,
        batch: &[NewExecution],
        dedup: Option<&DedupKey>,
    ) -> StoreResult<Created> {
        cloudo_core::store::check_initial(batch)?;
        if let Some(d) = dedup {
            let ids: Vec<&str> = batch.iter().map(|n| n.execution.exec_id.as_str()).collect();
            if let Some(first) = self.claim(d, &ids).await? {
                return Ok(Created::Duplicate(first));
            }
        }
        for n in batch {
            self.insert_execution(n).await?;
        }
        Ok(Created::New)
    }

    async fn purge_dedup(&self, before: Timestamp) -> StoreResult<usize> {
        let filter = format!("created_at lt {}", quote(&time::rfc3339(before)));
        let rows = self.dedup.query_all(Some(&filter)).await?;
        let mut n = 0;
        for (e, tag) in rows {
            if let Some(rk) = str_prop(&e, "RowKey")
                && self
                    .dedup
                    .delete("d", rk, Some(&tag))
                    .await
                    .unwrap_or(false)
            {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn put_key(&self, key: &ApiKey, replace: bool) -> StoreResult<()> {
        let e = key_entity(key);
        if replace {
            self.keys.write(&e, false, None).await?;
            return Ok(());
        }
        match self.keys.insert(&e).await {
            Ok(_) => Ok(()),
            Err(TableError::Conflict(_)) => Err(StoreError::Conflict(format!(
                "a key named {:?} exists",
                key.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows = self.keys.query_all(None).await?;
        let mut keys = rows
            .iter()
            .map(|(e, _)| key_of(e))
            .collect::<StoreResult<Vec<_>>>()?;
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        let filter = format!("hash eq {}", quote(hash));
        let rows = self.keys.query_all(Some(&filter)).await?;
        rows.first().map(|(e, _)| key_of(e)).transpose()
    }

    async fn delete_key(&self, name: &str) -> StoreResult<bool> {
        Ok(self.keys.delete("k", &safe_key(name), None).await?)
    }

    async fn touch_key(&self, name: &str, at: Timestamp) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!("k"));
        e.insert("RowKey".into(), json!(safe_key(name)));
        e.insert("last_used_at".into(), json!(time::rfc3339(at)));
        // Merge only into an existing key (`*`): a revoked key is not brought back.
        match self.keys.write(&e, true, Some("*")).await {
            Ok(_) | Err(TableError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()> {
        let ms = r.at.timestamp_millis().max(0);
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!(inverted_day(r.at)));
        e.insert(
            "RowKey".into(),
            json!(format!(
                "{:013}-{}",
                9_999_999_999_999_i64 - ms,
                invert_hex(&uuid::Uuid::now_v7().simple().to_string())
            )),
        );
        e.insert("actor".into(), json!(r.actor));
        e.insert("action".into(), json!(r.action));
        put_text(&mut e, "doc", &serde_json::to_string(r).map_err(corrupt)?);
        self.audit.insert(&e).await?;
        Ok(())
    }

    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Page<AuditRecord>> {
        let limit = q.limit.clamp(1, 1000);
        let mut filters = Vec::new();
        if let Some(c) = &q.cursor {
            let (pk, rk) = c.split_once('/').ok_or(StoreError::BadCursor)?;
            if pk.len() != 8 || !pk.bytes().all(|b| b.is_ascii_digit()) || rk.is_empty() {
                return Err(StoreError::BadCursor);
            }
            filters.push(after_cursor(pk, rk));
        }
        if let Some(a) = &q.actor {
            filters.push(format!("actor eq {}", quote(a)));
        }
        let items = newest_page(&self.audit, &filters, limit, |e| {
            let action = str_prop(e, "action").unwrap_or_default();
            if q.action.as_deref().is_some_and(|a| !action.starts_with(a)) {
                return Ok(None);
            }
            let cursor = format!(
                "{}/{}",
                str_prop(e, "PartitionKey").unwrap_or_default(),
                str_prop(e, "RowKey").unwrap_or_default()
            );
            let doc = get_text(e, "doc").ok_or_else(|| corrupt("audit without doc"))?;
            let r = serde_json::from_str::<AuditRecord>(&doc).map_err(corrupt)?;
            Ok(Some((r, cursor)))
        })
        .await?;
        Ok(items)
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self
            .settings
            .get("s", &safe_key(key))
            .await?
            .and_then(|(e, _)| get_text(&e, "value")))
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!("s"));
        e.insert("RowKey".into(), json!(safe_key(key)));
        e.insert("updated_at".into(), json!(time::rfc3339(time::now())));
        if value.len() > PART * 30 {
            return Err(StoreError::Conflict(format!(
                "setting {key:?} is {} bytes; at most {} fit in one entity",
                value.len(),
                PART * 30
            )));
        }
        put_text(&mut e, "value", value);
        self.settings.write(&e, false, None).await?;
        Ok(())
    }

    async fn get_execution(&self, id: &ExecId) -> StoreResult<Option<Execution>> {
        let Some((e, _, mut x)) = self.load(id).await? else {
            return Ok(None);
        };
        x.output = self.get_big(&e, "output").await?;
        x.request_body = self.get_big(&e, "body").await?;
        Ok(Some(x))
    }

    async fn list_executions(&self, q: &ExecutionQuery) -> StoreResult<Page<Execution>> {
        let limit = q.limit.clamp(1, 1000);
        let mut filters = Vec::new();
        if let Some(c) = &q.cursor {
            let id = ExecId::parse(&invert_hex(c)).ok_or(StoreError::BadCursor)?;
            let (pk, rk) = exec_keys(&id).ok_or(StoreError::BadCursor)?;
            filters.push(after_cursor(&pk, &rk));
        }
        if let Some(s) = q.status {
            filters.push(format!("status eq {}", quote(s.as_str())));
        }
        if let Some(s) = &q.schema_id {
            filters.push(format!("schema_id eq {}", quote(s)));
        }
        newest_page(&self.executions, &filters, limit, |e| {
            let mut x = decode(e)?;
            x.transitions.clear();
            let cursor = str_prop(e, "RowKey").unwrap_or_default().to_string();
            Ok(Some((x, cursor)))
        })
        .await
    }

    async fn transition(
        &self,
        id: &ExecId,
        change: &StatusChange,
        at: Timestamp,
    ) -> StoreResult<Execution> {
        for _ in 0..CAS_TRIES {
            let Some((old, tag, mut x)) = self.load(id).await? else {
                return Err(StoreError::NotFound(id.clone()));
            };
            let from = x.status;
            let t = change.apply(&mut x, at)?;
            x.transitions.push(t);
            if x.status != from {
                self.index(x.status, id).await?;
            }
            let mut e = old.clone();
            if change.output.is_some() {
                self.put_big(&mut e, id, "output", x.output.as_deref())
                    .await?;
            }
            encode(&mut e, &x)?;
            match self.executions.write(&e, false, Some(&tag)).await {
                Ok(_) => {
                    if x.status != from {
                        // Best effort: a stale row left behind is repaired by readers.
                        let _ = self.status.delete(from.as_str(), id.as_str(), None).await;
                    }
                    if change.output.is_none() {
                        x.output = self.get_big(&e, "output").await?;
                    }
                    x.request_body = self.get_big(&e, "body").await?;
                    return Ok(x);
                }
                Err(TableError::Precondition) => continue,
                Err(TableError::NotFound) => return Err(StoreError::NotFound(id.clone())),
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "execution {id}: too many concurrent writers"
        )))
    }

    async fn heartbeat(
        &self,
        id: &ExecId,
        at: Timestamp,
        output: Option<&str>,
    ) -> StoreResult<bool> {
        for _ in 0..CAS_TRIES {
            let Some((mut e, tag, mut x)) = self.load(id).await? else {
                return Ok(false);
            };
            if x.status != Status::Running {
                return Ok(false);
            }
            if output.is_some() {
                self.put_big(&mut e, id, "output", output).await?;
            }
            x.heartbeat_at = Some(at);
            encode(&mut e, &x)?;
            match self.executions.write(&e, false, Some(&tag)).await {
                Ok(_) => return Ok(true),
                Err(TableError::Precondition) => continue,
                Err(TableError::NotFound) => return Ok(false),
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "execution {id}: too many concurrent writers"
        )))
    }

    async fn executions_in(&self, status: Status, limit: usize) -> StoreResult<Vec<Execution>> {
        let filter = format!("PartitionKey eq {}", quote(status.as_str()));
        let query = Query {
            filter: Some(&filter),
            top: Some(limit.clamp(1, 1000)),
            select: Some("RowKey"),
        };
        let mut out = Vec::new();
        let mut from = None;
        loop {
            let page = self.status.query_page(&query, from.as_ref()).await?;
            for (row, _) in page.entities {
                let Some(id) = str_prop(&row, "RowKey").and_then(ExecId::parse) else {
                    continue;
                };
                match self.load(&id).await? {
                    Some((_, _, mut x)) if x.status == status => {
                        x.transitions.clear();
                        out.push(x);
                    }
                    Some((_, _, x)) => {
                        // Stale row (a writer died between its steps): repair.
                        self.index(x.status, &id).await?;
                        self.status
                            .delete(status.as_str(), id.as_str(), None)
                            .await?;
                    }
                    None => {
                        self.status
                            .delete(status.as_str(), id.as_str(), None)
                            .await?;
                    }
                }
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            match page.next {
                Some(n) => from = Some(n),
                None => return Ok(out),
            }
        }
    }

    async fn add_notifications(&self, n: &[Notification]) -> StoreResult<()> {
        for one in n {
            self.update_notification(one).await?;
        }
        Ok(())
    }

    /// Every notification is kept under its execution (`notifications`, PartitionKey =
    /// exec id), and while it is held or pending also in `outbox` (one partition), so the
    /// deliverer reads only what is open however long the history grows.
    async fn update_notification(&self, n: &Notification) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!(n.exec_id.as_str()));
        e.insert("RowKey".into(), json!(n.id));
        put_text(&mut e, "doc", &serde_json::to_string(n).map_err(corrupt)?);
        self.notifications.write(&e, false, None).await?;
        e.insert("PartitionKey".into(), json!("o"));
        if matches!(n.state, Delivery::Held | Delivery::Pending) {
            self.outbox.write(&e, false, None).await?;
        } else {
            self.outbox.delete("o", &n.id, None).await?;
        }
        Ok(())
    }

    async fn open_notifications(&self, limit: usize) -> StoreResult<Vec<Notification>> {
        let mut out = self
            .notifications_where(&self.outbox, "PartitionKey eq 'o'")
            .await?;
        out.truncate(limit);
        Ok(out)
    }

    async fn notifications_for(&self, id: &ExecId) -> StoreResult<Vec<Notification>> {
        let filter = format!("PartitionKey eq {}", quote(id.as_str()));
        self.notifications_where(&self.notifications, &filter).await
    }

    async fn put_worker(&self, w: &WorkerInfo) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!("w"));
        e.insert("RowKey".into(), json!(safe_key(&w.id)));
        e.insert("last_seen".into(), json!(time::rfc3339(w.last_seen)));
        put_text(&mut e, "doc", &serde_json::to_string(w).map_err(corrupt)?);
        self.workers.write(&e, false, None).await?;
        Ok(())
    }

    async fn list_workers(&self, since: Timestamp) -> StoreResult<Vec<WorkerInfo>> {
        let filter = format!("last_seen ge {}", quote(&time::rfc3339(since)));
        let rows = self.workers.query_all(Some(&filter)).await?;
        let mut out = rows
            .iter()
            .map(|(e, _)| {
                let doc = get_text(e, "doc").ok_or_else(|| corrupt("worker without doc"))?;
                serde_json::from_str::<WorkerInfo>(&doc).map_err(corrupt)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let until = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1));
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!("l"));
        e.insert("RowKey".into(), json!(safe_key(name)));
        e.insert("holder".into(), json!(holder));
        e.insert("expires_at".into(), json!(time::rfc3339(until)));
        let (old, tag) = match self.leases.get("l", &safe_key(name)).await? {
            None => {
                return match self.leases.insert(&e).await {
                    Ok(_) => Ok(true),
                    Err(TableError::Conflict(_)) => Ok(false),
                    Err(err) => Err(err.into()),
                };
            }
            Some(found) => found,
        };
        let expired = str_prop(&old, "expires_at")
            .and_then(time::parse_rfc3339)
            .is_none_or(|t| t < now);
        if str_prop(&old, "holder") != Some(holder) && !expired {
            return Ok(false);
        }
        // The ETag makes this a compare-and-set: of two contenders, one wins.
        match self.leases.write(&e, false, Some(&tag)).await {
            Ok(_) => Ok(true),
            Err(TableError::Precondition | TableError::NotFound) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.settings.get("s", "ping").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn execution_keys_sort_newest_first() {
        let a = ExecId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ExecId::generate();
        let (pa, ra) = exec_keys(&a).unwrap();
        let (pb, rb) = exec_keys(&b).unwrap();
        assert!((pb, rb.clone()) < (pa, ra), "newer sorts first");
        assert_eq!(invert_hex(&rb), b.as_str(), "the row key gives the id back");
        assert!(
            exec_keys(&ExecId::parse("6f1c2c1e-7b7a-4c1e-9b6a-1b2c3d4e5f60").unwrap()).is_none()
        );
    }

    #[test]
    fn text_splits_at_char_boundaries() {
        let s = "é€𝄞".repeat(20_000);
        let mut e = Entity::new();
        put_text(&mut e, "t", &s);
        assert!(e.len() > 2);
        assert!(
            e.values()
                .all(|v| v.as_str().is_some_and(|p| p.len() <= PART))
        );
        assert_eq!(get_text(&e, "t").as_deref(), Some(s.as_str()));
        put_text(&mut e, "t", "short");
        assert_eq!(e.len(), 1, "stale parts removed");
    }
}
