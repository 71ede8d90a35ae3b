//! The ledger's index file: `formats/ledger-v1.md` §3.

use crate::clock;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::RepositoryId;
use camino::Utf8Path;
use jiff::Timestamp;

/// First line of the index file.
pub const INDEX_MAGIC: &str = "ferry ledger v1";
/// Largest index file read (formats/ledger-v1.md §3).
pub const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;

/// One line of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The export's sequence.
    pub sequence: u64,
    /// The export's creation time.
    pub created: Timestamp,
    /// The snapshot id signed; `None` while the export is only reserved
    /// (running, failed or killed: §3 I2).
    pub snapshot: Option<Digest>,
}

/// Encodes the index of `repository` (§3).
pub fn encode(repository: &RepositoryId, records: &[Record]) -> Vec<u8> {
    let mut out = format!("{INDEX_MAGIC}\nrepository: {repository}\n");
    for record in records {
        let created = clock::format(record.created);
        match record.snapshot {
            None => out.push_str(&format!("reserved {} {created}\n", record.sequence)),
            Some(digest) => out.push_str(&format!("exported {} {created} {digest}\n", record.sequence)),
        }
    }
    out.into_bytes()
}

/// Decodes an index read from `origin`, checking that it belongs to
/// `repository` (§3 reader rules).
pub fn decode(bytes: &[u8], origin: &Utf8Path, repository: &RepositoryId) -> Result<Vec<Record>> {
    if bytes.len() as u64 > MAX_INDEX_BYTES {
        return Err(Error::format(origin, format!("larger than the {MAX_INDEX_BYTES}-byte limit")));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Error::format(origin, "not UTF-8"))?;
    let mut reader = crate::lines::KeyValueLines::new(text, origin, INDEX_MAGIC)?;
    let named = reader.value("repository")?;
    if named != repository.as_str() {
        return Err(Error::format(
            origin,
            format!("line 2: the index is of repository `{}`, not `{repository}`", crate::rel_path::escape(named)),
        ));
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut records = Vec::new();
    for (index, line) in body.split('\n').enumerate().skip(2) {
        let record = parse_record(line).map_err(|e| Error::format(origin, format!("line {}: {e}", index + 1)))?;
        records.push(record);
    }
    Ok(records)
}

fn parse_record(line: &str) -> Result<Record, String> {
    let fields: Vec<&str> = line.split(' ').collect();
    let (kind, digest) = match fields.as_slice() {
        ["reserved", _, _] => ("reserved", None),
        ["exported", _, _, digest] => {
            ("exported", Some(Digest::from_hex(digest).ok_or_else(|| format!("`{digest}` is not a snapshot id"))?))
        }
        _ => {
            let shown = crate::rel_path::escape(&line.chars().take(60).collect::<String>());
            return Err(format!(
                "expected `reserved SEQUENCE TIME` or `exported SEQUENCE TIME DIGEST`, found `{shown}`"
            ));
        }
    };
    let sequence = parse_number(fields[1])
        .ok_or_else(|| format!("`{}` is not a sequence number in a `{kind}` record", fields[1]))?;
    let created = clock::parse(fields[2]).ok_or_else(|| format!("`{}` is not a time", fields[2]))?;
    Ok(Record { sequence, created, snapshot: digest })
}

/// Parses a C5 number (formats/README.md): decimal, no sign, no leading zero.
pub(crate) fn parse_number(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let repository = RepositoryId::new("av").unwrap();
        let records = vec![
            Record {
                sequence: 5,
                created: clock::parse("2026-12-04T12:00:00Z").unwrap(),
                snapshot: Some(Digest([1; 32])),
            },
            Record { sequence: 6, created: clock::parse("2026-12-04T12:00:00Z").unwrap(), snapshot: None },
        ];
        let bytes = encode(&repository, &records);
        let origin = Utf8Path::new("index");
        assert_eq!(decode(&bytes, origin, &repository).unwrap(), records);
        let text = String::from_utf8(bytes).unwrap();
        let cases = [
            (text.replace("ledger v1", "ledger v2"), "expected `ferry ledger v1`"),
            (text.replace("repository: av", "repository: bv"), "not `av`"),
            (text.replace("reserved 6", "reserved 06"), "not a sequence"),
            (text.replace("reserved 6", "deleted 6"), "expected `reserved"),
            (text.replace("12:00:00Z\n", "12:00:60Z\n"), "not a time"),
            (text.trim_end().to_owned(), "newline"),
        ];
        for (bad, expected) in cases {
            let error = decode(bad.as_bytes(), origin, &repository).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }
}
