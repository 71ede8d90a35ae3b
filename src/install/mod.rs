//! The install engine above the back ends: what to change at a target and
//! in which order, so that devices only ever see a complete old tree or a
//! complete new one.
//!
//! [`change_set`] compares the installed manifest with the new one;
//! [`tree`] switches whole trees where the back end can exchange them,
//! [`ordered`] renames files into place under a journal everywhere else;
//! [`state`] encodes the state marker and journal; [`history`] records what
//! happened. [`recover`] finishes whatever an interrupted run left, and
//! [`installed`] opens what a target holds.

pub mod change_set;
pub mod history;
pub mod ordered;
pub mod state;
pub mod tree;

use crate::backend::{Backend, BackendLock};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use camino::Utf8Path;
use state::{InstalledState, JOURNAL_FILE, MANIFEST_FILE, MAX_STATE_BYTES, STATE_FILE};

/// What finishing an interrupted run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// For people and the history log.
    pub description: String,
    /// The interrupted run was a rollback, now complete.
    pub finished_rollback: bool,
}

impl Recovery {
    fn new(description: impl Into<String>, finished_rollback: bool) -> Self {
        Recovery { description: description.into(), finished_rollback }
    }
}

/// Takes the target's lock. When another ferry process holds it and `wait`
/// is set, says who holds it (progress and notice) and waits; without
/// `wait` the `Locked` error names the holder.
pub fn lock(backend: &dyn Backend, wait: bool, progress: &dyn crate::report::Progress) -> Result<BackendLock> {
    match backend.lock(false) {
        Err(Error::Locked { holder, .. }) if wait => {
            let waiting = format!("waiting for the lock on {} ({holder})", backend.location());
            progress.attention(&waiting);
            backend.lock(true)
        }
        other => other,
    }
}

/// Finishes whatever an interrupted import or rollback left at `backend`,
/// and records it in the history. Call with the target lock held.
pub fn recover(backend: &dyn Backend) -> Result<Vec<Recovery>> {
    let mut done = Vec::new();
    if let Some(trees) = backend.tree_exchange() {
        done.extend(tree::recover(backend, trees)?);
    }
    done.extend(ordered::recover(backend)?);
    for recovery in &done {
        let event = history::Event::Recover { time: crate::clock::now(), description: recovery.description.clone() };
        history::append(backend, &event.record())?;
    }
    Ok(done)
}

/// Reads only the installed state marker, if a snapshot is installed: the
/// cheap question (one small file, not the whole manifest over the network).
pub fn installed_state(backend: &dyn Backend) -> Result<Option<InstalledState>> {
    let Some(state_bytes) = backend.read_state(STATE_FILE)? else { return Ok(None) };
    let state_origin = format!("{}/{STATE_FILE}", backend.state_location());
    if state_bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(Error::format(state_origin, "larger than the state file limit"));
    }
    InstalledState::decode(&state_bytes, Utf8Path::new(&state_origin)).map(Some)
}

/// Reads the installed state marker and manifest, if a snapshot is installed.
pub fn installed(backend: &dyn Backend) -> Result<Option<(InstalledState, Manifest)>> {
    let Some(state) = installed_state(backend)? else { return Ok(None) };
    // An ordered switch copies the new manifest into place just before it
    // writes the new state marker; a crash between the two leaves the state
    // naming the manifest that `previous/` (or `incoming/`) still holds.
    let state_dir = backend.state_location();
    let mut manifest_origin = format!("{state_dir}/{MANIFEST_FILE}");
    let mut found = None;
    for name in [MANIFEST_FILE, "previous/manifest", "incoming/manifest"] {
        if let Some(bytes) = backend.read_state(name)?
            && crate::digest::Digest::of(&bytes) == state.snapshot
        {
            manifest_origin = format!("{state_dir}/{name}");
            found = Some(bytes);
            break;
        }
    }
    let Some(manifest_bytes) = found else {
        if backend.read_state(JOURNAL_FILE)?.is_some() {
            return Err(Error::Recovery {
                path: format!("{state_dir}/{JOURNAL_FILE}").into(),
                problem: "a switch was interrupted; run `ferry import` (or `ferry rollback`) again to finish it".into(),
            });
        }
        return Err(Error::format(
            manifest_origin,
            format!("missing or not matching the snapshot id in {state_dir}/{STATE_FILE} (state folder damaged)"),
        ));
    };
    let manifest = Manifest::decode(&manifest_bytes, Utf8Path::new(&manifest_origin))?;
    Ok(Some((state, manifest)))
}
