//! Ed25519 keys and key ids (formats/keys-v1.md §2): the public keys a site
//! trusts, the secret key that signs, and the check that refuses weak
//! (small-order) public keys where a key is chosen to count for something.

use crate::digest::Digest;
use crate::error::{Error, Result};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::fmt;
use zeroize::Zeroizing;

/// The short id of a public key: the first 8 bytes of its SHA-256, in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// The id of `key`.
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = Digest::of(key.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest.0[..8]);
        KeyId(id)
    }

    /// Parses 16 lowercase hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut id = [0u8; 8];
        (text.len() == 16 && !text.bytes().any(|b| b.is_ascii_uppercase()))
            .then(|| hex::decode_to_slice(text, &mut id).ok())
            .flatten()
            .map(|_| KeyId(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A public key someone trusts, with where it came from.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// The ed25519 key.
    pub key: VerifyingKey,
    /// Its id.
    pub id: KeyId,
    /// The file it was read from.
    pub origin: camino::Utf8PathBuf,
}

impl PublicKey {
    /// Refuses a key of small order: strict verification can never accept a
    /// signature by it, and a point of small order is the mark of a crafted
    /// key rather than one ferry made, so it must not fill a threshold slot.
    pub fn check_not_weak(&self) -> Result<()> {
        if self.key.is_weak() {
            return Err(Error::format(
                &self.origin,
                format!("key {} is a weak key (a point of small order) and can never be trusted", self.id),
            ));
        }
        Ok(())
    }
}

/// A secret signing key, unlocked.
pub struct SecretKey {
    pub(super) key: SigningKey,
    pub(super) id: KeyId,
}

impl SecretKey {
    /// Makes a new key from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())
            .map_err(|e| Error::io("read random bytes for", "the new key", std::io::Error::other(e.to_string())))?;
        let key = SigningKey::from_bytes(&seed);
        let id = KeyId::of(&key.verifying_key());
        Ok(SecretKey { key, id })
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The public half, named after `origin` in errors.
    pub fn public(&self, origin: &str) -> PublicKey {
        PublicKey { key: self.key.verifying_key(), id: self.id, origin: origin.into() }
    }

    /// A trust store holding only this key's public half (read-back after
    /// export checks the media against the key that signed it).
    pub fn own_trust(&self) -> super::TrustStore {
        super::TrustStore::from_keys(vec![self.public("the signing key")])
    }

    /// Signs `domain` followed by `bytes`: for files other than manifests
    /// (receipts), each kind with its own domain so that no signature can
    /// stand for another kind of file.
    pub fn sign_domain(&self, domain: &[u8], bytes: &[u8]) -> [u8; 64] {
        self.sign_parts(domain, bytes).to_bytes()
    }

    /// The ordinary Ed25519 signature (RFC 8032) of `domain` followed by
    /// `bytes`, fed to the hash in two parts: the same signature as signing
    /// the two joined, without a copy of a manifest that may be 100 MB.
    fn sign_parts(&self, domain: &[u8], bytes: &[u8]) -> ed25519_dalek::Signature {
        use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign_byupdate};
        use sha2::Digest as _;
        let expanded = ExpandedSecretKey::from(self.key.as_bytes());
        let feed = |hasher: &mut sha2::Sha512| {
            hasher.update(domain);
            hasher.update(bytes);
            Ok(())
        };
        match raw_sign_byupdate::<sha2::Sha512, _>(&expanded, feed, &self.key.verifying_key()) {
            Ok(signature) => signature,
            // `feed` never fails, so neither does signing; should that
            // change, the copying signer still gives the same signature.
            Err(_) => self.key.sign(&super::signed_message(domain, bytes)),
        }
    }

    /// Signs exact manifest bytes and returns a signature file with this
    /// one signature (formats/signature-v1.md §4).
    pub fn sign_manifest(&self, manifest_bytes: &[u8]) -> Vec<u8> {
        super::SignatureFile { lines: vec![self.signature_line(manifest_bytes)] }.encode()
    }

    /// This key's signature over exact manifest bytes, as one line of a
    /// signature file.
    pub fn signature_line(&self, manifest_bytes: &[u8]) -> super::SignatureLine {
        self.signature_line_for::<crate::manifest_v3::SnapshotManifest>(manifest_bytes)
    }

    /// This key's signature over the exact bytes of a document of kind `T`,
    /// under that kind's domain prefix.
    pub fn signature_line_for<T: super::Document>(&self, bytes: &[u8]) -> super::SignatureLine {
        let signature = self.sign_parts(<T as super::verify::sealed::Decode>::DOMAIN, bytes);
        super::SignatureLine { id: self.id, signature }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_in_parts_gives_the_signature_of_the_joined_message() {
        let key = SecretKey::generate().unwrap();
        for (domain, bytes) in
            [(&b"ferry-manifest-v1\n"[..], &b"entries: 0\n"[..]), (b"", b""), (b"d", &[7u8; 70_000][..])]
        {
            let joined = super::super::signed_message(domain, bytes);
            let signature = key.sign_parts(domain, bytes);
            assert_eq!(signature, key.key.sign(&joined));
            assert!(key.key.verifying_key().verify_strict(&joined, &signature).is_ok());
        }
    }
}
