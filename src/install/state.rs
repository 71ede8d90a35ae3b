//! The installed-target state files: `formats/target-state-v1.md`.
//!
//! `state` is the commit marker of an installed snapshot; `journal` lists
//! the steps of an ordered switch so that a crash can be rolled forward.

use crate::clock;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::lines::KeyValueLines;
use crate::manifest::RepositoryId;
use crate::rel_path::RelPath;
use camino::Utf8Path;
use jiff::Timestamp;
use serde::Serialize;

/// Name of the state marker in the state folder.
pub const STATE_FILE: &str = "state";
/// Name of the installed manifest copy.
pub const MANIFEST_FILE: &str = "manifest";
/// Name of the installed signature copy.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// Name of the append-only history log.
pub const HISTORY_FILE: &str = "history";
/// Name of the ordered-switch journal.
pub const JOURNAL_FILE: &str = "journal";
/// Largest state or journal file read.
pub const MAX_STATE_BYTES: u64 = 1024 * 1024;

const STATE_MAGIC: &str = "ferry state v1";
/// First line of the history log.
pub const HISTORY_MAGIC: &str = "ferry history v1";
/// First line of the journal this ferry writes (v2 adds `keep` and `swap`).
const JOURNAL_MAGIC: &str = "ferry journal v2";
/// First line of journals written before `keep` and `swap`; still read
/// (formats/README.md V5), without those two steps.
const JOURNAL_MAGIC_V1: &str = "ferry journal v1";

/// How a snapshot was switched into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchKind {
    /// Old and new trees exchanged in one atomic step.
    Tree,
    /// Files renamed into place one by one, following a journal.
    Ordered,
}

impl SwitchKind {
    fn as_str(self) -> &'static str {
        match self {
            SwitchKind::Tree => "tree",
            SwitchKind::Ordered => "ordered",
        }
    }
}

/// The content of `.ferry/state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledState {
    /// Repository installed.
    pub repository: RepositoryId,
    /// Sequence installed.
    pub sequence: u64,
    /// Snapshot id (SHA-256 of the manifest).
    pub snapshot: Digest,
    /// When the snapshot was created on the connected side.
    pub created: Timestamp,
    /// When the snapshot expires, if ever.
    pub expires: Option<Timestamp>,
    /// When it was installed here.
    pub installed: Timestamp,
    /// How it was switched in.
    pub switch: SwitchKind,
    /// The snapshot kept for rollback, if any.
    pub previous: Option<Digest>,
    /// Set when this state was reached by `ferry rollback` from that sequence.
    pub rolled_back_from: Option<u64>,
}

impl InstalledState {
    /// Encodes the state file.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{STATE_MAGIC}\nrepository: {}\nsequence: {}\nsnapshot: {}\ncreated: {}\nexpires: {}\ninstalled: {}\nswitch: {}\nprevious: {}\nrolled-back-from: {}\n",
            self.repository,
            self.sequence,
            self.snapshot,
            clock::format(self.created),
            self.expires.map_or("never".into(), clock::format),
            clock::format(self.installed),
            self.switch.as_str(),
            self.previous.map_or("none".into(), |d| d.to_hex()),
            self.rolled_back_from.map_or("none".into(), |s| s.to_string()),
        )
        .into_bytes()
    }

    /// Decodes a state file read from `origin`.
    pub fn decode(bytes: &[u8], origin: &Utf8Path) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::format(origin, "not UTF-8"))?;
        let mut lines = KeyValueLines::new(text, origin, STATE_MAGIC)?;
        let bad = |what: &str, value: &str| Error::format(origin, format!("`{value}` is not a valid {what}"));
        let repository = lines.value("repository")?;
        let repository = RepositoryId::new(repository).map_err(|e| Error::format(origin, e))?;
        let sequence = lines.value("sequence")?;
        let sequence = parse_number(sequence).ok_or_else(|| bad("sequence", sequence))?;
        let snapshot = lines.value("snapshot")?;
        let snapshot = Digest::from_hex(snapshot).ok_or_else(|| bad("snapshot id", snapshot))?;
        let created = lines.value("created")?;
        let created = clock::parse(created).ok_or_else(|| bad("time", created))?;
        let expires = match lines.value("expires")? {
            "never" => None,
            text => Some(clock::parse(text).ok_or_else(|| bad("time", text))?),
        };
        let installed = lines.value("installed")?;
        let installed = clock::parse(installed).ok_or_else(|| bad("time", installed))?;
        let switch = match lines.value("switch")? {
            "tree" => SwitchKind::Tree,
            "ordered" => SwitchKind::Ordered,
            other => return Err(bad("switch kind", other)),
        };
        let previous = match lines.value("previous")? {
            "none" => None,
            text => Some(Digest::from_hex(text).ok_or_else(|| bad("snapshot id", text))?),
        };
        let rolled_back_from = match lines.value("rolled-back-from")? {
            "none" => None,
            text => Some(parse_number(text).ok_or_else(|| bad("sequence", text))?),
        };
        lines.end()?;
        Ok(InstalledState {
            repository,
            sequence,
            snapshot,
            created,
            expires,
            installed,
            switch,
            previous,
            rolled_back_from,
        })
    }
}

