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
use crate::signing::InstalledManifest;
use camino::Utf8Path;
use state::{InstalledState, JOURNAL_FILE, MANIFEST_FILE, MAX_STATE_BYTES, SIGNATURE_FILE, STATE_FILE};

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
/// and records it in the audit journal. Call with the target lock held.
pub fn recover(backend: &dyn Backend) -> Result<Vec<Recovery>> {
    let mut done = Vec::new();
    if let Some(trees) = backend.tree_exchange() {
        done.extend(tree::recover(backend, trees)?);
    }
    done.extend(ordered::recover(backend)?);
    let records: Vec<crate::audit::Record> = done
        .iter()
        .map(|recovery| {
            crate::audit::Record::new(crate::clock::now(), crate::audit::Action::Recover)
                .by(None, Some(&recovery.description))
        })
        .collect();
    history::append(backend, &records)?;
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

/// What a target holds installed: its state marker and the manifest it names.
pub type Installed = (InstalledState, InstalledManifest);

/// [`installed`], reusing `early` (what an earlier call returned) while the
/// state marker still says the same: an import reads the installed
/// manifest before the new one, so that the two manifests' bytes are never
/// held at once (issue 14), and checks it again once it holds the lock.
pub fn installed_since(backend: &dyn Backend, early: Option<Installed>) -> Result<Option<Installed>> {
    match early {
        Some((state, manifest)) if installed_state(backend)?.as_ref() == Some(&state) => Ok(Some((state, manifest))),
        _ => installed(backend),
    }
}

/// Reads the installed state marker and the manifest it names, if a
/// snapshot is installed: the one way installed state is opened. The
/// manifest is tied to the marker by its SHA-256 ([`InstalledManifest`]);
/// callers that hold trust re-verify it with [`InstalledManifest::verify`].
pub fn installed(backend: &dyn Backend) -> Result<Option<(InstalledState, InstalledManifest)>> {
    let Some(state) = installed_state(backend)? else { return Ok(None) };
    // An ordered switch copies the new manifest into place just before it
    // writes the new state marker; a crash between the two leaves the state
    // naming the manifest that `previous/` (or `incoming/`) still holds.
    let state_dir = backend.state_location();
    let mut manifest_origin = format!("{state_dir}/{MANIFEST_FILE}");
    let mut found = None;
    for folder in ["", "previous/", "incoming/"] {
        let name = format!("{folder}{MANIFEST_FILE}");
        if let Some(bytes) = backend.read_state(&name)?
            && crate::digest::Digest::of(&bytes) == state.snapshot
        {
            manifest_origin = format!("{state_dir}/{name}");
            // The signature copied beside it, for callers that re-verify.
            let signature_name = format!("{folder}{SIGNATURE_FILE}");
            let signature_origin = format!("{state_dir}/{signature_name}");
            let signature = backend.read_state(&signature_name)?.map(|bytes| (bytes, signature_origin.into()));
            found = Some((name, bytes, signature));
            break;
        }
    }
    let Some((manifest_name, manifest_bytes, signature)) = found else {
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
    let origin = (manifest_name.as_str(), Utf8Path::new(&manifest_origin));
    // The bytes are dropped here, once decoded (issue 14).
    let manifest = InstalledManifest::open_matched(state.snapshot, &manifest_bytes, origin, signature)?;
    Ok(Some((state, manifest)))
}
