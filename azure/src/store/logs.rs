//! [`LogStore`] on tables: table `logs`, PartitionKey = the execution id, RowKey = the
//! number of a *block*. Block `n` holds bytes `[n * BLOCK, (n + 1) * BLOCK)` of the log
//! (in `BLOCK_PARTS` binary properties), so the block of any offset is known without a
//! query, and a block is filled before the next one starts. Every write is one atomic
//! step: a block is extended by a replace with `If-Match` (of two racing appends, one
//! wins) and a new block by an insert (which fails if it exists). An append that spans
//! blocks may stop after its first write (a crash, a racing writer): the log then holds a
//! prefix of the piece, its length says so, and the sender resends the rest from there.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::*;

/// Bytes per binary property (Azure allows 64 KiB).
const PART_BYTES: usize = 48_000;
const BLOCK_PARTS: usize = 5;
const BLOCK: u64 = (PART_BYTES * BLOCK_PARTS) as u64;

fn block_key(n: u64) -> String {
    format!("{n:08}")
}

/// A block as stored: its bytes, whether the log is full, and its ETag.
struct Block {
    data: Vec<u8>,
    full: bool,
    tag: String,
}

fn block_entity(id: &ExecId, n: u64, data: &[u8], full: bool) -> Entity {
    let mut e = Entity::new();
    e.insert("PartitionKey".into(), json!(id.as_str()));
    e.insert("RowKey".into(), json!(block_key(n)));
    e.insert("len".into(), json!(data.len()));
    e.insert("full".into(), json!(full));
    for (i, part) in data.chunks(PART_BYTES).enumerate() {
        e.insert(format!("d{i}"), json!(B64.encode(part)));
        e.insert(format!("d{i}@odata.type"), json!("Edm.Binary"));
    }
    e
}

fn block_of(e: &Entity, tag: String) -> StoreResult<Block> {
    let len = e.get("len").and_then(Value::as_u64).unwrap_or(0);
    let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    for i in 0..BLOCK_PARTS {
        let Some(part) = str_prop(e, &format!("d{i}")) else {
            break;
        };
        data.extend(B64.decode(part).map_err(corrupt)?);
    }
    if data.len() as u64 != len {
        return Err(corrupt(format!(
            "log block of {} bytes, not {len}",
            data.len()
        )));
    }
    let full = e.get("full").and_then(Value::as_bool).unwrap_or(false);
    Ok(Block { data, full, tag })
}

impl AzureStore {
    async fn block(&self, id: &ExecId, n: u64) -> StoreResult<Option<Block>> {
        match self.logs.get(id.as_str(), &block_key(n)).await? {
            None => Ok(None),
            Some((e, tag)) => block_of(&e, tag).map(Some),
        }
    }

    /// The log's length and whether it is full, from the lengths of its blocks.
    async fn log_end(&self, id: &ExecId) -> StoreResult<(u64, bool)> {
        let filter = format!("PartitionKey eq {}", quote(id.as_str()));
        let q = Query {
            filter: Some(&filter),
            top: None,
            select: Some("RowKey,len,full"),
        };
        let mut end = (0, false);
        let mut from = None;
        loop {
            let page = self.logs.query_page(&q, from.as_ref()).await?;
            for (e, _) in &page.entities {
                let n: u64 = str_prop(e, "RowKey")
                    .and_then(|k| k.parse().ok())
                    .ok_or_else(|| corrupt("log block without a number"))?;
                let len = e.get("len").and_then(Value::as_u64).unwrap_or(0);
                let full = e.get("full").and_then(Value::as_bool).unwrap_or(false);
                end = end.max((n * BLOCK + len, full));
            }
            match page.next {
                Some(n) => from = Some(n),
                None => return Ok(end),
            }
        }
    }

    async fn refuse(&self, id: &ExecId) -> StoreError {
        match self.log_end(id).await {
            Ok((size, _)) => StoreError::LogOffset { size },
            Err(e) => e,
        }
    }
}

#[async_trait]
impl LogStore for AzureStore {
    async fn append_log(
        &self,
        id: &ExecId,
        offset: u64,
        chunk: &[u8],
        cap: u64,
    ) -> StoreResult<u64> {
        let (mut n, within) = (offset / BLOCK, offset % BLOCK);
        // The block `offset` falls in must end exactly there (or, at a block boundary, the
        // previous block must be complete and the next absent).
        let mut current = match self.block(id, n).await? {
            Some(b) if b.data.len() as u64 == within => Some(b),
            Some(_) => return Err(self.refuse(id).await),
            None if within != 0 => return Err(self.refuse(id).await),
            None if n == 0 => None,
            None => match self.block(id, n - 1).await? {
                Some(prev) if prev.data.len() as u64 == BLOCK => {
                    if prev.full {
                        return Ok(offset);
                    }
                    None
                }
                _ => return Err(self.refuse(id).await),
            },
        };
        if current.as_ref().is_some_and(|b| b.full) {
            return Ok(offset);
        }
        let room = usize::try_from(cap.saturating_sub(offset)).unwrap_or(usize::MAX);
        let mut rest = &chunk[..chunk.len().min(room)];
        let mut size = offset;
        if rest.is_empty() {
            return Ok(size);
        }
        while !rest.is_empty() {
            let (mut data, tag) = match current.take() {
                Some(b) => (b.data, Some(b.tag)),
                None => (Vec::new(), None),
            };
            let take = rest
                .len()
                .min(usize::try_from(BLOCK).unwrap_or(usize::MAX) - data.len());
            data.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            let end = n * BLOCK + data.len() as u64;
            let e = block_entity(id, n, &data, end >= cap);
            let written = match &tag {
                Some(tag) => self.logs.write(&e, false, Some(tag)).await.map(|_| ()),
                None => self.logs.insert(&e).await.map(|_| ()),
            };
            match written {
                Ok(()) => size = end,
                Err(TableError::Precondition | TableError::Conflict(_) | TableError::NotFound) => {
                    return if size == offset {
                        Err(self.refuse(id).await)
                    } else {
                        // Part of the piece is in; the rest raced with another writer.
                        Ok(size)
                    };
                }
                Err(err) => return Err(err.into()),
            }
            n += 1;
        }
        Ok(size)
    }

    async fn read_log(&self, id: &ExecId, from: u64, limit: usize) -> StoreResult<LogRead> {
        let (size, full) = self.log_end(id).await?;
        let until = from.saturating_add(limit as u64).min(size);
        let mut data = Vec::new();
        let mut at = from;
        while at < until {
            let n = at / BLOCK;
            let Some(b) = self.block(id, n).await? else {
                break;
            };
            let lo = usize::try_from(at - n * BLOCK).unwrap_or(usize::MAX);
            let hi = usize::try_from((until - n * BLOCK).min(b.data.len() as u64)).unwrap_or(0);
            if lo >= hi {
                break;
            }
            data.extend_from_slice(&b.data[lo..hi]);
            at += (hi - lo) as u64;
        }
        Ok(LogRead {
            offset: from.min(size),
            data,
            size,
            full,
        })
    }
}
