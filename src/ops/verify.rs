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

/// Verifies every snapshot at or below the drives given (one snapshot may
/// span several): signature by a trusted key, not expired, and every
/// payload byte. Stops at the first bad snapshot.
pub fn verify(
    drives: &[Utf8PathBuf],
    trust: &TrustStore,
    now: Timestamp,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let mut snapshots = Vec::new();
    for dir in media::locate_all(drives)? {
        let snapshot = dir.open(trust)?;
        check_expiry(&dir, &snapshot, now)?;
        dir.check_payload(&snapshot, progress, false)?;
        snapshots.push(SnapshotSummary::new(&dir, &snapshot));
    }
    Ok(VerifyReport { snapshots })
}

/// What `verify` found at an installed update source.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledReport {
    /// The target.
    pub target: String,
    /// Repository installed.
    pub repository: String,
    /// Sequence installed.
    pub sequence: u64,
    /// Whether the installed signature was checked against trusted keys.
    pub signature_checked: bool,
    /// Whether file contents were hashed (`--deep`), not just sizes.
    pub deep: bool,
    /// Files checked.
    pub files: usize,
}

/// Compares an installed update source with its installed signed manifest:
/// every listed entry must be there with the right size (and, with `deep`,
/// the right SHA-256), and nothing unlisted may be there. Reports drift as
/// [`Error::Damaged`]. Writes nothing.
pub fn verify_installed(
    target: &dyn crate::backend::Backend,
    trust: Option<&TrustStore>,
    deep: bool,
    progress: &dyn Progress,
) -> Result<InstalledReport> {
    use crate::install::state::{MANIFEST_FILE, SIGNATURE_FILE};
    let Some((state, manifest)) = crate::install::installed(target)? else {
        return Err(Error::NotInstalled(target.location().into()));
    };
    if let Some(trust) = trust {
        let origin = |name: &str| Utf8PathBuf::from(format!("{}/{name}", target.state_location()));
        let missing = |name: &str| Error::format(origin(name), "missing");
        let manifest_bytes = target.read_state(MANIFEST_FILE)?.ok_or_else(|| missing(MANIFEST_FILE))?;
        let signature_bytes = target.read_state(SIGNATURE_FILE)?.ok_or_else(|| missing(SIGNATURE_FILE))?;
        crate::signing::verify(
            manifest_bytes,
            &origin(MANIFEST_FILE),
            signature_bytes,
            &origin(SIGNATURE_FILE),
            trust,
        )?;
    }
    let present: std::collections::HashMap<_, _> = target.list_tree()?.into_iter().collect();
    let mut problems = Vec::new();
    let listed: std::collections::HashSet<_> = manifest.entries.iter().map(|e| &e.path).collect();
    for (path, _) in present.iter().filter(|(path, _)| !listed.contains(path)) {
        problems.push(format!("extra: {path} (not in the installed manifest)"));
    }
    progress.phase(if deep { "hashing" } else { "checking" }, if deep { manifest.payload_bytes() } else { 0 });
    for entry in &manifest.entries {
        match (entry.file(), present.get(&entry.path)) {
            (_, None) => problems.push(format!("missing: {}", entry.path)),
            (None, Some(false)) => problems.push(format!("changed: {} (a file where a folder should be)", entry.path)),
            (Some(_), Some(true)) => {
                problems.push(format!("changed: {} (a folder where a file should be)", entry.path))
            }
            (None, Some(true)) => {}
            (Some(file), Some(false)) => {
                if deep {
                    let seen = target.hash_file(&entry.path, file.size)?;
                    progress.advance(file.size);
                    match seen {
                        None => problems.push(format!("missing: {}", entry.path)),
                        Some(seen) if seen.size != file.size || seen.digest != file.digest => {
                            problems.push(format!("changed: {} (content differs from the signed manifest)", entry.path))
                        }
                        Some(_) => {}
                    }
                } else {
                    match target.file_size(&entry.path)? {
                        Some(size) if size == file.size => {}
                        Some(size) => {
                            problems.push(format!("changed: {} (size {size}, expected {})", entry.path, file.size))
                        }
                        None => problems.push(format!("missing: {}", entry.path)),
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(Error::Damaged { media: target.location().into(), problems });
    }
    Ok(InstalledReport {
        target: target.location(),
        repository: state.repository.to_string(),
        sequence: state.sequence,
        signature_checked: trust.is_some(),
        deep,
        files: manifest.files().count(),
    })
}
