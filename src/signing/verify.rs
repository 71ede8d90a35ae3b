//! Strict verification (formats/signature-v1.md §5, §6): the one place
//! where signed bytes become a decoded, trusted document.
//!
//! [`Signed<T>`] is what storage gives: document bytes and a signature
//! file, neither trusted. [`Signed::verify`] checks the signatures against
//! the [`TrustStore`] *before* the document is parsed, and is the only way
//! to obtain a [`Verified<T>`]; code that installs or trusts anything takes
//! a `Verified`, so unverified bytes cannot reach it by mistake.

use super::keys::KeyId;
use super::signature_file::{SignatureFile, SignatureLine};
use super::trust::{KeySet, TrustStore, describe};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, RepositoryId};
use crate::manifest_v3::{Delta, SnapshotManifest};
use camino::{Utf8Path, Utf8PathBuf};
use std::marker::PhantomData;

/// Prefix of every signed manifest message: a signature over a manifest
/// cannot be replayed as a signature over anything else
/// (formats/signature-v1.md §3).
pub const SIGNATURE_DOMAIN: &[u8] = b"ferry manifest signature v1\0";

/// The message a signature covers: the domain prefix, then the exact bytes.
pub(crate) fn signed_message(domain: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(domain.len() + bytes.len());
    message.extend_from_slice(domain);
    message.extend_from_slice(bytes);
    message
}

/// The decoder behind [`Document`], sealed so that only the verifier can
/// call it: a document's decoder is reachable only through [`Signed::verify`].
pub(crate) mod sealed {
    use crate::error::Result;
    use crate::manifest::RepositoryId;
    use camino::Utf8Path;

    /// How a kind of signed document is domain-separated, capped and decoded.
    pub trait Decode: Sized {
        /// Prefix of the signed message for this kind of document.
        const DOMAIN: &'static [u8];
        /// Largest document a reader accepts.
        const MAX_BYTES: u64;
        /// Decodes bytes whose signatures have been verified.
        fn decode_verified(bytes: &[u8], origin: &Utf8Path) -> Result<Self>;
        /// The repository whose key set decides about this document.
        fn repository(&self) -> &RepositoryId;
    }
}

/// A kind of document ferry signs and verifies (a manifest).
pub trait Document: sealed::Decode {}

/// A snapshot's manifest, v1, v2 or v3 (formats/manifest-v3.md).
impl sealed::Decode for SnapshotManifest {
    const DOMAIN: &'static [u8] = SIGNATURE_DOMAIN;
    const MAX_BYTES: u64 = crate::manifest::MAX_MANIFEST_BYTES;
    fn decode_verified(bytes: &[u8], origin: &Utf8Path) -> Result<Self> {
        SnapshotManifest::decode(bytes, origin)
    }
    fn repository(&self) -> &RepositoryId {
        &self.manifest.repository
    }
}

impl Document for SnapshotManifest {}

/// Document bytes and their signature file as read from storage: nothing
/// about them is trusted yet.
#[derive(Debug, Clone)]
pub struct Signed<T> {
    bytes: Vec<u8>,
    origin: Utf8PathBuf,
    signature_bytes: Vec<u8>,
    signature_origin: Utf8PathBuf,
    document: PhantomData<fn() -> T>,
}

impl<T: Document> Signed<T> {
    /// Pairs document bytes read from `origin` with the signature file read
    /// from `signature_origin` (both named in errors).
    pub fn new(
        bytes: Vec<u8>,
        origin: impl Into<Utf8PathBuf>,
        signature_bytes: Vec<u8>,
        signature_origin: impl Into<Utf8PathBuf>,
    ) -> Self {
        Signed {
            bytes,
            origin: origin.into(),
            signature_bytes,
            signature_origin: signature_origin.into(),
            document: PhantomData,
        }
    }

