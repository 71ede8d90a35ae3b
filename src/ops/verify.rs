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
    /// The trusted keys whose signatures verified, comma-separated.
    pub signed_by: String,
    /// Number of files.
    pub files: usize,
    /// Payload bytes.
    pub bytes: u64,
    /// Creation time.
    pub created: String,
    /// Expiry time or `never`.
    pub expires: String,
    /// For a delta, the snapshot ids of its bases (formats/delta-v1.md);
    /// empty for a full snapshot.
    pub bases: Vec<String>,
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
            signed_by: snapshot.signed_by(),
            files: manifest.files().count(),
            bytes: manifest.payload_bytes(),
            created: crate::clock::format(manifest.created),
            expires: manifest.expires.map_or("never".into(), crate::clock::format),
            bases: snapshot.document().bases().iter().map(|id| id.to_hex()).collect(),
        }
    }
}

/// What verify found.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Every snapshot that verified: signature, expiry, every byte.
    pub snapshots: Vec<SnapshotSummary>,
    /// Every snapshot that did not, with why.
    pub problems: Vec<SnapshotProblem>,
    /// The problem that fails the drive: one on a snapshot `import` would
    /// take, or any with `all`. `None`: the drive is good to import.
    #[serde(serialize_with = "error_message")]
    pub failure: Option<Error>,
}

fn error_message<S: serde::Serializer>(error: &Option<Error>, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    match error {
        Some(error) => serializer.serialize_some(&error.to_string()),
        None => serializer.serialize_none(),
    }
}

/// What is wrong with one snapshot on the media.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotProblem {
    /// The snapshot folder.
    pub dir: Utf8PathBuf,
    /// The verdict.
    pub status: Verdict,
    /// Why, in one line (or a list of damaged files).
    pub problem: String,
}

/// The verdict on one snapshot that did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Signed by a trusted key, but past its expiry.
    Expired,
    /// An unfinished export: no signature yet.
    Incomplete,
    /// Payload files or volumes differ from the signed manifest.
    Damaged,
    /// Refused for another reason: no trusted signature, a bad manifest.
    Refused,
}

impl SnapshotProblem {
    fn new(dir: &SnapshotDir, error: &Error) -> Self {
        SnapshotProblem { dir: dir.root().to_owned(), status: Verdict::of(error), problem: error.to_string() }
    }
}

impl Verdict {
    fn of(error: &Error) -> Self {
        match error {
            Error::Expired { .. } => Verdict::Expired,
            Error::MissingSignature(_) | Error::MissingManifest(_) => Verdict::Incomplete,
            Error::Damaged { .. } | Error::Mismatch { .. } => Verdict::Damaged,
            _ => Verdict::Refused,
        }
    }

    /// The word shown at the start of a report line.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Expired => "EXPIRED",
            Verdict::Incomplete => "INCOMPLETE",
            Verdict::Damaged => "DAMAGED",
            Verdict::Refused => "REFUSED",
        }
    }
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

/// [`verify`] against the trust store in `store_dir` as the key rotations
/// on the drives would leave it (formats/rotation-v1.md §6), without
/// changing the store: what `import` would accept. Returns the rotations
/// it took into account.
pub fn verify_with_store(
    drives: &[Utf8PathBuf],
    store_dir: &camino::Utf8Path,
    now: Timestamp,
    all: bool,
    progress: &dyn Progress,
) -> Result<(VerifyReport, Vec<crate::trust::rotation::AppliedRotation>)> {
    let (store, rotations) = crate::trust::rotation::preview_from_media(store_dir, drives)?;
    Ok((verify(drives, &store.policy()?, now, all, progress)?, rotations))
}

/// Verifies every snapshot at or below the drives given (one snapshot may
/// span several): signature by a trusted key, not expired, and every
/// payload byte. Each gets a verdict. The report's `failure` follows what
/// `import` would do: it takes the newest snapshot of a repository whose
/// signature verifies, so that one must be good; older, unfinished or
/// untrusted ones are reported but fail the drive only with `all` (or
/// when no snapshot at all is signed by a trusted key).
pub fn verify(
    drives: &[Utf8PathBuf],
    trust: &TrustStore,
    now: Timestamp,
    all: bool,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let mut report = VerifyReport { snapshots: Vec::new(), problems: Vec::new(), failure: None };
    // Snapshots whose signature verified, as (repository, sequence, error):
    // the ones import chooses among (it skips the others).
    let mut signed = Vec::new();
    let mut unsigned = Vec::new();
    for dir in media::locate_all(drives)? {
        progress.phase("checking the signed manifest", 0);
        let snapshot = match dir.open(trust) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                report.problems.push(SnapshotProblem::new(&dir, &error));
                unsigned.push(error);
                continue;
            }
        };
        let manifest = snapshot.manifest();
        let name = (manifest.repository.to_string(), manifest.sequence);
        let checked = check_expiry(&dir, &snapshot, now).and_then(|()| {
            progress.phase("indexing the media", 0);
            dir.check_payload(&snapshot, progress, false)
        });
        match &checked {
            Ok(()) => report.snapshots.push(SnapshotSummary::new(&dir, &snapshot)),
            Err(error) => report.problems.push(SnapshotProblem::new(&dir, error)),
        }
        signed.push((name, checked.err()));
    }
    report.failure = if all {
        signed.into_iter().find_map(|(_, error)| error).or(unsigned.into_iter().next())
    } else if signed.is_empty() {
        unsigned.into_iter().next()
    } else {
        newest_of_each_repository(signed)
    };
    Ok(report)
}

/// The first failure among the snapshots import would take: the newest
/// signed one of each repository.
fn newest_of_each_repository(signed: Vec<((String, u64), Option<Error>)>) -> Option<Error> {
    let mut newest: std::collections::BTreeMap<String, (u64, Option<Error>)> = Default::default();
    for ((repository, sequence), error) in signed {
        if newest.get(&repository).is_none_or(|(best, _)| *best < sequence) {
            newest.insert(repository, (sequence, error));
        }
    }
    newest.into_values().find_map(|(_, error)| error)
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
    progress.phase("reading the installed manifest", 0);
    let Some((state, installed)) = crate::install::installed(target)? else {
        return Err(Error::NotInstalled(target.location().into()));
    };
    // With trust, the files are compared against the manifest whose
    // signature was just checked: the same bytes the state marker names.
    let verified = trust.map(|trust| installed.verify(target, trust)).transpose()?;
    let manifest = verified.as_ref().map_or(installed.manifest(), |verified| verified.manifest());
    progress.phase("listing the target", 0);
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
