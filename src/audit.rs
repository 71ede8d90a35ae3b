//! The hash-chained audit journal of a target (`formats/audit-journal-v1.md`):
//! one line per thing that happened, each naming the SHA-256 of the line
//! before it, so that an edited, deleted, reordered or truncated entry is
//! found and the first broken link located. The install engine appends to
//! it under the target lock (`crate::install::history`); `ferry log` reads
//! it (`crate::ops::log`).

use crate::clock;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::RepositoryId;
use crate::signing::KeyId;
use camino::Utf8Path;
use jiff::Timestamp;

/// First line of the journal (§2).
pub const MAGIC: &str = "ferry audit-journal v1";
/// Largest journal a reader accepts (§2).
pub const MAX_AUDIT_BYTES: u64 = 64 * 1024 * 1024;
/// Longest operator or reason text, decoded (§2).
pub const MAX_TEXT_BYTES: usize = 1024;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A snapshot was installed.
    Import,
    /// The previous snapshot was switched back in.
    Rollback,
    /// A snapshot was pushed to this distribution point.
    Publish,
    /// A safety check was overridden on purpose (with a reason).
    Override,
    /// The trust store was changed by a rotation statement.
    Rotation,
    /// An interrupted switch was finished or undone.
    Recover,
    /// Something was refused; nothing was installed.
    Refusal,
    /// Damaged files of the installed snapshot were restored (`--repair`).
    Repair,
    /// The plain history log kept before the journal existed was found and
    /// is bound into the chain by its SHA-256 (§7).
    History,
}

const ACTIONS: [(Action, &str); 9] = [
    (Action::Import, "import"),
    (Action::Rollback, "rollback"),
    (Action::Publish, "publish"),
    (Action::Override, "override"),
    (Action::Rotation, "rotation"),
    (Action::Recover, "recover"),
    (Action::Refusal, "refusal"),
    (Action::Repair, "repair"),
    (Action::History, "history"),
];

impl Action {
    /// The action's name in the journal.
    pub fn as_str(self) -> &'static str {
        ACTIONS.iter().find(|(action, _)| *action == self).map_or("?", |(_, name)| name)
    }
}

/// The name of the optional field counting files removed as declined (§6a).
const DECLINED_FIELD: &str = "declined=";

/// One journal entry's content (everything but its number and link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When it happened.
    pub time: Timestamp,
    /// What happened.
    pub action: Action,
    /// The repository concerned.
    pub repository: Option<RepositoryId>,
    /// The sequence concerned.
    pub sequence: Option<u64>,
    /// SHA-256 of the manifest concerned.
    pub snapshot: Option<Digest>,
    /// The keys whose signatures counted, in the verifier's order.
    pub signers: Vec<KeyId>,
    /// Who ran the command.
    pub operator: Option<String>,
    /// The reason given (`--reason`), or why something was refused.
    pub reason: Option<String>,
    /// Files the switch removed as declined (§6a); `None` when none.
    pub declined: Option<u64>,
}

impl Record {
    /// A record of `action` at `time` with every other field absent.
    pub fn new(time: Timestamp, action: Action) -> Self {
        Record {
            time,
            action,
            repository: None,
            sequence: None,
            snapshot: None,
            signers: Vec::new(),
            operator: None,
            reason: None,
            declined: None,
        }
    }

    /// Fills repository, sequence, manifest digest and signers from a
    /// verified snapshot.
    pub fn about(self, snapshot: &crate::signing::VerifiedSnapshot) -> Self {
        let manifest = snapshot.manifest();
        Record {
            repository: Some(manifest.repository.clone()),
            sequence: Some(manifest.sequence),
            snapshot: Some(snapshot.id()),
            signers: snapshot.signers().to_vec(),
            ..self
        }
    }

    /// Sets the operator and reason, each cut to [`MAX_TEXT_BYTES`] and
    /// dropped when empty, so that any text given can be recorded.
    pub fn by(self, operator: Option<&str>, reason: Option<&str>) -> Self {
        Record { operator: operator.and_then(fit_text), reason: reason.and_then(fit_text), ..self }
    }

    /// Records that the switch removed `count` files as declined (§6a);
    /// nothing when `count` is 0.
    pub fn removed_declined(self, count: usize) -> Self {
        Record { declined: (count > 0).then_some(count as u64), ..self }
    }
}

/// `text` cut at a character boundary to at most [`MAX_TEXT_BYTES`] bytes,
/// or `None` when empty.
pub fn fit_text(text: &str) -> Option<String> {
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (end > 0).then(|| text[..end].to_owned())
}

/// A journal entry as read: its number, its link and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1 for the first entry, then one more each.
    pub number: u64,
    /// SHA-256 of the line before it (§3).
    pub prev: Digest,
    /// What the entry records.
    pub record: Record,
}

