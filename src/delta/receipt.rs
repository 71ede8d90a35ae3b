//! Receipts: `formats/receipt-v1.md`. What one installed update source
//! holds, written on the isolated side, read back on the connected side.

use crate::clock;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::ledger::RepositoryLedger;
use crate::manifest::RepositoryId;
use crate::signing::{SecretKey, TrustStore};
use camino::Utf8Path;
use jiff::Timestamp;

/// First line of a receipt.
pub const RECEIPT_MAGIC: &str = "ferry receipt v1";
/// Prefix of the signed message (§2 R1).
pub const RECEIPT_DOMAIN: &[u8] = b"ferry receipt signature v1\0";
/// Largest receipt read (§1).
pub const MAX_RECEIPT_BYTES: u64 = 16 * 1024;

/// The content of a receipt (§1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The installed repository.
    pub repository: RepositoryId,
    /// The installed sequence.
    pub sequence: u64,
    /// The installed snapshot id.
    pub snapshot: Digest,
    /// The installed snapshot's creation time.
    pub created: Timestamp,
    /// When the receipt was written.
    pub written: Timestamp,
}

/// A receipt read and checked (§4 RR1 to RR4), with the site key that
/// signed it, if any.
#[derive(Debug, Clone)]
pub struct ReadReceipt {
    /// What it says.
    pub receipt: Receipt,
    /// The key id of the site key whose signature verified.
    pub signed_by: Option<String>,
}

impl Receipt {
    /// Encodes the receipt, signed with `key` if given (§1, §2).
    pub fn encode(&self, key: Option<&SecretKey>) -> Vec<u8> {
        let mut out = format!(
            "{RECEIPT_MAGIC}\nrepository: {}\nsequence: {}\nsnapshot: {}\ncreated: {}\nwritten: {}\n",
            self.repository,
            self.sequence,
            self.snapshot,
            clock::format(self.created),
            clock::format(self.written)
        );
        match key {
            None => out.push_str("signature: none\n"),
            Some(key) => {
                let signature = key.sign_domain(RECEIPT_DOMAIN, out.as_bytes());
                out.push_str(&format!("signature: {} {}\n", key.id(), hex::encode(signature)));
            }
        }
        out.into_bytes()
    }

    /// Reads and checks the receipt file `path` (§4 RR1 to RR4).
    /// `site_keys`: the isolated sites' public keys, if configured.
    pub fn read(path: &Utf8Path, site_keys: Option<&TrustStore>) -> Result<ReadReceipt> {
        let bytes = crate::fsutil::read_capped(path, MAX_RECEIPT_BYTES)?;
        Self::decode(&bytes, path, site_keys)
    }

    /// [`Receipt::read`] on bytes already read from `origin`.
    pub fn decode(bytes: &[u8], origin: &Utf8Path, site_keys: Option<&TrustStore>) -> Result<ReadReceipt> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::format(origin, "not UTF-8"))?;
        let mut lines = crate::lines::KeyValueLines::new(text, origin, RECEIPT_MAGIC)?;
        let field = |line: usize, problem: String| Error::format(origin, format!("line {line}: {problem}"));
        let repository = RepositoryId::new(lines.value("repository")?).map_err(|e| field(2, e))?;
        let sequence = lines.value("sequence")?;
        let sequence = crate::ledger::index::parse_number(sequence)
            .ok_or_else(|| field(3, format!("`{sequence}` is not a sequence number")))?;
        let snapshot = lines.value("snapshot")?;
        let snapshot = Digest::from_hex(snapshot).ok_or_else(|| field(4, "not a snapshot id".into()))?;
        let created = lines.value("created")?;
        let created = clock::parse(created).ok_or_else(|| field(5, format!("`{created}` is not a time")))?;
        let written = lines.value("written")?;
        let written = clock::parse(written).ok_or_else(|| field(6, format!("`{written}` is not a time")))?;
        let signature = lines.value("signature")?;
        lines.end()?;
        let receipt = Receipt { repository, sequence, snapshot, created, written };
        let signed_part = &text[..text.rfind("signature: ").unwrap_or(0)];
        let signed_by = check_signature(signature, signed_part.as_bytes(), origin, site_keys)?;
        Ok(ReadReceipt { receipt, signed_by })
    }

    /// Checks the receipt against the repository being exported and the
    /// ledger's record of its snapshot (§4 RR5, RR6).
    pub fn check_against(&self, origin: &Utf8Path, ledger: &RepositoryLedger, repository: &RepositoryId) -> Result<()> {
        if &self.repository != repository {
            return Err(Error::format(
                origin,
                format!("the receipt is of repository `{}`, not `{repository}`", self.repository),
            ));
        }
        let Some(record) = ledger.find(&self.snapshot) else {
            return Err(Error::InvalidArgument(format!(
                "`{origin}`: snapshot {} (sequence {}) is not in the ledger `{}`\nhint: it was exported from another host or with another --ledger; carry a full export",
                self.snapshot.short(),
                self.sequence,
                ledger.dir()
            )));
        };
        if (record.sequence, record.created) != (self.sequence, self.created) {
            return Err(Error::format(
                origin,
                format!(
                    "says snapshot {} is sequence {} of {}, but the ledger recorded it as sequence {} of {} (receipt altered?)",
                    self.snapshot.short(),
                    self.sequence,
                    clock::format(self.created),
                    record.sequence,
                    clock::format(record.created)
                ),
            ));
        }
        Ok(())
    }
}

