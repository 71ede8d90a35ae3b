//! The manifest of the snapshot installed at a target, read back from the
//! target's state folder. A target is untrusted storage, so its manifest
//! copy is believed only through one of two doors: [`InstalledManifest`],
//! made only by matching the bytes' SHA-256 against the state marker's
//! snapshot id (what status and rollback, which take no trust, use), or
//! [`InstalledManifest::verify`], which re-checks the copied signature file
//! against the trust given (what `verify` of a target uses).
//!
//! The bytes are not kept once decoded: at a million files they are
//! ~100 MB, held through a whole import for nothing (issue 14). The one
//! caller that needs them again, [`InstalledManifest::verify`], reads them
//! again from the target.

use super::trust::TrustStore;
use super::verify::{Signed, VerifiedSnapshot};
use crate::backend::Backend;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::manifest_v3::SnapshotManifest;
use camino::{Utf8Path, Utf8PathBuf};

/// The manifest the state marker names: bytes whose SHA-256 is the
/// installed snapshot id, decoded, with the signature file kept beside it.
#[derive(Debug, Clone)]
pub struct InstalledManifest {
    snapshot: SnapshotManifest,
    /// Its name in the target's state folder, to read it again.
    name: String,
    origin: Utf8PathBuf,
    signature: Option<(Vec<u8>, Utf8PathBuf)>,
    id: Digest,
}

impl InstalledManifest {
    /// Ties `bytes` read from the state folder's file `name` (at `origin`)
    /// to the state marker's snapshot id `marker`, then decodes them.
    /// `signature` is the copy of the signature file beside them, if there
    /// is one.
    pub(crate) fn open(
        marker: Digest,
        bytes: &[u8],
        (name, origin): (&str, &Utf8Path),
        signature: Option<(Vec<u8>, Utf8PathBuf)>,
    ) -> Result<Self> {
        check_id(marker, bytes, origin)?;
        Self::open_matched(marker, bytes, (name, origin), signature)
    }

    /// [`InstalledManifest::open`] of bytes whose SHA-256 the caller has
    /// just found equal to `marker` (so that they are not hashed twice).
    pub(crate) fn open_matched(
        marker: Digest,
        bytes: &[u8],
        (name, origin): (&str, &Utf8Path),
        signature: Option<(Vec<u8>, Utf8PathBuf)>,
    ) -> Result<Self> {
        let snapshot = SnapshotManifest::decode(bytes, origin)?;
        Ok(InstalledManifest { snapshot, name: name.to_owned(), origin: origin.to_owned(), signature, id: marker })
    }

    /// The decoded manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.snapshot.manifest
    }

    /// The decoded manifest with its v3 sections (a delta's bases).
    pub fn snapshot(&self) -> &SnapshotManifest {
        &self.snapshot
    }

    /// The snapshot id: SHA-256 of the manifest bytes, equal to the marker's.
    pub fn id(&self) -> Digest {
        self.id
    }

    /// Re-verifies the installed bytes and their copied signature file
    /// against `trust`: the bytes are read again from `target` (the one this
    /// manifest was opened from) and must still be the snapshot's; the
    /// manifest returned is the one the signature covers.
    pub fn verify(&self, target: &dyn Backend, trust: &TrustStore) -> Result<VerifiedSnapshot> {
        let Some((signature, signature_origin)) = &self.signature else {
            let missing = self.origin.with_file_name(crate::media::SIGNATURE_FILE);
            return Err(Error::format(missing, "missing"));
        };
        let bytes = target.read_state(&self.name)?.ok_or_else(|| Error::format(&self.origin, "missing"))?;
        check_id(self.id, &bytes, &self.origin)?;
        Signed::<SnapshotManifest>::new(bytes, &self.origin, signature.clone(), signature_origin).verify(trust)
    }
}

/// Refuses `bytes` read from `origin` unless their SHA-256 is `marker`.
fn check_id(marker: Digest, bytes: &[u8], origin: &Utf8Path) -> Result<()> {
    let id = Digest::of(bytes);
    if id != marker {
        return Err(Error::format(
            origin,
            format!("SHA-256 {} does not match the snapshot id {} in the state marker", id.short(), marker.short()),
        ));
    }
    Ok(())
}
