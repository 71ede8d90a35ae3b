//! The whole-tree switch (`formats/target-state-v1.md` §6), for back ends
//! whose [`TreeExchange`] can swap the live tree with another in one step.
//!
//! The new tree is built in [`Slot::Next`]: folders first, unchanged files
//! linked from the live tree (no data copied), changed files streamed from
//! the verified payload, then its state folder with the state marker last.
//! One exchange makes it live; the old tree is kept in [`Slot::Previous`]
//! for rollback. Devices see the old tree or the new one, never a mix.

use super::change_set::ChangeSet;
use super::state::{InstalledState, MANIFEST_FILE, MAX_STATE_BYTES, SIGNATURE_FILE, STATE_FILE};
use super::{Recovery, history};
use crate::backend::{Backend, Slot, TreeExchange};
use crate::crash;
use crate::error::{Error, Result};
use crate::manifest::EntryKind;
use crate::parallel;
use crate::payload::Payload;
use crate::rel_path::RelPath;
use crate::report::Progress;
use crate::signing::VerifiedSnapshot;
use std::io::Write;

/// Marks a tree that a whole-tree rollback is switching to.
const ROLLBACK_INTENT: &str = "rollback-intent";
/// Unchanged files handed to [`TreeExchange::link_live`] at a time.
const LINK_BATCH: usize = 2048;
/// The audit journal, as named in a tree's state folder.
const AUDIT_FILE: &str = history::AUDIT_FILE;

/// Everything needed to build and switch in a new tree.
pub struct TreeInstall<'a> {
    /// The verified snapshot being installed.
    pub snapshot: &'a VerifiedSnapshot,
    /// Where its payload is read from.
    pub media: &'a Payload,
    /// What differs from the installed snapshot.
    pub changes: &'a ChangeSet<'a>,
    /// The new state marker.
    pub state: &'a InstalledState,
    /// The journal records of this import.
    pub records: &'a [crate::audit::Record],
    /// Progress sink.
    pub progress: &'a dyn Progress,
}

/// Builds the new tree beside the live one and exchanges them.
pub fn install(backend: &dyn Backend, trees: &dyn TreeExchange, job: &TreeInstall<'_>) -> Result<()> {
    trees.clear(Slot::Next)?;
    trees.create(Slot::Next)?;
    if let Err(error) = build(trees, job) {
        trees.clear(Slot::Next)?;
        return Err(error);
    }
    crash::point("tree-built");
    trees.write_state(Slot::Next, MANIFEST_FILE, job.snapshot.manifest_bytes())?;
    trees.write_state(Slot::Next, SIGNATURE_FILE, job.snapshot.signature_bytes())?;
    history::carry_legacy(backend, &|name, bytes| trees.write_state(Slot::Next, name, bytes))?;
    crate::workflow::carry(backend, &|name, bytes| trees.write_state(Slot::Next, name, bytes))?;
    trees.write_state(Slot::Next, AUDIT_FILE, &history::extended(backend, job.records)?)?;
    trees.write_state(Slot::Next, STATE_FILE, &job.state.encode())?;
    job.progress.phase("flushing", 0);
    trees.sync(Slot::Next)?;
    let _new_tree_lock = trees.lock(Slot::Next)?;
    crash::point("before-exchange");
    trees.exchange(Slot::Next)?;
    crash::point("after-exchange");
    trees.clear(Slot::Previous)?;
    crash::point("previous-removed");
    trees.keep_next_as_previous()
}

/// Fills the tree in [`Slot::Next`]: folders, linked unchanged files, and
/// every other file verified from the payload.
fn build(trees: &dyn TreeExchange, job: &TreeInstall<'_>) -> Result<()> {
    let entries = &job.snapshot.manifest().entries;
    let folders: Vec<&RelPath> =
        entries.iter().filter(|entry| matches!(entry.kind, EntryKind::Dir)).map(|entry| &entry.path).collect();
    trees.make_dirs(Slot::Next, &folders)?;
    drop(folders);
    let mut to_copy = job.changes.to_write();
    // Linked in batches of consecutive files, on all cores.
    let unchanged: Vec<_> = job.changes.unchanged().collect();
    let batches: Vec<_> = unchanged.chunks(LINK_BATCH).collect();
    let not_linked = std::sync::Mutex::new(Vec::new());
    // A file that cannot be linked is copied instead: linking never fails.
    parallel::for_each(&batches, false, |batch| -> std::result::Result<(), std::convert::Infallible> {
        let paths: Vec<&RelPath> = batch.iter().map(|(path, _)| *path).collect();
        let linked = trees.link_live(Slot::Next, &paths);
        let missed = batch.iter().zip(linked).filter(|(_, linked)| !linked).map(|(file, _)| *file);
        not_linked.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend(missed);
        Ok(())
    });
    to_copy.extend(not_linked.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()));
    to_copy.sort_by_key(|(path, file)| (job.media.read_position(path), std::cmp::Reverse(file.size)));
    job.progress.phase("installing", to_copy.iter().map(|(_, f)| f.size).sum());
    job.progress.files(to_copy.len());
    let errors = parallel::for_each(&to_copy, true, |(path, file)| -> Result<()> {
        let mut writer = trees.create_file(Slot::Next, path, file.executable)?;
        job.media.copy_verified(path, file, &mut writer, job.progress)?;
        writer.flush().map_err(|e| Error::io("write", path.as_str(), e))?;
        writer.commit()
    });
    errors.into_iter().next().map_or(Ok(()), Err)
}

