//! `ferry log`: the audit journal of a target (formats/audit-journal-v1.md),
//! read and checked link by link. Takes no lock and writes nothing: a
//! journal being appended to is read as it was before the append, since
//! folder targets append whole lines and FTP targets replace the file.

use crate::audit::Entry;
use crate::backend::Backend;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::install::history;
use serde::Serialize;

/// What `ferry log` found.
#[derive(Debug, Clone, Serialize)]
pub struct LogReport {
    /// The target.
    pub target: String,
    /// Where its journal is.
    pub journal: String,
    /// The entries that chain correctly, oldest first.
    pub entries: Vec<LogEntry>,
    /// Whether every entry chains and the kept history log matches.
    pub intact: bool,
    /// The first broken or missing link, naming its line and entry.
    pub broken: Option<String>,
    /// The plain history log of earlier versions, when the target kept one.
    pub legacy_history: Option<LegacyHistory>,
}

/// One journal entry, for people and scripts.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    /// 1 for the first entry, then one more each.
    pub number: u64,
    /// When it happened.
    pub time: String,
    /// `import`, `rollback`, `publish`, `override`, `rotation`, `recover`,
    /// `refusal`, `repair` or `history`.
    pub action: String,
    /// The repository concerned.
    pub repository: Option<String>,
    /// The sequence concerned.
    pub sequence: Option<u64>,
    /// SHA-256 of the manifest concerned (of the history log for `history`).
    pub snapshot_id: Option<String>,
    /// The keys whose signatures counted.
    pub signed_by: Vec<String>,
    /// Who ran the command.
    pub operator: Option<String>,
    /// The reason given, or why something was refused.
    pub reason: Option<String>,
    /// Files the switch removed as declined (formats/audit-journal-v1.md §6a).
    pub removed_declined: u64,
    /// SHA-256 of the entry before it.
    pub prev: String,
}

/// The plain history log kept from before the journal (§7).
#[derive(Debug, Clone, Serialize)]
pub struct LegacyHistory {
    /// Where it is.
    pub path: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Its lines after the first, as written.
    pub records: Vec<String>,
}

impl From<&Entry> for LogEntry {
    fn from(entry: &Entry) -> Self {
        let record = &entry.record;
        LogEntry {
            number: entry.number,
            time: crate::clock::format(record.time),
            action: record.action.as_str().to_owned(),
            repository: record.repository.as_ref().map(|id| id.to_string()),
            sequence: record.sequence,
            snapshot_id: record.snapshot.map(|digest| digest.to_hex()),
            signed_by: record.signers.iter().map(|id| id.to_string()).collect(),
            operator: record.operator.clone(),
            reason: record.reason.clone(),
            removed_declined: record.declined.unwrap_or(0),
            prev: entry.prev.to_hex(),
        }
    }
}

/// Reads and checks the journal of `target`. A target with neither a
/// journal nor an installed snapshot is `NotInstalled`.
pub fn log(target: &dyn Backend) -> Result<LogReport> {
    let present = target.read_state(history::AUDIT_FILE)?.is_some();
    if !present && crate::install::installed_state(target)?.is_none() {
        return Err(Error::NotInstalled(target.location().into()));
    }
    let (journal, problem) = history::read(target)?;
    let mut broken = problem.map(|error| error.to_string());
    let legacy = history::legacy(target)?;
    let first = journal.entries().first().filter(|entry| entry.record.action == crate::audit::Action::History);
    let legacy_path = format!("{}/{}", target.state_location(), crate::install::state::HISTORY_FILE);
    if broken.is_none()
        && let Some(first) = first
    {
        let found = legacy.as_deref().map(Digest::of);
        if found != first.record.snapshot {
            broken = Some(format!(
                "{legacy_path}: {} the SHA-256 that entry 1 of the journal recorded (the old history log was changed)",
                if found.is_some() { "does not have" } else { "is missing; it had" }
            ));
        }
    }
    let legacy_history = legacy.map(|bytes| LegacyHistory {
        path: legacy_path,
        sha256: Digest::of(&bytes).to_hex(),
        records: String::from_utf8_lossy(&bytes).lines().skip(1).map(str::to_owned).collect(),
    });
    Ok(LogReport {
        target: target.location(),
        journal: history::location(target).to_string(),
        entries: journal.entries().iter().map(LogEntry::from).collect(),
        intact: broken.is_none(),
        broken,
        legacy_history,
    })
}
