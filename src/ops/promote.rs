//! `ferry promote`: install the snapshot verified at a test update source
//! into production update sources and distribution points
//! (formats/verdict-v1.md §5), through `ferry publish`'s machinery.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::ops::import::ImportOptions;
use crate::ops::publish::{self, PublishReport, TargetStatus};
use crate::report::Progress;
use crate::signing::TrustStore;
use crate::workflow::{self, Outcome, Promotion, Verdict};
use camino::Utf8Path;
use serde::Serialize;

/// What promote did.
#[derive(Debug, Clone, Serialize)]
pub struct PromoteReport {
    /// The test target the snapshot came from.
    pub test_target: String,
    /// The verdict that allowed it.
    pub verdict: Verdict,
    /// What happened at each target.
    #[serde(flatten)]
    pub publish: PublishReport,
}

/// Checks the verdict (R1) and every byte at the test target (R2), then
/// installs the snapshot into every target at once (R3) and records where
/// it went (R4). Per-target failures are in the report, not an error.
pub fn promote(
    test: &dyn Backend,
    test_dir: &Utf8Path,
    targets: &[Box<dyn Backend>],
    options: &ImportOptions,
    trust: &TrustStore,
    progress: &dyn Progress,
) -> Result<PromoteReport> {
    let refused = |found: String| Error::NotVerified { target: test.location(), found };
    let Some(verdict) = workflow::read_verdict(test)? else {
        return Err(refused(format!(
            "no verdict: the snapshot was not imported with --stage\nhint: import it with `ferry import MEDIA {} --stage --verify-cmd CMD`",
            test.location()
        )));
    };
    if verdict.result != Outcome::Pass {
        return Err(refused(format!(
            "the verdict is {}\nhint: verify again (`ferry import ... --stage --verify-cmd`) or record an operator's verdict with `ferry verdict {} pass --reason TEXT`",
            verdict.describe(),
            test.location()
        )));
    }
    // A folder test target is read in place; any other (FTP) through a
    // checked copy (formats/verdict-v1.md §5 R2).
    let copy;
    let (source, snapshot) = if crate::media::SnapshotDir::is_installed_source(test_dir) {
        publish::open_source(test_dir, None, trust)?
    } else {
        copy = workflow::staged::copy(test, trust, progress)?;
        (copy.dir.clone(), copy.snapshot.clone())
    };
    if snapshot.id().to_hex() != verdict.snapshot {
        return Err(refused(format!(
            "the verdict is {}, but snapshot {} (sequence {}) is installed there now",
            verdict.describe(),
            snapshot.id().short(),
            snapshot.manifest().sequence
        )));
    }
    // publish re-checks every byte at the test target before any target is touched.
    let mut report = publish::publish(&source, &snapshot, targets, options, progress)?;
    report.snapshot.dir = test_dir.to_owned();
    let now = crate::clock::format(options.now);
    let promotions: Vec<Promotion> = report
        .targets
        .iter()
        .filter_map(|t| {
            let status = match t.status {
                TargetStatus::Updated => "updated",
                TargetStatus::UpToDate => "up-to-date",
                TargetStatus::WouldUpdate | TargetStatus::Refused | TargetStatus::Failed => return None,
            };
            Some(Promotion {
                time: now.clone(),
                snapshot: verdict.snapshot.clone(),
                status: status.into(),
                target: t.target.clone(),
            })
        })
        .collect();
    if !options.dry_run {
        workflow::record_promotions(test, &promotions)?;
    }
    Ok(PromoteReport { test_target: test.location(), verdict, publish: report })
}