/// Where a journal ends: its number of entries and the hash of its last
/// line (of the first line when empty). Kept outside the journal, it
/// reveals entries cut from the end (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Number of entries.
    pub entries: u64,
    /// SHA-256 of the newest entry's line.
    pub hash: Digest,
}

/// A journal whose chain has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    entries: Vec<Entry>,
    head: Head,
}

impl Default for Journal {
    fn default() -> Self {
        Journal { entries: Vec::new(), head: Head { entries: 0, hash: Digest::of(format!("{MAGIC}\n").as_bytes()) } }
    }
}

impl Journal {
    /// Reads a journal, checking every link (§4); the error names the line
    /// and entry of the first broken one. `None` (no file yet) is empty.
    pub fn decode(bytes: Option<&[u8]>, origin: &Utf8Path) -> Result<Self> {
        match Journal::decode_prefix(bytes, origin) {
            (journal, None) => Ok(journal),
            (_, Some(error)) => Err(error),
        }
    }

    /// Reads as much of a journal as chains correctly: the intact entries
    /// before the first problem, and that problem (§4), if any.
    pub fn decode_prefix(bytes: Option<&[u8]>, origin: &Utf8Path) -> (Self, Option<Error>) {
        let mut journal = Journal::default();
        let Some(bytes) = bytes else { return (journal, None) };
        if bytes.len() as u64 > MAX_AUDIT_BYTES {
            return (journal, Some(Error::format(origin, format!("larger than the {MAX_AUDIT_BYTES}-byte limit"))));
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return (journal, Some(Error::format(origin, "not UTF-8")));
        };
        let mut lines = text.split_inclusive('\n').enumerate();
        if lines.next().map(|(_, line)| line) != Some(&format!("{MAGIC}\n")) {
            let problem = format!("line 1: expected `{MAGIC}` (wrong kind of file or unsupported version)");
            return (journal, Some(Error::format(origin, problem)));
        }
        for (index, line) in lines {
            if let Err(problem) = journal.push_line(line) {
                return (journal, Some(Error::format(origin, format!("line {}: {problem}", index + 1))));
            }
        }
        (journal, None)
    }

    /// Checks one line against the chain so far (§4 J2 to J5) and adds it.
    fn push_line(&mut self, line: &str) -> Result<(), String> {
        let Some(body) = line.strip_suffix('\n') else {
            return Err("truncated entry (no newline at the end)".into());
        };
        let entry = decode_entry(body)?;
        let expected = self.head.entries + 1;
        if entry.number != expected {
            return Err(format!(
                "entry {} where {expected} was expected (an entry was deleted, or entries reordered)",
                entry.number
            ));
        }
        if entry.prev != self.head.hash {
            return Err(format!(
                "entry {} does not chain to entry {} (that entry was edited, or entries were removed or reordered)",
                entry.number, self.head.entries
            ));
        }
        self.head = Head { entries: entry.number, hash: Digest::of(line.as_bytes()) };
        self.entries.push(entry);
        Ok(())
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Where the journal ends.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Refuses a journal that does not end where the anchor says (§5).
    pub fn check_anchor(&self, anchor: Head, origin: &Utf8Path) -> Result<()> {
        if self.head == anchor {
            return Ok(());
        }
        let problem = if self.head.entries < anchor.entries {
            format!(
                "ends at entry {} but {} were recorded: entries were removed from the end",
                self.head.entries, anchor.entries
            )
        } else if self.head.entries == anchor.entries {
            format!("entry {} is not the one recorded: the newest entry was changed", self.head.entries)
        } else {
            format!("has {} entries but only {} were recorded", self.head.entries, anchor.entries)
        };
        Err(Error::format(origin, problem))
    }

    /// Adds `record` after the newest entry and returns the exact line to
    /// append (the whole file is the magic line plus every line returned).
    pub fn append(&mut self, record: Record) -> Result<String> {
        for text in [&record.operator, &record.reason].into_iter().flatten() {
            if text.is_empty() || text.len() > MAX_TEXT_BYTES {
                return Err(Error::InvalidArgument(format!("a journal text must be 1 to {MAX_TEXT_BYTES} bytes")));
            }
        }
        let entry = Entry { number: self.head.entries + 1, prev: self.head.hash, record };
        let line = encode_entry(&entry);
        self.head = Head { entries: entry.number, hash: Digest::of(line.as_bytes()) };
        self.entries.push(entry);
        Ok(line)
    }

    /// The whole file.
    pub fn encode(&self) -> String {
        let mut text = format!("{MAGIC}\n");
        for entry in &self.entries {
            text.push_str(&encode_entry(entry));
        }
        text
    }
}

fn encode_entry(entry: &Entry) -> String {
    let record = &entry.record;
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    let signers = record.signers.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",");
    let declined = record.declined.map_or(String::new(), |count| format!(" {DECLINED_FIELD}{count}"));
    format!(
        "{} {} {} {} {} {} {} {} {} {}{declined}\n",
        entry.number,
        entry.prev,
        clock::format(record.time),
        record.action.as_str(),
        or_dash(record.repository.as_ref().map(|id| id.to_string())),
        or_dash(record.sequence.map(|n| n.to_string())),
        or_dash(record.snapshot.map(|digest| digest.to_hex())),
        if signers.is_empty() { "-".into() } else { signers },
        or_dash(record.operator.as_deref().map(escape)),
        or_dash(record.reason.as_deref().map(escape)),
    )
}

