//! What a key may act on besides its role: schemas by id, partition or tag
//! (`id:restart-web`, `partition:payments`, `tag:payments`). An empty scope is every schema.

use serde::{Deserialize, Serialize};

use crate::schema::Schema;

/// A key's scope: the schemas it may run, approve and read (any of the selectors).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Scope(Vec<String>);

impl Scope {
    /// Checks each selector (`id:`, `partition:` or `tag:` and a non-empty value).
    pub fn parse(selectors: Vec<String>) -> Result<Self, String> {
        for s in &selectors {
            match s.split_once(':') {
                Some(("id" | "partition" | "tag", v)) if !v.trim().is_empty() && v.len() <= 256 => {
                }
                _ => {
                    return Err(format!(
                        "scope selector {s:?}: expected id:<schema id>, partition:<partition key> or tag:<tag>"
                    ));
                }
            }
        }
        Ok(Self(selectors))
    }

    /// Every schema.
    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }

    pub fn selectors(&self) -> &[String] {
        &self.0
    }

    /// Whether a schema with this id, partition and tags is in scope.
    pub fn allows(&self, id: &str, partition: &str, tags: &[String]) -> bool {
        self.is_all()
            || self.0.iter().any(|s| match s.split_once(':') {
                Some(("id", v)) => v == id,
                Some(("partition", v)) => v == partition,
                Some(("tag", v)) => tags.iter().any(|t| t == v),
                _ => false,
            })
    }

    pub fn allows_schema(&self, s: &Schema) -> bool {
        self.allows(&s.id, &s.partition_key, &s.tags)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_all() {
            f.write_str("every schema")
        } else {
            f.write_str(&self.0.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_ids_partitions_and_tags() {
        let s = Scope::parse(vec!["tag:payments".into(), "id:restart-web".into()]).expect("valid");
        let tags = |t: &[&str]| t.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(s.allows("x", "p", &tags(&["aks", "payments"])));
        assert!(s.allows("restart-web", "p", &[]));
        assert!(!s.allows("x", "payments", &tags(&["aks"])));
        assert!(
            Scope::parse(vec!["partition:payments".into()])
                .expect("valid")
                .allows("x", "payments", &[])
        );
        assert!(Scope::default().allows("anything", "", &[]));
        assert_eq!(s.to_string(), "tag:payments, id:restart-web");
        for bad in ["payments", "tag:", "team:x", ""] {
            assert!(Scope::parse(vec![bad.into()]).is_err(), "{bad}");
        }
    }
}
