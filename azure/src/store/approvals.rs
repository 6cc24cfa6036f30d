//! [`ApprovalStore`] on tables: the execution's entity is replaced with `If-Match`, so of
//! two concurrent decisions the second is checked again against the first.

use super::*;

#[async_trait]
impl ApprovalStore for AzureStore {
    async fn add_decision(&self, id: &ExecId, decision: &Decision) -> StoreResult<Execution> {
        for _ in 0..CAS_TRIES {
            let Some((old, tag, mut x)) = self.load(id).await? else {
                return Err(StoreError::NotFound(id.clone()));
            };
            record_decision(&mut x, decision)?;
            let mut e = old.clone();
            encode(&mut e, &x)?;
            match self.executions.write(&e, false, Some(&tag)).await {
                Ok(_) => {
                    x.output = self.get_big(&e, "output").await?;
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
}