/// Finishes or discards what an interrupted whole-tree switch or rollback
/// left beside the live tree; returns what it did.
pub fn recover(backend: &dyn Backend, trees: &dyn TreeExchange) -> Result<Option<Recovery>> {
    let mut done = None;
    if trees.exists(Slot::Next) {
        let live = live_state(backend)?;
        let exchanged = match (&live, slot_state(trees, Slot::Next)) {
            (Some(live), Some(old)) => live.previous == Some(old.snapshot),
            _ => false,
        };
        if exchanged {
            trees.clear(Slot::Previous)?;
            trees.keep_next_as_previous()?;
            done = Some(Recovery::new(
                format!("finished an interrupted switch: kept the old tree as {}", trees.describe(Slot::Previous)),
                false,
            ));
        } else {
            let next = trees.describe(Slot::Next);
            trees.clear(Slot::Next)?;
            done = Some(Recovery::new(format!("removed an unfinished new tree {next}"), false));
        }
    }
    // A rollback leaves an intent file in the tree it switches to: still
    // in the previous tree means the exchange has not happened yet.
    if trees.exists(Slot::Previous) && trees.read_state(Slot::Previous, ROLLBACK_INTENT)?.is_some() {
        trees.exchange(Slot::Previous)?;
        done = Some(Recovery::new("finished an interrupted rollback", true));
    }
    if backend.read_state(ROLLBACK_INTENT)?.is_some() {
        trees.clear(Slot::Previous)?;
        backend.remove_state(ROLLBACK_INTENT)?;
        done = Some(Recovery::new("finished an interrupted rollback", true));
    }
    Ok(done)
}

/// Removes the tree kept beside the live one by an earlier whole-tree
/// switch once an ordered switch (a delta, or `--switch ordered`) has
/// installed another snapshot over it: rollback then returns to what the
/// ordered switch kept (`ferry rollback` uses the kept tree only while the
/// live snapshot came from a whole-tree switch), so that tree is never a
/// rollback point again and would only hold a full copy of an old snapshot.
/// The import is complete by then: a failure only warns (the next
/// whole-tree or ordered switch removes the tree again).
pub fn remove_stale_previous(backend: &dyn Backend, progress: &dyn Progress) {
    let Some(trees) = backend.tree_exchange() else { return };
    if trees.exists(Slot::Previous)
        && let Err(error) = trees.clear(Slot::Previous)
    {
        progress
            .attention(&format!("warning: the old tree {} was not removed: {error}", trees.describe(Slot::Previous)));
    }
}

/// The state of the kept previous tree, if there is a valid one.
pub fn previous_state(trees: &dyn TreeExchange) -> Option<InstalledState> {
    slot_state(trees, Slot::Previous)
}

/// Exchanges the live tree with the previous one. `state` is the marker
/// the previous tree gets (rolled back), `records` its journal records.
pub fn rollback(
    backend: &dyn Backend,
    trees: &dyn TreeExchange,
    state: &InstalledState,
    records: &[crate::audit::Record],
) -> Result<()> {
    trees.write_state(Slot::Previous, ROLLBACK_INTENT, b"")?;
    history::carry_legacy(backend, &|name, bytes| trees.write_state(Slot::Previous, name, bytes))?;
    crate::workflow::carry(backend, &|name, bytes| trees.write_state(Slot::Previous, name, bytes))?;
    trees.write_state(Slot::Previous, AUDIT_FILE, &history::extended(backend, records)?)?;
    trees.write_state(Slot::Previous, STATE_FILE, &state.encode())?;
    let _returning_tree_lock = trees.lock(Slot::Previous)?;
    crash::point("rollback-prepared");
    trees.exchange(Slot::Previous)?;
    crash::point("rollback-exchanged");
    // One step back only: the tree rolled back from is not kept.
    trees.clear(Slot::Previous)?;
    backend.remove_state(ROLLBACK_INTENT)
}

fn live_state(backend: &dyn Backend) -> Result<Option<InstalledState>> {
    Ok(backend.read_state(STATE_FILE)?.and_then(|bytes| decode_state(&bytes)))
}

fn slot_state(trees: &dyn TreeExchange, slot: Slot) -> Option<InstalledState> {
    trees.read_state(slot, STATE_FILE).ok()?.and_then(|bytes| decode_state(&bytes))
}

/// A state marker read to decide recovery; an unreadable one counts as
/// absent, as a tree without a valid marker is never switched to.
fn decode_state(bytes: &[u8]) -> Option<InstalledState> {
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return None;
    }
    InstalledState::decode(bytes, camino::Utf8Path::new(STATE_FILE)).ok()
}
