//! `ferry rollback`: switch back to the previous snapshot, the one
//! deliberate way to lower the installed sequence. The new state marker
//! records `rolled-back-from`, and the audit journal says so.

use crate::audit::{Action, Record};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::install::state::{InstalledState, SwitchKind};
use crate::install::{ordered, tree};
use crate::signing::InstalledManifest;
use camino::Utf8Path;
use jiff::Timestamp;
use serde::Serialize;

/// What a rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    /// The target.
    pub target: String,
    /// The repository.
    pub repository: String,
    /// Sequence before the rollback.
    pub from_sequence: u64,
    /// Sequence now installed.
    pub to_sequence: u64,
    /// Snapshot id now installed.
    pub snapshot_id: String,
    /// What recovery of an earlier interrupted run did, if anything.
    pub recovered: Vec<String>,
    /// Whether this only says what the rollback would do (`--dry-run`).
    pub dry_run: bool,
}

/// What [`rollback`] would do, without the lock, recovery or any write
/// (`--dry-run`): the snapshot installed now and the kept one it would
/// return to. Finding the kept tree of a whole-tree target asks the back
/// end whether it can exchange trees, which on a folder creates and removes
/// two empty folders beside it.
pub fn plan(target: &dyn Backend) -> Result<RollbackReport> {
    let Some((current, _)) = crate::install::installed(target)? else {
        return Err(Error::NotInstalled(target.location().into()));
    };
    let previous = match target.tree_exchange() {
        Some(trees) if current.switch == SwitchKind::Tree => tree::previous_state(trees),
        _ if ordered::has_previous(target)? => Some(ordered::previous_snapshot(target)?.0),
        _ => None,
    };
    let to = previous
        .filter(|kept| current.previous == Some(kept.snapshot))
        .ok_or_else(|| Error::NoPrevious(target.location().into()))?;
    Ok(RollbackReport { dry_run: true, ..RollbackReport::new(target, current.sequence, &to, Vec::new()) })
}

impl RollbackReport {
    /// A rollback of `target` from sequence `from` to the snapshot `to`.
    fn new(target: &dyn Backend, from: u64, to: &InstalledState, recovered: Vec<String>) -> Self {
        RollbackReport {
            target: target.location(),
            repository: to.repository.to_string(),
            from_sequence: from,
            to_sequence: to.sequence,
            snapshot_id: to.snapshot.to_hex(),
            recovered,
            dry_run: false,
        }
    }
}

/// Switches `target` back to its previous snapshot.
pub fn rollback(target: &dyn Backend, wait: bool, now: Timestamp) -> Result<RollbackReport> {
    rollback_by(target, wait, now, (None, None))
}

/// [`rollback`], recording who asked and why (`operator`, `reason`) in the
/// target's audit journal.
pub fn rollback_by(
    target: &dyn Backend,
    wait: bool,
    now: Timestamp,
    (operator, reason): (Option<&str>, Option<&str>),
) -> Result<RollbackReport> {
    let _lock = target.lock(wait)?;
    let recoveries = crate::install::recover(target)?;
    crate::install::history::check(target)?;
    let finished_rollback = recoveries.iter().any(|r| r.finished_rollback);
    let recovered: Vec<String> = recoveries.into_iter().map(|r| r.description).collect();
    let Some((current, current_manifest)) = crate::install::installed(target)? else {
        return Err(Error::NotInstalled(target.location().into()));
    };
    if let (true, Some(from_sequence)) = (finished_rollback, current.rolled_back_from) {
        // An earlier `ferry rollback` was interrupted and is now complete:
        // that was what this one was asked to do.
        return Ok(RollbackReport::new(target, from_sequence, &current, recovered));
    }
    let history = |to: &InstalledState| {
        let from = format!("from sequence {}", current.sequence);
        let reason = reason.map_or(from.clone(), |reason| format!("{from}: {reason}"));
        let record = Record {
            repository: Some(to.repository.clone()),
            sequence: Some(to.sequence),
            snapshot: Some(to.snapshot),
            ..Record::new(now, Action::Rollback).by(operator, Some(&reason))
        };
        [record]
    };
    let rolled_back = |previous: InstalledState, switch: SwitchKind| InstalledState {
        installed: now,
        previous: None,
        rolled_back_from: Some(current.sequence),
        switch,
        ..previous
    };
    let to = match target.tree_exchange() {
        Some(trees) if current.switch == SwitchKind::Tree => {
            let previous = tree::previous_state(trees)
                .filter(|kept| current.previous == Some(kept.snapshot))
                .ok_or_else(|| Error::NoPrevious(target.location().into()))?;
            let state = rolled_back(previous, SwitchKind::Tree);
            tree::rollback(target, trees, &state, &history(&state))?;
            state
        }
        _ => {
            if !ordered::has_previous(target)? {
                return Err(Error::NoPrevious(target.location().into()));
            }
            let (previous, manifest_bytes, signature_bytes) = ordered::previous_snapshot(target)?;
            if current.previous != Some(previous.snapshot) {
                return Err(Error::NoPrevious(target.location().into()));
            }
            let name = "previous/manifest";
            let origin = format!("{}/{name}", target.state_location());
            let previous_manifest =
                InstalledManifest::open(previous.snapshot, &manifest_bytes, (name, Utf8Path::new(&origin)), None)?;
            let state = rolled_back(previous, SwitchKind::Ordered);
            ordered::rollback(
                target,
                current_manifest.manifest(),
                previous_manifest.manifest(),
                (&manifest_bytes, &signature_bytes),
                &state,
                &history(&state),
            )?;
            state
        }
    };
    Ok(RollbackReport::new(target, current.sequence, &to, recovered))
}