    /// The unverified document bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Checks the signatures against `trust`, then decodes the document.
    /// The order is the one `formats/signature-v1.md` §6 prescribes:
    /// signature file syntax, a trusted signer, every trusted signature
    /// strictly, and only then the document's content, whose repository
    /// selects the key set whose threshold must be met.
    pub fn verify(self, trust: &TrustStore) -> Result<Verified<T>> {
        let path = &self.signature_origin;
        let file = SignatureFile::decode(&self.signature_bytes, path)?;
        let trusted: Vec<&SignatureLine> = file.lines.iter().filter(|line| trust.find(line.id).is_some()).collect();
        if trusted.is_empty() {
            return Err(Error::UntrustedKey {
                path: path.clone(),
                signed_by: describe(file.key_ids()),
                trusted: trust.describe(),
            });
        }
        if self.bytes.len() as u64 > T::MAX_BYTES {
            return Err(Error::format(&self.origin, "larger than the manifest size limit"));
        }
        // Every signature by a trusted key must hold: one that does not is
        // evidence of damage or forgery, never something to skip over.
        let message = signed_message(T::DOMAIN, &self.bytes);
        let mut verified_keys: Vec<KeyId> = Vec::new();
        for line in trusted {
            let key = trust.find(line.id).map(|key| &key.key);
            if key.is_none_or(|key| key.verify_strict(&message, &line.signature).is_err()) {
                return Err(Error::BadSignature { path: path.clone(), key_id: line.id.to_string() });
            }
            // One key counts once, however many lines it signed.
            if !verified_keys.contains(&line.id) {
                verified_keys.push(line.id);
            }
        }
        // The message is a copy of the bytes (100 MB at a million files):
        // gone before the decoded entries take their room (issue 14).
        drop(message);
        let document = T::decode_verified(&self.bytes, &self.origin)?;
        let signers = meet_threshold(&document, trust, &verified_keys, path)?;
        Ok(Verified {
            id: Digest::of(&self.bytes),
            document,
            bytes: self.bytes,
            signature_bytes: self.signature_bytes,
            signers,
        })
    }
}

impl Signed<SnapshotManifest> {
    /// Decodes a manifest without checking its signatures, because its
    /// bytes are authenticated another way: they hash to `id`, a snapshot
    /// id that an authenticated statement names (a receipt signed by a
    /// trusted site key says the site installed that snapshot after
    /// verifying it: formats/delta-v1.md DE1a). Bytes of another digest
    /// are refused. The result has no signers.
    pub(crate) fn authenticated_by_id(self, id: &Digest) -> Result<VerifiedSnapshot> {
        if Digest::of(&self.bytes) != *id {
            return Err(Error::format(&self.origin, format!("does not match the snapshot id {id}")));
        }
        if self.bytes.len() as u64 > <SnapshotManifest as sealed::Decode>::MAX_BYTES {
            return Err(Error::format(&self.origin, "larger than the manifest size limit"));
        }
        let document = <SnapshotManifest as sealed::Decode>::decode_verified(&self.bytes, &self.origin)?;
        Ok(Verified {
            id: *id,
            document,
            bytes: self.bytes,
            signature_bytes: self.signature_bytes,
            signers: Vec::new(),
        })
    }
}

/// The keys of the document's key set that signed, if they are enough.
fn meet_threshold<T: Document>(
    document: &T,
    trust: &TrustStore,
    verified_keys: &[KeyId],
    path: &Utf8Path,
) -> Result<Vec<KeyId>> {
    let repository = document.repository();
    let Some(set) = trust.key_set(repository) else {
        return Err(Error::UntrustedKey {
            path: path.to_owned(),
            signed_by: describe(verified_keys.iter().copied()),
            trusted: format!("none for repository `{repository}`"),
        });
    };
    let signers: Vec<KeyId> = verified_keys.iter().copied().filter(|id| set.find(*id).is_some()).collect();
    if signers.is_empty() {
        return Err(Error::UntrustedKey {
            path: path.to_owned(),
            signed_by: describe(verified_keys.iter().copied()),
            trusted: set.describe(),
        });
    }
    if signers.len() < set.threshold {
        return Err(below_threshold(set, repository, &signers, path));
    }
    Ok(signers)
}

fn below_threshold(set: &KeySet, repository: &RepositoryId, signers: &[KeyId], path: &Utf8Path) -> Error {
    Error::BelowThreshold {
        path: path.to_owned(),
        repository: repository.to_string(),
        threshold: set.threshold,
        signed_by: describe(signers.iter().copied()),
        still_needed: set.threshold - signers.len(),
        missing: describe(set.keys.iter().map(|key| key.id).filter(|id| !signers.contains(id))),
    }
}

/// A document whose bytes carry enough valid signatures by trusted keys,
/// decoded. Only [`Signed::verify`] creates one.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    document: T,
    bytes: Vec<u8>,
    signature_bytes: Vec<u8>,
    id: Digest,
    signers: Vec<KeyId>,
}