/// Whether `text` has anything after its line `number` (1-based).
fn lines_left_after_end(text: &str, number: usize) -> bool {
    text.lines().nth(number).is_some()
}

/// A decimal number as ferry writes it: digits only, no sign.
fn parse_number(text: &str) -> Option<u64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

/// Why a journal was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalKind {
    /// Installing a new snapshot.
    Import,
    /// Switching back to the previous snapshot.
    Rollback,
}

/// One step of an ordered switch. Every step can be repeated safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create a folder if missing.
    MakeDir(RelPath),
    /// Keep the current file at PATH under `previous/tree/` (if not kept yet).
    Save(RelPath),
    /// Move the current file at PATH to `previous/tree/PATH` (if not kept
    /// yet): keeping a deleted file where a copy would cost a transfer.
    Keep(RelPath),
    /// [`Step::Keep`] of `to`, then [`Step::Put`]: a replaced file kept by
    /// moving it aside just before the new one takes its name.
    Swap {
        /// Path inside the state folder (staged file).
        from: String,
        /// Destination in the tree.
        to: RelPath,
    },
    /// Rename a state-folder file (staged or kept) to PATH, if it is still there.
    Put {
        /// Path inside the state folder.
        from: String,
        /// Destination in the tree.
        to: RelPath,
    },
    /// Rename the kept copy `previous/tree/PATH` back to PATH (rollback), if
    /// it is still there.
    Restore(RelPath),
    /// Delete a file if present.
    Delete(RelPath),
    /// Delete an empty folder if present.
    RemoveDir(RelPath),
    /// Every step before this one completes before any step after it
    /// starts; steps between two barriers may run in parallel when none of
    /// them creates or removes a folder.
    Barrier,
}

/// The content of `.ferry/journal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// Snapshot the switch leads to.
    pub snapshot: Digest,
    /// Import or rollback.
    pub kind: JournalKind,
    /// Steps in the order they must run.
    pub steps: Vec<Step>,
}

impl Journal {
    /// Encodes the journal, ending with the `end` line that proves it is whole.
    pub fn encode(&self) -> Vec<u8> {
        let kind = match self.kind {
            JournalKind::Import => "import",
            JournalKind::Rollback => "rollback",
        };
        let mut text = format!("{JOURNAL_MAGIC}\nsnapshot: {}\nkind: {kind}\n", self.snapshot);
        for step in &self.steps {
            let line = match step {
                Step::MakeDir(path) => format!("mkdir {path}"),
                Step::Save(path) => format!("save {path}"),
                Step::Put { from, to } => format!("put {from} {to}"),
                Step::Keep(path) => format!("keep {path}"),
                Step::Swap { from, to } => format!("swap {from} {to}"),
                Step::Restore(path) => format!("restore {path}"),
                Step::Delete(path) => format!("delete {path}"),
                Step::RemoveDir(path) => format!("rmdir {path}"),
                Step::Barrier => "barrier".to_owned(),
            };
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str("end\n");
        text.into_bytes()
    }

    /// Decodes a journal; `Ok(None)` when it lacks its `end` line (it was
    /// never completely written, so no step of it can have run).
    pub fn decode(bytes: &[u8], origin: &Utf8Path) -> Result<Option<Self>> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::format(origin, "not UTF-8"))?;
        if !text.ends_with("\nend\n") {
            return Ok(None);
        }
        let mut lines = text.lines();
        let v2 = match lines.next() {
            Some(JOURNAL_MAGIC) => true,
            Some(JOURNAL_MAGIC_V1) => false,
            _ => {
                return Err(Error::format(
                    origin,
                    format!("line 1: expected `{JOURNAL_MAGIC}` (or `{JOURNAL_MAGIC_V1}`)"),
                ));
            }
        };
        let snapshot = lines
            .next()
            .and_then(|l| l.strip_prefix("snapshot: "))
            .and_then(Digest::from_hex)
            .ok_or_else(|| Error::format(origin, "line 2: expected `snapshot: <sha256>`"))?;
        let kind = match lines.next() {
            Some("kind: import") => JournalKind::Import,
            Some("kind: rollback") => JournalKind::Rollback,
            _ => return Err(Error::format(origin, "line 3: expected `kind: import` or `kind: rollback`")),
        };
        let mut steps = Vec::new();
        for (index, line) in lines.enumerate() {
            let number = index + 4;
            let path =
                |text: &str| RelPath::new(text).map_err(|e| Error::format(origin, format!("line {number}: {e}")));
            let step = if line == "end" {
                if lines_left_after_end(text, number) {
                    return Err(Error::format(origin, format!("line {number}: lines after `end`")));
                }
                break;
            } else if let Some(rest) = line.strip_prefix("mkdir ") {
                Step::MakeDir(path(rest)?)
            } else if let Some(rest) = line.strip_prefix("save ") {
                Step::Save(path(rest)?)
            } else if let Some(rest) = line.strip_prefix("put ") {
                let (from, to) = staged_and_path(rest, number, "put", origin)?;
                Step::Put { from, to: path(to)? }
            } else if let Some(rest) = line.strip_prefix("swap ").filter(|_| v2) {
                let (from, to) = staged_and_path(rest, number, "swap", origin)?;
                Step::Swap { from, to: path(to)? }
            } else if let Some(rest) = line.strip_prefix("keep ").filter(|_| v2) {
                Step::Keep(path(rest)?)
            } else if let Some(rest) = line.strip_prefix("restore ") {
                Step::Restore(path(rest)?)
            } else if let Some(rest) = line.strip_prefix("delete ") {
                Step::Delete(path(rest)?)
            } else if line == "barrier" {
                Step::Barrier
            } else if let Some(rest) = line.strip_prefix("rmdir ") {
                Step::RemoveDir(path(rest)?)
            } else {
                return Err(Error::format(origin, format!("line {number}: unknown step")));
            };
            steps.push(step);
        }
        Ok(Some(Journal { snapshot, kind, steps }))
    }
}

