//! `ferry status`: what a target serves and how fresh it is.
//!
//! Freshness follows the vendor documents (`../shared/seeds/`): databases
//! are out of date after 1 day and extremely out of date after 7 days,
//! measured from when the snapshot was taken on the connected side.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::install::state::SwitchKind;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// The freshness verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Freshness {
    /// Younger than the out-of-date threshold.
    Fresh,
    /// Older than the out-of-date threshold.
    OutOfDate,
    /// Older than the extremely-out-of-date threshold.
    ExtremelyOutOfDate,
}

impl Freshness {
    /// How people read it.
    pub fn describe(self) -> &'static str {
        match self {
            Freshness::Fresh => "fresh",
            Freshness::OutOfDate => "out of date",
            Freshness::ExtremelyOutOfDate => "extremely out of date",
        }
    }
}

/// Freshness thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Older than this is out of date (default 1 day).
    pub out_of_date: SignedDuration,
    /// Older than this is extremely out of date (default 7 days).
    pub extremely_out_of_date: SignedDuration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            out_of_date: SignedDuration::from_hours(24),
            extremely_out_of_date: SignedDuration::from_hours(7 * 24),
        }
    }
}

/// What status found.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The target.
    pub target: String,
    /// Repository installed.
    pub repository: String,
    /// Sequence installed.
    pub sequence: u64,
    /// Snapshot id.
    pub snapshot_id: String,
    /// When the snapshot was taken.
    pub created: String,
    /// Seconds since then.
    pub age_seconds: i64,
    /// The same, for people.
    pub age: String,
    /// When it was installed here.
    pub installed: String,
    /// Expiry time or `never`.
    pub expires: String,
    /// Whether the expiry has passed (new imports of it would be refused).
    pub expired: bool,
    /// `tree` or `ordered`.
    pub switch: SwitchKind,
    /// The verdict.
    pub freshness: Freshness,
    /// Set when this state came from `ferry rollback`.
    pub rolled_back_from: Option<u64>,
    /// Whether a previous snapshot is kept for rollback.
    pub previous_kept: bool,
    /// At a test update source (`import --stage`): the verdict recorded,
    /// else `None` (formats/verdict-v1.md).
    pub verdict: Option<crate::workflow::Verdict>,
    /// Whether that verdict is about the snapshot installed now.
    pub verdict_current: bool,
    /// Where verified snapshots were promoted from here, oldest first.
    pub promoted: Vec<crate::workflow::Promotion>,
    /// What the installed snapshot's export decided (formats/policy-v1.md
    /// §6), when it was exported with a policy or a partial selection.
    pub policy: Option<crate::workflow::record::PolicySummary>,
}

/// Reads the target's state and judges its freshness at `now`.
pub fn status(target: &dyn Backend, thresholds: Thresholds, now: Timestamp) -> Result<StatusReport> {
    let Some((state, manifest)) = crate::install::installed(target)? else {
        return Err(Error::NotInstalled(target.location().into()));
    };
    let age = now.duration_since(state.created);
    let freshness = if age > thresholds.extremely_out_of_date {
        Freshness::ExtremelyOutOfDate
    } else if age > thresholds.out_of_date {
        Freshness::OutOfDate
    } else {
        Freshness::Fresh
    };
    let previous_kept = match (state.switch, target.tree_exchange()) {
        (SwitchKind::Tree, Some(trees)) => crate::install::tree::previous_state(trees).is_some(),
        _ => crate::install::ordered::has_previous(target)?,
    };
    let verdict = crate::workflow::read_verdict(target)?;
    Ok(StatusReport {
        target: target.location(),
        repository: state.repository.to_string(),
        sequence: state.sequence,
        snapshot_id: state.snapshot.to_hex(),
        created: crate::clock::format(state.created),
        age_seconds: age.as_secs(),
        age: crate::clock::describe(age),
        installed: crate::clock::format(state.installed),
        expires: state.expires.map_or("never".into(), crate::clock::format),
        expired: state.expires.is_some_and(|e| e <= now),
        switch: state.switch,
        freshness,
        rolled_back_from: state.rolled_back_from,
        previous_kept,
        verdict_current: verdict.as_ref().is_some_and(|v| v.snapshot == state.snapshot.to_hex()),
        verdict,
        promoted: crate::workflow::read_promotions(target)?,
        policy: manifest.snapshot().policy.as_ref().map(crate::workflow::record::PolicySummary::of),
    })
}