impl<T> Verified<T> {
    /// The decoded document.
    pub fn document(&self) -> &T {
        &self.document
    }
    /// The exact signed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The exact bytes of the signature file.
    pub fn signature_bytes(&self) -> &[u8] {
        &self.signature_bytes
    }
    /// SHA-256 of the signed bytes.
    pub fn id(&self) -> Digest {
        self.id
    }
    /// The distinct trusted keys whose signatures verified and counted
    /// toward the threshold, in signature-file order.
    pub fn signers(&self) -> &[KeyId] {
        &self.signers
    }
    /// The signers as `a,b` (no spaces: history records are space-separated).
    pub fn signed_by(&self) -> String {
        self.signers.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",")
    }
}

/// A snapshot whose manifest verified: see [`Verified`].
pub type VerifiedSnapshot = Verified<SnapshotManifest>;

impl Verified<SnapshotManifest> {
    /// The complete snapshot the manifest describes.
    pub fn manifest(&self) -> &Manifest {
        &self.document.manifest
    }
    /// What makes the snapshot a delta, if it is one.
    pub fn delta(&self) -> Option<&Delta> {
        self.document.delta.as_ref()
    }
    /// What the export decided (formats/policy-v1.md §6), if it recorded it.
    pub fn policy(&self) -> Option<&crate::manifest_v3::PolicySection> {
        self.document.policy.as_ref()
    }
    /// The exact signed bytes of the manifest.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Verifies a manifest and its signature file against `trust`: shorthand
/// for [`Signed::new`] then [`Signed::verify`].
pub fn verify(
    manifest_bytes: Vec<u8>,
    manifest_path: &Utf8Path,
    signature_bytes: Vec<u8>,
    signature_path: &Utf8Path,
    trust: &TrustStore,
) -> Result<VerifiedSnapshot> {
    Signed::<SnapshotManifest>::new(manifest_bytes, manifest_path, signature_bytes, signature_path).verify(trust)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::SecretKey;

    const MANIFEST: &[u8] = b"ferry manifest v1\nrepository: r\nsequence: 1\ncreated: 2026-11-24T13:00:00Z\nexpires: never\nlayout: tree\nbase: none\nentries: 0\n";

    #[test]
    fn sign_then_verify_and_tamper() {
        let key = SecretKey::generate().unwrap();
        let trust = key.own_trust();
        let signature = key.sign_manifest(MANIFEST);
        let path = Utf8Path::new("m");
        let verified = verify(MANIFEST.to_vec(), path, signature.clone(), path, &trust).unwrap();
        assert_eq!(verified.signers(), [key.id()]);
        let mut tampered = MANIFEST.to_vec();
        tampered[40] ^= 1;
        assert!(matches!(verify(tampered, path, signature, path, &trust), Err(Error::BadSignature { .. })));
        let other = SecretKey::generate().unwrap();
        assert!(matches!(
            verify(MANIFEST.to_vec(), path, other.sign_manifest(MANIFEST), path, &trust),
            Err(Error::UntrustedKey { .. })
        ));
    }

    #[test]
    fn a_v3_manifest_verifies_with_its_bases() {
        let key = SecretKey::generate().unwrap();
        let base = Digest([3; 32]).to_hex();
        let text = String::from_utf8(MANIFEST.to_vec()).unwrap();
        let v3 = text.replace("v1", "v3").replace("base: none\n", &format!("base: {base}\nvolumes: 0\n"));
        let path = Utf8Path::new("m");
        let signature = key.sign_manifest(v3.as_bytes());
        let verified = verify(v3.into_bytes(), path, signature, path, &key.own_trust()).unwrap();
        assert_eq!(verified.delta().unwrap().bases, [Digest([3; 32])]);
        assert_eq!(verified.manifest().sequence, 1);
    }

    #[test]
    fn one_key_signing_twice_counts_once() {
        let keys: Vec<SecretKey> = (0..2).map(|_| SecretKey::generate().unwrap()).collect();
        let set = KeySet { repository: None, keys: keys.iter().map(|k| k.public("k")).collect(), threshold: 2 };
        let trust = TrustStore::from_sets(vec![set]).unwrap();
        let line = keys[0].signature_line(MANIFEST);
        let twice = SignatureFile { lines: vec![line.clone(), line] }.encode();
        let path = Utf8Path::new("m");
        let error = verify(MANIFEST.to_vec(), path, twice, path, &trust).unwrap_err();
        assert!(matches!(error, Error::BelowThreshold { still_needed: 1, .. }), "{error}");
        let both = SignatureFile { lines: keys.iter().map(|k| k.signature_line(MANIFEST)).collect() }.encode();
        let verified = verify(MANIFEST.to_vec(), path, both, path, &trust).unwrap();
        assert_eq!(verified.signers().len(), 2);
    }
}
