//! `ferry publish`: push an installed update source (or a drive) on to
//! distribution points — FTP servers or folders — in parallel.
//!
//! The source is verified against its signed manifest, every byte, before
//! anything is sent; then each target gets exactly what `ferry import`
//! would do to it, so a second run finishes only what failed.

use crate::error::{Error, ErrorClass, Result};
use crate::media::SnapshotDir;
use crate::ops::import::{self, ImportOptions, ImportReport};
use crate::ops::verify::SnapshotSummary;
use crate::report::Progress;
use crate::signing::{TrustStore, VerifiedSnapshot};
use crate::target::Target;
use camino::Utf8Path;
use serde::Serialize;

/// What happened at one distribution point.
#[derive(Debug, Clone, Serialize)]
pub struct TargetOutcome {
    /// The target.
    pub target: String,
    /// `updated`, `up to date`, `refused` or `failed`.
    pub status: String,
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
}

impl PublishReport {
    /// The worst outcome: `None` when every target succeeded.
    pub fn worst(&self) -> Option<ErrorClass> {
        let failed = |status: &str| self.targets.iter().any(|t| t.status == status);
        if failed("failed") {
            Some(ErrorClass::Failure)
        } else if failed("refused") {
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

/// Verifies the source completely, then installs it into every target at
/// once. Per-target failures are reported in the result, not as an error.
pub fn publish(
    source: &SnapshotDir,
    snapshot: &VerifiedSnapshot,
    targets: &[Box<dyn Target>],
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<PublishReport> {
    if targets.is_empty() {
        return Err(Error::InvalidArgument("publish needs at least one TARGET".into()));
    }
    source.check_payload(snapshot, progress, false)?;
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
                    status: if report.switch == "none" { "up to date" } else { "updated" }.into(),
                    error: None,
                    report: Some(report),
                },
                Ok((target, Err(error))) => TargetOutcome {
                    target,
                    status: if error.class() == ErrorClass::Refused { "refused" } else { "failed" }.into(),
                    error: Some(error.to_string()),
                    report: None,
                },
                Err(_) => TargetOutcome {
                    target: "?".into(),
                    status: "failed".into(),
                    error: Some("the worker publishing to this target panicked (a bug)".into()),
                    report: None,
                },
            })
            .collect()
    });
    Ok(PublishReport { snapshot: SnapshotSummary::new(source, snapshot), targets: outcomes })
}
