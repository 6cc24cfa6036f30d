//! Text spread over entity properties and chunk entities: outputs, request bodies and
//! documents larger than one property (64 KiB) or one entity (1 MiB) allows.

use super::*;

/// Splits at char boundaries into pieces of at most `max` bytes.
pub(super) fn split_utf8(s: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let cut = cloudo_core::text::floor_char_boundary(rest, max);
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

pub(super) fn part_name(name: &str, n: usize) -> String {
    if n == 0 {
        name.to_string()
    } else {
        format!("{name}__{n}")
    }
}

/// Writes `text` as properties `name`, `name__1`, ... (and removes stale higher parts).
pub(super) fn put_text(e: &mut Entity, name: &str, text: &str) {
    let parts = split_utf8(text, PART);
    e.retain(|k, _| k != name && !k.starts_with(&format!("{name}__")));
    if parts.is_empty() {
        e.insert(name.to_string(), json!(""));
    }
    for (n, p) in parts.iter().enumerate() {
        e.insert(part_name(name, n), json!(p));
    }
}

pub(super) fn get_text(e: &Entity, name: &str) -> Option<String> {
    let mut out = e.get(name)?.as_str()?.to_string();
    for n in 1.. {
        match e.get(&part_name(name, n)).and_then(Value::as_str) {
            Some(p) => out.push_str(p),
            None => break,
        }
    }
    Some(out)
}

pub(super) fn str_prop<'a>(e: &'a Entity, name: &str) -> Option<&'a str> {
    e.get(name).and_then(Value::as_str)
}

impl AzureStore {
    /// Stores a large text as chunk entities; returns the reference kept on the execution.
    pub(super) async fn put_chunks(
        &self,
        id: &ExecId,
        kind: &str,
        text: &str,
    ) -> StoreResult<String> {
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

    pub(super) async fn get_chunks(&self, reference: &str) -> StoreResult<String> {
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
    pub(super) async fn put_big(
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

    pub(super) async fn get_big(&self, e: &Entity, name: &str) -> StoreResult<Option<String>> {
        if let Some(r) = str_prop(e, &format!("{name}_ref")) {
            return self.get_chunks(r).await.map(Some);
        }
        Ok(get_text(e, name))
    }
}
