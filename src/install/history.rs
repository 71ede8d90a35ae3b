//! What happened to a target: the one event path. Every import, rollback,
//! publish, repair, recovery, override, rotation and refusal becomes an
//! [`audit::Record`] appended to the target's hash-chained audit journal
//! (`formats/audit-journal-v1.md`), always under the target lock and never
//! onto a broken chain.
//!
//! The journal lives in the state folder. A whole-tree switch or rollback
//! carries it into the tree it switches to ([`extended`]), so it survives
//! both; an ordered switch prepares its entries in `incoming/` and appends
//! them at its commit ([`append_prepared`]), once even if recovery
//! finishes the switch. A target that kept the plain `history` log of
//! earlier versions keeps it, frozen, and the journal's first entry binds
//! its SHA-256 (§7).

use crate::audit::{self, Action, Journal, Record};
use crate::backend::Backend;
use crate::digest::Digest;
use crate::error::Result;
use crate::install::state::{HISTORY_FILE, HISTORY_MAGIC};
use camino::Utf8PathBuf;

/// Name of the audit journal in the state folder.
pub const AUDIT_FILE: &str = "audit";
/// Largest plain history log carried over (§7).
pub const MAX_HISTORY_BYTES: u64 = 64 * 1024 * 1024;

/// Where the journal of `backend` is, for messages.
pub fn location(backend: &dyn Backend) -> Utf8PathBuf {
    format!("{}/{AUDIT_FILE}", backend.state_location()).into()
}

/// Reads and checks the target's journal: the chain as far as it is
/// intact, and the first broken link if there is one. Writes nothing.
pub fn read(backend: &dyn Backend) -> Result<(Journal, Option<crate::error::Error>)> {
    let bytes = backend.read_state(AUDIT_FILE)?;
    Ok(Journal::decode_prefix(bytes.as_deref(), &location(backend)))
}

/// The plain history log of earlier versions, if the target has one.
pub fn legacy(backend: &dyn Backend) -> Result<Option<Vec<u8>>> {
    backend.read_state(HISTORY_FILE)
}

/// The journal with `records` appended, refusing a broken chain. A target
/// without a journal starts one; if it kept a plain history log, the first
/// entry records that log's SHA-256 and number of records.
fn journal_with(backend: &dyn Backend, records: &[Record]) -> Result<(Journal, Vec<String>)> {
    let bytes = backend.read_state(AUDIT_FILE)?;
    let mut journal = Journal::decode(bytes.as_deref(), &location(backend)).map_err(with_hint)?;
    let mut lines = Vec::new();
    if bytes.is_none()
        && let Some(old) = legacy(backend)?
        && let Some(first) = records.first()
    {
        lines.push(journal.append(carried_over(&old, first.time))?);
    }
    for record in records {
        lines.push(journal.append(record.clone())?);
    }
    Ok((journal, lines))
}

/// Refuses to go on with a broken journal (§5: a writer never extends a
/// broken chain). Called before a switch does any work.
pub fn check(backend: &dyn Backend) -> Result<()> {
    journal_with(backend, &[]).map(drop)
}

/// Adds what to do about a broken journal to its error.
fn with_hint(error: crate::error::Error) -> crate::error::Error {
    match error {
        crate::error::Error::Format { path, problem } => crate::error::Error::Format {
            path,
            problem: format!(
                "{problem}\nhint: no entry is added to a broken chain: keep the journal as evidence (`ferry log` shows what still chains), move it aside (e.g. to audit.broken) and run the command again to start a new one"
            ),
        },
        other => other,
    }
}

/// The entry binding a plain history log into the chain (§7).
fn carried_over(old: &[u8], time: jiff::Timestamp) -> Record {
    let records = old.iter().filter(|b| **b == b'\n').count().saturating_sub(1);
    let too_large = old.len() as u64 > MAX_HISTORY_BYTES;
    let reason = if too_large {
        format!("{HISTORY_FILE} kept as it was ({} bytes, over the limit; not counted)", old.len())
    } else {
        format!("{HISTORY_FILE} kept as it was ({records} records of `{HISTORY_MAGIC}`)")
    };
    Record { snapshot: Some(Digest::of(old)), ..Record::new(time, Action::History).by(None, Some(&reason)) }
}

/// Appends `records` to the target's journal in place (under the lock).
pub fn append(backend: &dyn Backend, records: &[Record]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let (_, lines) = journal_with(backend, records)?;
    for line in lines {
        backend.append_state(AUDIT_FILE, audit::MAGIC, line.trim_end_matches('\n'))?;
    }
    Ok(())
}

/// The whole journal with `records` appended, to be written into a new
/// tree that is about to replace the live one.
pub fn extended(backend: &dyn Backend, records: &[Record]) -> Result<Vec<u8>> {
    Ok(journal_with(backend, records)?.0.encode().into_bytes())
}

/// The entry lines `records` would get if appended now: what an ordered
/// switch keeps in `incoming/` until its commit.
pub fn prepared(backend: &dyn Backend, records: &[Record]) -> Result<Vec<u8>> {
    Ok(journal_with(backend, records)?.1.concat().into_bytes())
}

/// Appends entries prepared by [`prepared`], unless the journal already
/// ends with them (a crash after they were appended, before the switch was
/// tidied up). If other entries came in between, their records are
/// appended again as new entries, so the chain stays unbroken.
pub fn append_prepared(backend: &dyn Backend, lines: &[u8]) -> Result<()> {
    let origin = location(backend);
    let text = String::from_utf8_lossy(lines);
    let entries = audit::decode_entries(&text, &origin)?;
    if let Some(current) = backend.read_state(AUDIT_FILE)?
        && current.ends_with(lines)
        && !lines.is_empty()
    {
        return Ok(());
    }
    // The prepared lines may start with the entry binding the old history
    // log: that one is made again if it is still needed.
    let records: Vec<Record> =
        entries.into_iter().map(|entry| entry.record).filter(|record| record.action != Action::History).collect();
    append(backend, &records)
}

/// Copies the plain history log, if the live target has one, into the
/// state folder of a tree about to be switched in: it stays with the
/// journal whose first entry names its SHA-256.
pub fn carry_legacy(backend: &dyn Backend, write: &dyn Fn(&str, &[u8]) -> Result<()>) -> Result<()> {
    match legacy(backend)? {
        Some(old) => write(HISTORY_FILE, &old),
        None => Ok(()),
    }
}
