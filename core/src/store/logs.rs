//! [`LogStore`]: what a run printed, as appended chunks with byte offsets.
//!
//! The worker sends its (masked) output in pieces as it comes; each append names the offset
//! it starts at, which must be the log's current end, so a resent piece is never stored
//! twice and two writers cannot interleave. A log holds at most the cap it is given (the
//! output cap): what comes after is dropped and the log says it is full. A reader follows a
//! run by asking for the bytes from the offset it reached.

use async_trait::async_trait;

use super::StoreResult;
use crate::execution::ExecId;

/// A range of a log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRead {
    /// Where `data` starts.
    pub offset: u64,
    pub data: Vec<u8>,
    /// The log's length now.
    pub size: u64,
    /// The log reached its cap: nothing more will be added.
    pub full: bool,
}

impl LogRead {
    /// The offset just after `data`.
    pub fn next(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    /// Appends `chunk` to the log of `id` at `offset`, keeping at most `cap` bytes in all
    /// (the rest of the chunk is dropped and the log is full from then on). `offset` must be
    /// the log's length, else [`super::StoreError::LogOffset`] says what it is and nothing
    /// is written. Returns the log's length after the append.
    async fn append_log(
        &self,
        id: &ExecId,
        offset: u64,
        chunk: &[u8],
        cap: u64,
    ) -> StoreResult<u64>;

    /// Up to `limit` bytes of the log of `id` from `from` (empty at or past the end, or when
    /// there is no log).
    async fn read_log(&self, id: &ExecId, from: u64, limit: usize) -> StoreResult<LogRead>;
}
