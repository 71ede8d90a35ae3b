//! `ferry verify`: check media without changing anything anywhere.

use crate::error::{Error, Result};
use crate::media::{self, SnapshotDir};
use crate::report::Progress;
use crate::signing::{TrustStore, VerifiedSnapshot};
use camino::Utf8PathBuf;
use jiff::Timestamp;
use serde::Serialize;

/// What a verified snapshot is.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotSummary {
    /// Snapshot folder.
    pub dir: Utf8PathBuf,
    /// Repository id.
    pub repository: String,
    /// Sequence number.
    pub sequence: u64,
    /// SHA-256 of the manifest.
    pub snapshot_id: String,
    /// The trusted key whose signature verified.
    pub signed_by: String,
    /// Number of files.
    pub files: usize,
    /// Payload bytes.
    pub bytes: u64,
    /// Creation time.
    pub created: String,
    /// Expiry time or `never`.
    pub expires: String,
}

impl SnapshotSummary {
    /// Summarizes a verified snapshot found in `dir`.
    pub fn new(dir: &SnapshotDir, snapshot: &VerifiedSnapshot) -> Self {
        let manifest = snapshot.manifest();
        SnapshotSummary {
            dir: dir.root().to_owned(),
            repository: manifest.repository.to_string(),
            sequence: manifest.sequence,
            snapshot_id: snapshot.id().to_hex(),
            signed_by: snapshot.signer().to_string(),
            files: manifest.files().count(),
            bytes: manifest.payload_bytes(),
            created: crate::clock::format(manifest.created),
            expires: manifest.expires.map_or("never".into(), crate::clock::format),
        }
    }
}

/// What verify found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Every snapshot checked, all good.
    pub snapshots: Vec<SnapshotSummary>,
}

/// Refuses a snapshot whose expiry has passed.
pub fn check_expiry(dir: &SnapshotDir, snapshot: &VerifiedSnapshot, now: Timestamp) -> Result<()> {
    match snapshot.manifest().expires {
        Some(expires) if expires <= now => Err(Error::Expired {
            manifest: dir.manifest_path(),
            expires: crate::clock::format(expires),
            now: crate::clock::format(now),
        }),
        _ => Ok(()),
    }
}

/// Verifies every snapshot at or below `media`: signature by a trusted key,
/// not expired, and every payload byte. Stops at the first bad snapshot.
pub fn verify(
    media_path: &Utf8PathBuf,
    trust: &TrustStore,
    now: Timestamp,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let mut snapshots = Vec::new();
    for dir in media::locate(media_path)? {
        let snapshot = dir.open(trust)?;
        check_expiry(&dir, &snapshot, now)?;
        dir.check_payload(&snapshot, progress, false)?;
        snapshots.push(SnapshotSummary::new(&dir, &snapshot));
    }
    Ok(VerifyReport { snapshots })
}
