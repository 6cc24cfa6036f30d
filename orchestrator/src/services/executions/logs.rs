//! Run output in the execution's log: appended from workers' heartbeats (a resent piece
//! is stored once), read by range, and the head and tail shown while a run is live.

use cloudo_core::store::{LogRead, StoreResult};
use cloudo_core::text::{floor_char_boundary, utf8_prefix};
use cloudo_core::{ExecId, Execution, StoreError};
use cloudo_worker::protocol::LogPiece;

use super::Executions;

/// Bytes of a live execution's log its answer shows (head and tail).
pub const LIVE_SHOWN: u64 = 48 * 1024;

impl Executions {
    /// Appends a worker's piece of output to the log of `id`; returns the log's length.
    /// A piece (or its start) that the log already has is not stored again: a worker
    /// resends what it did not see acknowledged.
    pub async fn append_log(&self, id: &ExecId, piece: &LogPiece) -> StoreResult<u64> {
        let data = piece.data.as_str();
        let mut offset = piece.offset;
        loop {
            let Some(skip) = offset.checked_sub(piece.offset) else {
                return Ok(offset);
            };
            let Some(rest) = usize::try_from(skip).ok().and_then(|n| data.get(n..)) else {
                // Already has all of it, or a start inside a character: nothing to add.
                return Ok(offset);
            };
            // Cut within the cap at a character, so the log stays text; a cut log is full.
            let room = usize::try_from(self.log_cap.saturating_sub(offset)).unwrap_or(usize::MAX);
            let keep = floor_char_boundary(rest, room);
            let cap = if keep < rest.len() {
                offset + keep as u64
            } else {
                self.log_cap
            };
            match self
                .store
                .append_log(id, offset, &rest.as_bytes()[..keep], cap)
                .await
            {
                Ok(size) => {
                    self.log_grew(id);
                    return Ok(size);
                }
                // The log has part of this piece (an earlier try landed): add the rest.
                Err(StoreError::LogOffset { size })
                    if size > offset && size < piece.offset + data.len() as u64 =>
                {
                    offset = size;
                }
                Err(StoreError::LogOffset { size }) => return Ok(size),
                Err(e) => return Err(e),
            }
        }
    }

    /// Where a new attempt's output starts in the log of `e`: after what earlier attempts
    /// logged, and a line saying a new attempt begins.
    pub(super) async fn start_log(&self, e: &Execution) -> StoreResult<u64> {
        let size = self.store.read_log(&e.exec_id, 0, 0).await?.size;
        if size == 0 {
            return Ok(0);
        }
        let line = format!(
            "\n[cloudo: a new attempt starts on worker {}]\n",
            e.worker_id.as_deref().unwrap_or("?")
        );
        self.append_log(
            &e.exec_id,
            &LogPiece {
                offset: size,
                data: line,
            },
        )
        .await
    }

    /// Up to `limit` bytes of the log of `id` from `from`, ending at a whole character.
    pub async fn read_log(&self, id: &ExecId, from: u64, limit: usize) -> StoreResult<LogRead> {
        let mut r = self.store.read_log(id, from, limit).await?;
        let whole = utf8_prefix(&r.data).len();
        r.data.truncate(whole);
        Ok(r)
    }

    /// A running execution has no final output yet, nor has one that ended without its
    /// worker's final report (stopped, lost): it shows its log (the first and last
    /// [`LIVE_SHOWN`] / 2 bytes when longer).
    pub async fn show_live_output(&self, e: &mut Execution) -> StoreResult<()> {
        if e.output.is_some() || e.started_at.is_none() {
            return Ok(());
        }
        let head = self.read_log(&e.exec_id, 0, LIVE_SHOWN as usize).await?;
        if head.size == 0 {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&head.data).into_owned();
        if head.size > LIVE_SHOWN {
            let half = (LIVE_SHOWN / 2) as usize;
            text.truncate(utf8_prefix(&head.data[..half]).len());
            let tail = self
                .read_log(&e.exec_id, head.size - half as u64, half)
                .await?;
            // The tail may start inside a character: skip to the next one.
            let start = tail.data.iter().position(|b| b & 0xC0 != 0x80).unwrap_or(0);
            text.push_str(&format!(
                "\n[cloudo: {} bytes in the log; the first and last {} KiB are shown; \
                 GET /api/executions/{}/output reads any range]\n",
                head.size,
                half / 1024,
                e.exec_id
            ));
            text.push_str(&String::from_utf8_lossy(&tail.data[start..]));
        }
        e.output = Some(text);
        e.output_truncated = head.full;
        Ok(())
    }
}
