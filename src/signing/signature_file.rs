//! The `manifest.sig` file (formats/signature-v1.md §2): one or more
//! detached signatures, one per line, each naming the key that made it.
//! This module reads and writes the lines; what they prove is decided by
//! [`super::verify`].

use super::keys::KeyId;
use crate::error::{Error, Result};
use crate::lines::{KeyValueLines, hex_array};
use camino::Utf8Path;
use ed25519_dalek::Signature;

/// First line of a signature file.
const SIGNATURE_MAGIC: &str = "ferry signature v1";
/// Largest signature file a reader accepts (formats/signature-v1.md §6 S3).
pub const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;

/// One `signature: KEYID HEX` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLine {
    /// The key the line claims made the signature (unverified until checked).
    pub id: KeyId,
    /// The 64-byte signature, parsed but not yet checked for canonical form.
    pub signature: Signature,
}

impl SignatureLine {
    /// The line as written, with its LF.
    pub fn encode(&self) -> String {
        format!("signature: {} {}\n", self.id, hex::encode(self.signature.to_bytes()))
    }
}

/// A parsed signature file: its lines in file order, repeats kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFile {
    /// The signature lines.
    pub lines: Vec<SignatureLine>,
}

impl SignatureFile {
    /// Parses the file's syntax (rules S4 and S5): nothing here says a
    /// signature is valid or its key trusted.
    pub fn decode(bytes: &[u8], path: &Utf8Path) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::format(path, "not UTF-8"))?;
        let mut reader = KeyValueLines::new(text, path, SIGNATURE_MAGIC)?;
        let mut lines = Vec::new();
        while let Some((line, key, value)) = reader.next_pair()? {
            let expected = || Error::format(path, format!("line {line}: expected `signature: KEYID HEX`"));
            if key != "signature" {
                return Err(expected());
            }
            let (id_text, signature_text) = value.split_once(' ').ok_or_else(expected)?;
            let id = KeyId::from_hex(id_text)
                .ok_or_else(|| Error::format(path, format!("line {line}: `{id_text}` is not a key id")))?;
            let signature: [u8; 64] = hex_array(signature_text, path, "signature")?;
            lines.push(SignatureLine { id, signature: Signature::from_bytes(&signature) });
        }
        if lines.is_empty() {
            return Err(Error::format(path, "contains no signature"));
        }
        Ok(SignatureFile { lines })
    }

    /// Encodes the file: the magic line, then one line per signature in order.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("{SIGNATURE_MAGIC}\n");
        for line in &self.lines {
            text.push_str(&line.encode());
        }
        text.into_bytes()
    }

    /// The key ids named, in file order, repeats kept.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.lines.iter().map(|line| line.id)
    }
}