/// Splits the rest of a `put` or `swap` line into its staged name (checked)
/// and the destination text.
fn staged_and_path<'a>(rest: &'a str, number: usize, verb: &str, origin: &Utf8Path) -> Result<(String, &'a str)> {
    let (from, to) = rest
        .split_once(' ')
        .ok_or_else(|| Error::format(origin, format!("line {number}: expected `{verb} FROM TO`")))?;
    // Staged names never contain spaces; the destination may.
    if from.split('/').any(|c| c.is_empty() || c == "..") || !from.starts_with("staging/") {
        return Err(Error::format(origin, format!("line {number}: bad state path `{from}`")));
    }
    Ok((from.to_owned(), to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip() {
        let state = InstalledState {
            repository: RepositoryId::new("av").unwrap(),
            sequence: 7,
            snapshot: Digest([3; 32]),
            created: clock::parse("2026-11-24T13:00:00Z").unwrap(),
            expires: None,
            installed: clock::parse("2026-11-24T14:00:00Z").unwrap(),
            switch: SwitchKind::Ordered,
            previous: Some(Digest([4; 32])),
            rolled_back_from: Some(9),
        };
        assert_eq!(InstalledState::decode(&state.encode(), Utf8Path::new("s")).unwrap(), state);
    }

    #[test]
    fn journal_round_trip_and_unfinished() {
        let journal = Journal {
            snapshot: Digest([1; 32]),
            kind: JournalKind::Import,
            steps: vec![
                Step::MakeDir(RelPath::new("a").unwrap()),
                Step::Save(RelPath::new("a/b c").unwrap()),
                Step::Put { from: "staging/1".into(), to: RelPath::new("a/b c").unwrap() },
                Step::Restore(RelPath::new("d e/f g").unwrap()),
                Step::Keep(RelPath::new("k l").unwrap()),
                Step::Swap { from: "staging/000002".into(), to: RelPath::new("m n/o").unwrap() },
                Step::Delete(RelPath::new("x").unwrap()),
                Step::RemoveDir(RelPath::new("y").unwrap()),
                Step::Barrier,
            ],
        };
        let bytes = journal.encode();
        assert_eq!(Journal::decode(&bytes, Utf8Path::new("j")).unwrap(), Some(journal));
        assert_eq!(Journal::decode(&bytes[..bytes.len() - 4], Utf8Path::new("j")).unwrap(), None);
    }

    #[test]
    fn v1_journals_are_read_without_keep_and_swap() {
        let v1 = b"ferry journal v1\nsnapshot: 0101010101010101010101010101010101010101010101010101010101010101\nkind: import\nsave a\nput staging/000000 a\nend\n";
        let journal = Journal::decode(v1, Utf8Path::new("j")).unwrap().unwrap();
        assert_eq!(journal.steps.len(), 2);
        for step in ["keep a", "swap staging/000000 a"] {
            let text = String::from_utf8_lossy(v1).replace("save a", step);
            let error = Journal::decode(text.as_bytes(), Utf8Path::new("j")).unwrap_err().to_string();
            assert!(error.contains("unknown step"), "{step}: {error}");
        }
    }
}
