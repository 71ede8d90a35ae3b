//! What happened to a target: the one place that turns an event into a
//! history record (`formats/target-state-v1.md` §4) and writes it. An
//! audit journal can replace this module without touching its callers.

use crate::backend::Backend;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::install::state::{HISTORY_FILE, HISTORY_MAGIC};
use jiff::Timestamp;

/// Largest history log carried over into a new tree (§4).
pub const MAX_HISTORY_BYTES: u64 = 64 * 1024 * 1024;

/// Something that happened to a target.
#[derive(Debug, Clone)]
pub enum Event {
    /// A snapshot was installed.
    Import {
        /// When the import started.
        time: Timestamp,
        /// Sequence installed.
        sequence: u64,
        /// Snapshot installed.
        snapshot: Digest,
        /// Keys whose signatures verified.
        signed_by: String,
        /// The snapshot folder it was read from.
        from: String,
    },
    /// The target was switched back to its previous snapshot.
    Rollback {
        /// When the rollback started.
        time: Timestamp,
        /// Sequence rolled back to.
        sequence: u64,
        /// Snapshot rolled back to.
        snapshot: Digest,
        /// Sequence rolled back from.
        from_sequence: u64,
    },
    /// Damaged files of the installed snapshot were restored (`--repair`).
    Repair {
        /// When the repair started.
        time: Timestamp,
        /// Sequence installed (unchanged).
        sequence: u64,
        /// Snapshot installed (unchanged).
        snapshot: Digest,
        /// How many files were restored.
        files: usize,
    },
    /// Recovery finished or discarded what an interrupted run left.
    Recover {
        /// When recovery finished.
        time: Timestamp,
        /// What it did.
        description: String,
    },
}

impl Event {
    /// The history record, without its line feed.
    pub fn record(&self) -> String {
        match self {
            Event::Import { time, sequence, snapshot, signed_by, from } => format!(
                "{} import {sequence} {} signed-by {signed_by} from {from}",
                crate::clock::format(*time),
                snapshot.short()
            ),
            Event::Rollback { time, sequence, snapshot, from_sequence } => {
                format!("{} rollback {sequence} {} from {from_sequence}", crate::clock::format(*time), snapshot.short())
            }
            Event::Repair { time, sequence, snapshot, files } => {
                format!("{} repair {sequence} {} files {files}", crate::clock::format(*time), snapshot.short())
            }
            Event::Recover { time, description } => format!("{} recover {description}", crate::clock::format(*time)),
        }
    }
}

/// Appends `record` to the target's history in place.
pub fn append(backend: &dyn Backend, record: &str) -> Result<()> {
    backend.append_state(HISTORY_FILE, HISTORY_MAGIC, record)
}

/// The target's history with `record` appended, to be written into a new
/// tree that is about to replace the live one.
pub fn extended(backend: &dyn Backend, record: &str) -> Result<Vec<u8>> {
    let mut history = backend.read_state(HISTORY_FILE)?.unwrap_or_else(|| format!("{HISTORY_MAGIC}\n").into_bytes());
    if history.len() as u64 > MAX_HISTORY_BYTES {
        return Err(Error::format(
            format!("{}/{HISTORY_FILE}", backend.state_location()),
            "larger than the history limit of 64 MiB; move it aside to keep it",
        ));
    }
    history.extend_from_slice(record.as_bytes());
    history.push(b'\n');
    Ok(history)
}
