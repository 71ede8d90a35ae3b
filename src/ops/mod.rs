//! One use case per module: what each `ferry` command does, as library
//! calls that take an options struct and return a report. The CLI only
//! parses arguments into options and prints reports.

pub mod export;
pub mod import;
pub mod keygen;
pub mod list;
pub mod publish;
pub mod rollback;
pub mod status;
pub mod verify;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::target::state::{InstalledState, JOURNAL_FILE, MANIFEST_FILE, MAX_STATE_BYTES, STATE_FILE};
use crate::target::{Recovery, Target, ordered};
use camino::Utf8Path;

/// Finishes whatever an interrupted import or rollback left at `target`.
/// Call with the target lock held.
pub(crate) fn recover(target: &dyn Target) -> Result<Vec<Recovery>> {
    let mut done = Vec::new();
    if let Some(tree) = target.whole_tree() {
        done.extend(tree.recover_tree()?);
    }
    done.extend(ordered::recover(target)?);
    for recovery in &done {
        let line = format!("{} recover {}", crate::clock::format(crate::clock::now()), recovery.description);
        target.append_history(&line)?;
    }
    Ok(done)
}

/// Reads only the installed state marker, if a snapshot is installed: the
/// cheap question (one small file, not the whole manifest over the network).
pub(crate) fn installed_state(target: &dyn Target) -> Result<Option<InstalledState>> {
    let Some(state_bytes) = target.read_state(STATE_FILE)? else { return Ok(None) };
    let state_origin = format!("{}/.ferry/{STATE_FILE}", target.location());
    if state_bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(Error::format(state_origin, "larger than the state file limit"));
    }
    InstalledState::decode(&state_bytes, Utf8Path::new(&state_origin)).map(Some)
}

/// Reads the installed state marker and manifest, if a snapshot is installed.
pub(crate) fn installed(target: &dyn Target) -> Result<Option<(InstalledState, Manifest)>> {
    let Some(state) = installed_state(target)? else { return Ok(None) };
    // An ordered switch copies the new manifest into place just before it
    // writes the new state marker; a crash between the two leaves the state
    // naming the manifest that `previous/` (or `incoming/`) still holds.
    let mut manifest_origin = format!("{}/.ferry/{MANIFEST_FILE}", target.location());
    let mut found = None;
    for name in [MANIFEST_FILE, "previous/manifest", "incoming/manifest"] {
        if let Some(bytes) = target.read_state(name)?
            && crate::digest::Digest::of(&bytes) == state.snapshot
        {
            manifest_origin = format!("{}/.ferry/{name}", target.location());
            found = Some(bytes);
            break;
        }
    }
    let Some(manifest_bytes) = found else {
        if target.read_state(JOURNAL_FILE)?.is_some() {
            return Err(Error::Recovery {
                path: format!("{}/.ferry/{JOURNAL_FILE}", target.location()).into(),
                problem: "a switch was interrupted; run `ferry import` (or `ferry rollback`) again to finish it".into(),
            });
        }
        return Err(Error::format(
            manifest_origin,
            "missing or not matching the snapshot id in .ferry/state (state folder damaged)",
        ));
    };
    let manifest = Manifest::decode(&manifest_bytes, Utf8Path::new(&manifest_origin))?;
    Ok(Some((state, manifest)))
}