fn decode_entry(line: &str) -> Result<Entry, String> {
    let mut fields: Vec<&str> = line.split(' ').collect();
    let declined = match fields.len() {
        11 => Some(declined_count(fields.pop().unwrap_or_default())?),
        _ => None,
    };
    let [number, prev, time, action, repository, sequence, snapshot, signers, operator, reason] = fields[..] else {
        return Err(format!(
            "expected 10 fields separated by single spaces (11 with `declined=N`), found {}",
            fields.len()
        ));
    };
    let number = decimal(number).ok_or_else(|| format!("`{number}` is not an entry number"))?;
    let prev = Digest::from_hex(prev).ok_or_else(|| format!("`{prev}` is not a SHA-256 in lowercase hex"))?;
    let time = clock::parse(time).ok_or_else(|| format!("`{time}` is not a time like 2026-11-24T13:00:00Z"))?;
    let action = ACTIONS
        .iter()
        .find(|(_, name)| *name == action)
        .map(|(action, _)| *action)
        .ok_or_else(|| format!("`{action}` is not an action"))?;
    let repository = optional(repository).map(RepositoryId::new).transpose()?;
    let sequence = optional(sequence)
        .map(|text| decimal(text).ok_or_else(|| format!("`{text}` is not a sequence")))
        .transpose()?;
    let snapshot = optional(snapshot)
        .map(|text| Digest::from_hex(text).ok_or_else(|| format!("`{text}` is not a SHA-256 in lowercase hex")))
        .transpose()?;
    let signers = match optional(signers) {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|id| KeyId::from_hex(id).ok_or_else(|| format!("`{id}` is not a key id")))
            .collect::<Result<_, _>>()?,
    };
    let operator = optional(operator).map(unescape).transpose()?;
    let reason = optional(reason).map(unescape).transpose()?;
    let record = Record { time, action, repository, sequence, snapshot, signers, operator, reason, declined };
    Ok(Entry { number, prev, record })
}

/// The optional last field (§6a): `declined=N`, N a canonical decimal of 1 or more.
fn declined_count(field: &str) -> Result<u64, String> {
    field
        .strip_prefix(DECLINED_FIELD)
        .and_then(decimal)
        .filter(|count| *count > 0)
        .ok_or_else(|| format!("`{field}` is not `declined=N` with N 1 or more"))
}

/// `None` for the `-` of a field that does not apply.
fn optional(text: &str) -> Option<&str> {
    (text != "-").then_some(text)
}

fn decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"._~:/@+=".contains(&byte)
}

/// Percent-encodes every byte outside `unreserved` (§2); `-` alone too.
fn escape(text: &str) -> String {
    if text == "-" {
        return "%2D".into();
    }
    text.bytes().map(|b| if unreserved(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Reverses [`escape`], refusing any spelling it would not produce.
fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
                let byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("a `%` not followed by two uppercase hex digits")?;
                out.push(byte);
                i += 3;
            }
            b if unreserved(b) => {
                out.push(b);
                i += 1;
            }
            b => return Err(format!("byte 0x{b:02x} must be written as %{b:02X}")),
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| "a text that is not UTF-8".to_owned())?;
    if escape(&decoded) != text || decoded.len() > MAX_TEXT_BYTES {
        return Err(format!("`{text}` is not the canonical spelling of a text of at most {MAX_TEXT_BYTES} bytes"));
    }
    Ok(decoded)
}

/// Decodes entry lines on their own, without checking their numbers or
/// links: the prepared entries an ordered switch keeps until its commit.
pub fn decode_entries(text: &str, origin: &Utf8Path) -> Result<Vec<Entry>> {
    text.split_inclusive('\n')
        .enumerate()
        .map(|(index, line)| {
            let fail = |problem: String| Error::format(origin, format!("line {}: {problem}", index + 1));
            let body = line.strip_suffix('\n').ok_or_else(|| fail("truncated entry".into()))?;
            decode_entry(body).map_err(fail)
        })
        .collect()
}
