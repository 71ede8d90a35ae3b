//! `ferry publish`: push an installed update source (or a drive) on to
//! distribution points — FTP servers or folders — in parallel.
//!
//! The source is verified against its signed manifest, every byte, before
//! anything is sent; then each target gets exactly what `ferry import`
//! would do to it, so a second run finishes only what failed.

use crate::backend::Backend;
use crate::error::{Error, ErrorClass, Result};
use crate::media::SnapshotDir;
use crate::ops::import::{self, ImportOptions, ImportReport};
use crate::ops::verify::SnapshotSummary;
use crate::report::Progress;
use crate::signing::{TrustStore, VerifiedSnapshot};
use camino::Utf8Path;
use serde::Serialize;

/// How publishing to one distribution point ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TargetStatus {
    /// The snapshot was switched in.
    #[serde(rename = "updated")]
    Updated,
    /// The target already served the snapshot.
    #[serde(rename = "up to date")]
    UpToDate,
    /// `--dry-run`: the snapshot would be switched in.
    #[serde(rename = "would update")]
    WouldUpdate,
    /// The target refused the snapshot (older, other repository, ...).
    #[serde(rename = "refused")]
    Refused,
    /// The target could not be reached or written.
    #[serde(rename = "failed")]
    Failed,
}

impl TargetStatus {
    /// The words used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Updated => "updated",
            TargetStatus::UpToDate => "up to date",
            TargetStatus::WouldUpdate => "would update",
            TargetStatus::Refused => "refused",
            TargetStatus::Failed => "failed",
        }
    }
}

/// What happened at one distribution point.
#[derive(Debug, Clone, Serialize)]
pub struct TargetOutcome {
    /// The target.
    pub target: String,
    /// How it ended.
    pub status: TargetStatus,
    /// The error, when it did not succeed.
    pub error: Option<String>,
    /// What the import did, when it succeeded.
    pub report: Option<ImportReport>,
}

/// What publish did.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    /// The snapshot published.
    pub snapshot: SnapshotSummary,
    /// One outcome per target, in the order given.
    pub targets: Vec<TargetOutcome>,
    /// Whether this only says what publishing would do (`--dry-run`).
    pub dry_run: bool,
}

impl PublishReport {
    /// The worst outcome: `None` when every target succeeded.
    pub fn worst(&self) -> Option<ErrorClass> {
        let any = |status: TargetStatus| self.targets.iter().any(|t| t.status == status);
        if any(TargetStatus::Failed) {
            Some(ErrorClass::Failure)
        } else if any(TargetStatus::Refused) {
            Some(ErrorClass::Refused)
        } else {
            None
        }
    }
}

/// Finds the snapshot at `source`: an update source ferry installed, or a
/// drive / snapshot folder (the newest trusted one, as `import` chooses).
pub fn open_source(
    source: &Utf8Path,
    repository: Option<&str>,
    trust: &TrustStore,
) -> Result<(SnapshotDir, VerifiedSnapshot)> {
    if SnapshotDir::is_installed_source(source) {
        let dir = SnapshotDir::installed_source(source);
        let snapshot = dir.open(trust)?;
        return Ok((dir, snapshot));
    }
    import::choose_snapshot(&[source.to_owned()], repository, None, trust)
}

/// [`open_source`] and [`publish`] with the trust store in `store_dir`:
/// key rotations on the source drive are applied to the store first, and
/// journaled at every target with the publish. Returns them with the report.
pub fn publish_with_store(
    source: &Utf8Path,
    targets: &[Box<dyn Backend>],
    options: &ImportOptions,
    store_dir: &Utf8Path,
    progress: &dyn Progress,
) -> Result<(PublishReport, Vec<crate::trust::rotation::AppliedRotation>)> {
    let drives = [source.to_owned()];
    let (trust, rotations) = import::store_after_rotations(store_dir, &drives, options.dry_run, progress)?;
    let (dir, snapshot) = open_source(source, options.repository.as_deref(), &trust)?;
    let mut options = options.clone();
    let records: Vec<_> = rotations.iter().map(|applied| import::rotation_record(applied, &options)).collect();
    options.pending.extend(records);
    Ok((publish(&dir, &snapshot, targets, &options, progress)?, rotations))
}

/// Verifies the source completely, then installs it into every target at
/// once. Per-target failures are reported in the result, not as an error.
pub fn publish(
    source: &SnapshotDir,
    snapshot: &VerifiedSnapshot,
    targets: &[Box<dyn Backend>],
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<PublishReport> {
    if targets.is_empty() {
        return Err(Error::InvalidArgument("publish needs at least one TARGET".into()));
    }
    source.check_payload(snapshot, progress, false)?;
    let options = &ImportOptions { publishing: true, ..options.clone() };
    let outcomes: Vec<TargetOutcome> = std::thread::scope(|scope| {
        let running: Vec<_> = targets
            .iter()
            .map(|target| {
                scope.spawn(move || {
                    (target.location(), import::install(target.as_ref(), source, snapshot, options, progress))
                })
            })
            .collect();
        running
            .into_iter()
            .map(|handle| match handle.join() {
                Ok((target, Ok(report))) => TargetOutcome {
                    target,
                    status: match (report.switch, report.dry_run) {
                        (_, true) if report.changes_anything() => TargetStatus::WouldUpdate,
                        (import::SwitchUsed::None, _) => TargetStatus::UpToDate,
                        _ => TargetStatus::Updated,
                    },
                    error: None,
                    report: Some(report),
                },
                Ok((target, Err(error))) => TargetOutcome {
                    target,
                    status: if error.class() == ErrorClass::Refused {
                        TargetStatus::Refused
                    } else {
                        TargetStatus::Failed
                    },
                    error: Some(error.to_string()),
                    report: None,
                },
                Err(_) => TargetOutcome {
                    target: "?".into(),
                    status: TargetStatus::Failed,
                    error: Some("the worker publishing to this target panicked (a bug)".into()),
                    report: None,
                },
            })
            .collect()
    });
    Ok(PublishReport { snapshot: SnapshotSummary::new(source, snapshot), targets: outcomes, dry_run: options.dry_run })
}