/// §4 RR2 to RR4: returns the key id of the site key that signed.
fn check_signature(
    value: &str,
    signed: &[u8],
    origin: &Utf8Path,
    site_keys: Option<&TrustStore>,
) -> Result<Option<String>> {
    if value == "none" {
        if site_keys.is_some() {
            return Err(Error::format(origin, "the receipt is not signed, but site keys were given to check it"));
        }
        return Ok(None);
    }
    let bad = || Error::format(origin, "line 7: expected `signature: none` or `signature: KEYID SIGNATURE`");
    let (id, signature) = value.split_once(' ').ok_or_else(bad)?;
    let mut bytes = [0u8; 64];
    let lowercase = !signature.bytes().any(|b| b.is_ascii_uppercase());
    if !lowercase || signature.len() != 128 || hex::decode_to_slice(signature, &mut bytes).is_err() {
        return Err(bad());
    }
    let Some(site_keys) = site_keys else {
        return Err(Error::format(
            origin,
            format!(
                "signed by site key {id}, but no site keys were given\nhint: pass --site-trust SITE.pub (or a folder of them)"
            ),
        ));
    };
    let known = site_keys.keys();
    let Some(key) = known.iter().find(|key| key.id.to_string() == id) else {
        return Err(Error::UntrustedKey {
            path: origin.to_owned(),
            signed_by: id.to_owned(),
            trusted: known.iter().map(|k| k.id.to_string()).collect::<Vec<_>>().join(", "),
        });
    };
    let mut message = RECEIPT_DOMAIN.to_vec();
    message.extend_from_slice(signed);
    key.key
        .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&bytes))
        .map_err(|_| Error::BadSignature { path: origin.to_owned(), key_id: id.to_owned() })?;
    Ok(Some(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Receipt {
        Receipt {
            repository: RepositoryId::new("av").unwrap(),
            sequence: 12,
            snapshot: Digest([4; 32]),
            created: clock::parse("2026-12-04T12:00:00Z").unwrap(),
            written: clock::parse("2026-12-05T08:00:00Z").unwrap(),
        }
    }

    #[test]
    fn round_trip_signed_and_unsigned() {
        let origin = Utf8Path::new("receipt");
        let key = SecretKey::generate().unwrap();
        let signed = sample().encode(Some(&key));
        let read = Receipt::decode(&signed, origin, Some(&key.own_trust())).unwrap();
        assert_eq!((read.receipt, read.signed_by), (sample(), Some(key.id().to_string())));
        let unsigned = sample().encode(None);
        assert!(String::from_utf8_lossy(&unsigned).ends_with("signature: none\n"));
        assert_eq!(Receipt::decode(&unsigned, origin, None).unwrap().receipt, sample());
        let error = Receipt::decode(&unsigned, origin, Some(&key.own_trust())).unwrap_err();
        assert!(error.to_string().contains("not signed"), "{error}");
        let text = String::from_utf8(unsigned).unwrap();
        for (bad, expected) in [
            (text.replace("receipt v1", "receipt v2"), "expected `ferry receipt v1`"),
            (text.replace("sequence: 12", "sequence: x"), "not a sequence"),
            (text.replace("signature: none", "signature: 12"), "expected `signature"),
            (format!("{text}extra\n"), "unexpected extra line"),
        ] {
            let error = Receipt::decode(bad.as_bytes(), origin, None).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }
}
