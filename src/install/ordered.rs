//! The ordered switch: for targets that cannot exchange whole trees
//! (shared folders, FTP servers), `formats/target-state-v1.md` §5.
//!
//! Changed files are first staged and verified in the state folder. A
//! journal listing every remaining step is then written and flushed, and
//! only after that does anything visible change: folders are created, data
//! files renamed into place, then index files (so an index never names data
//! that is not there yet), then deletions. The state marker is written
//! last. Every step can be repeated, so after a crash [`recover`] simply runs
//! the journal again from the start.

use super::Recovery;
use super::change_set::ChangeSet;
use super::history::{self, AUDIT_FILE};
use super::state::{
    HISTORY_FILE, InstalledState, JOURNAL_FILE, Journal, JournalKind, MANIFEST_FILE, MAX_STATE_BYTES, SIGNATURE_FILE,
    STATE_FILE, Step,
};
use crate::backend::Backend;
use crate::crash;
use crate::error::{Error, Result};
use crate::manifest::{EntryKind, FileEntry, Manifest};
use crate::parallel;
use crate::payload::Payload;
use crate::rel_path::RelPath;
use crate::report::Progress;
use crate::signing::VerifiedSnapshot;
use camino::Utf8Path;
use std::collections::{HashMap, HashSet};

const STAGING: &str = "staging";
/// How often one staged upload is restarted after a transient failure.
const STAGING_RETRIES: u32 = 4;
const INCOMING: &str = "incoming";
const PREVIOUS: &str = "previous";

/// What the tree held before, as far as ferry knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known<'a> {
    Dir,
    /// A file; `None` when ferry did not install it (adopted folder).
    File(Option<&'a FileEntry>),
}

/// Everything needed to install a snapshot with the ordered switch.
pub struct OrderedInstall<'a> {
    /// The verified snapshot being installed.
    pub snapshot: &'a VerifiedSnapshot,
    /// Where its payload is read from.
    pub media: &'a Payload,
    /// The installed manifest, if any.
    pub installed: Option<&'a Manifest>,
    /// What differs from the installed snapshot.
    pub changes: &'a ChangeSet<'a>,
    /// The tree found at a target without state that is being adopted.
    pub adopted: &'a [(RelPath, bool)],
    /// The new state marker.
    pub state: &'a InstalledState,
    /// The journal records of this import.
    pub records: &'a [crate::audit::Record],
    /// Restore damaged files of the installed snapshot in place (`--repair`
    /// of the same snapshot): the kept previous snapshot stays as it is, and
    /// every folder is made again where missing.
    pub repair: bool,
    /// Progress sink.
    pub progress: &'a dyn Progress,
}

/// Where a file that `plan` puts into place comes from.
#[derive(Debug, Clone)]
enum PutSource {
    /// A verified file in `staging/`.
    Staged(String),
    /// The copy kept in `previous/tree/` (rollback).
    Kept,
}

fn kept_name(path: &RelPath) -> String {
    format!("{PREVIOUS}/tree/{path}")
}

fn known_entries<'a>(
    installed: Option<&'a Manifest>,
    adopted: &'a [(RelPath, bool)],
) -> HashMap<&'a RelPath, Known<'a>> {
    match installed {
        Some(manifest) => {
            manifest.entries.iter().map(|e| (&e.path, e.file().map_or(Known::Dir, |f| Known::File(Some(f))))).collect()
        }
        None => {
            adopted.iter().map(|(path, is_dir)| (path, if *is_dir { Known::Dir } else { Known::File(None) })).collect()
        }
    }
}

/// How [`plan`] keeps the files an import replaces or deletes, for rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keeping {
    /// Nothing is kept (first import, repair, rollback).
    Nothing,
    /// `save` steps before anything visible changes (hard links or copies).
    UpFront,
    /// Moved aside where they go: `swap` for a replaced file, `keep` for a
    /// deleted one (back ends where a copy costs a transfer).
    ByMoving,
}

/// Plans the steps that turn the `old` tree into `new`. `puts` are the
/// changed files and where they come from; every other file is unchanged.
fn plan(
    old: &HashMap<&RelPath, Known<'_>>,
    new: &Manifest,
    puts: &[(&RelPath, PutSource, bool)],
    keeping: Keeping,
) -> Vec<Step> {
    let new_kinds: HashMap<&RelPath, bool> =
        new.entries.iter().map(|e| (&e.path, matches!(e.kind, EntryKind::Dir))).collect();
    let put_paths: HashSet<&RelPath> = puts.iter().map(|(path, _, _)| *path).collect();
    // An old file leaves the tree: deleted, or moved aside to be kept.
    let remove_file = |path: &RelPath| match keeping {
        Keeping::ByMoving => Step::Keep(path.clone()),
        _ => Step::Delete(path.clone()),
    };
    let mut steps = Vec::new();
    if keeping == Keeping::UpFront {
        let mut saved: Vec<&RelPath> = old
            .iter()
            .filter(|(path, known)| {
                matches!(known, Known::File(_)) && (put_paths.contains(*path) || new_kinds.get(*path) != Some(&false))
            })
            .map(|(path, _)| *path)
            .collect();
        saved.sort();
        steps.extend(saved.into_iter().map(|p| Step::Save(p.clone())));
        steps.push(Step::Barrier);
    }
    // Old entries in the way of a new entry of the other kind go first.
    let mut removed: HashSet<&RelPath> = HashSet::new();
    let mut in_the_way: Vec<(&RelPath, bool)> = Vec::new();
    for (path, known) in old {
        let old_is_dir = matches!(known, Known::Dir);
        if let Some(&new_is_dir) = new_kinds.get(path)
            && new_is_dir != old_is_dir
        {
            in_the_way.push((path, old_is_dir));
        }
    }
    // Sorted, so that the same change always gives the same journal bytes.
    in_the_way.sort();
    for (blocker, is_dir) in in_the_way {
        if is_dir {
            let mut inside: Vec<(&RelPath, bool)> = old
                .iter()
                .filter(|(p, _)| p.as_str().starts_with(&format!("{blocker}/")) || *p == &blocker)
                .map(|(p, k)| (*p, matches!(k, Known::Dir)))
                .collect();
            inside.sort_by_key(|(p, is_dir)| (std::cmp::Reverse(p.depth()), *is_dir, *p));
            for (path, is_dir) in inside {
                steps.push(if is_dir { Step::RemoveDir(path.clone()) } else { remove_file(path) });
                removed.insert(path);
            }
        } else {
            steps.push(remove_file(blocker));
            removed.insert(blocker);
        }
    }
    steps.push(Step::Barrier);
    for entry in &new.entries {
        if matches!(entry.kind, EntryKind::Dir) && old.get(&entry.path) != Some(&Known::Dir) {
            steps.push(Step::MakeDir(entry.path.clone()));
        }
    }
    steps.push(Step::Barrier);
    for index_pass in [false, true] {
        for (path, from, is_index) in puts {
            if *is_index == index_pass {
                steps.push(put_step(
                    path,
                    from,
                    keeping == Keeping::ByMoving && matches!(old.get(path), Some(Known::File(_))),
                ));
            }
        }
        // Index files only after every data file they may list.
        steps.push(Step::Barrier);
    }
    let mut gone: Vec<(&RelPath, bool)> = old
        .iter()
        .filter(|(path, known)| !removed.contains(*path) && new_kinds.get(*path) != Some(&matches!(known, Known::Dir)))
        .map(|(path, known)| (*path, matches!(known, Known::Dir)))
        .collect();
    gone.sort_by(|a, b| (a.1, std::cmp::Reverse(a.0.depth()), a.0).cmp(&(b.1, std::cmp::Reverse(b.0.depth()), b.0)));
    let mut files_done = false;
    for (path, is_dir) in gone {
        if is_dir && !files_done {
            steps.push(Step::Barrier);
            files_done = true;
        }
        steps.push(if is_dir { Step::RemoveDir(path.clone()) } else { remove_file(path) });
    }
    steps
}

/// The step that puts one changed file into place; `swap` when the file it
/// replaces is kept by moving it aside first.
fn put_step(path: &RelPath, from: &PutSource, swap: bool) -> Step {
    match from {
        PutSource::Staged(name) if swap => Step::Swap { from: name.clone(), to: path.clone() },
        PutSource::Staged(name) => Step::Put { from: name.clone(), to: path.clone() },
        PutSource::Kept => Step::Restore(path.clone()),
    }
}

/// Installs a snapshot with the ordered switch.
pub fn install(target: &dyn Backend, job: &OrderedInstall<'_>) -> Result<()> {
    let manifest = job.snapshot.manifest();
    let mut old = known_entries(job.installed, job.adopted);
    if job.repair {
        old.retain(|_, known| !matches!(known, Known::Dir));
    }

    // Stage every changed file, verified on the way in.
    let changed = job.changes.to_write();
    let staged_names: Vec<String> = (0..changed.len()).map(|n| format!("{STAGING}/{n:06}")).collect();
    let puts: Vec<(&RelPath, PutSource, bool)> = changed
        .iter()
        .zip(&staged_names)
        .map(|((path, file), name)| (*path, PutSource::Staged(name.clone()), file.index))
        .collect();
    job.progress.phase("staging", changed.iter().map(|(_, f)| f.size).sum());
    job.progress.files(changed.len());
    let mut order: Vec<usize> = (0..changed.len()).collect();
    order.sort_by_key(|&n| (job.media.read_position(changed[n].0), std::cmp::Reverse(changed[n].1.size)));
    let errors = parallel::for_each_with(target.parallelism(), &order, true, |&n| -> Result<()> {
        let (path, file) = changed[n];
        let mut attempt = 0;
        loop {
            let staged = target.create_staged(&staged_names[n], file.executable).and_then(|mut staged| {
                job.media.copy_verified(path, file, &mut staged, job.progress)?;
                staged.commit()
            });
            // Control run only (tests/crash.rs): FERRY_CONTROL_UNSAFE=no-journal
            // renames each file into place as soon as it is staged, before the
            // journal and regardless of the index-last order, so the crash
            // tests can show that their checks catch an unprotected switch.
            #[cfg(feature = "crash-points")]
            let staged = staged.and_then(|()| {
                if !crash::control_unsafe("no-journal") {
                    return Ok(());
                }
                let folders: Vec<RelPath> = std::iter::successors(path.parent(), RelPath::parent).collect();
                folders.iter().rev().try_for_each(|folder| target.make_dir(folder))?;
                target.put(&staged_names[n], path)
            });
            match staged {
                // A dropped connection mid-upload: send the whole file again.
                Err(error) if error.is_transient() && attempt < STAGING_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(250 << attempt));
                }
                other => return other,
            }
        }
    });
    if let Some(error) = errors.into_iter().next() {
        target.remove_state(STAGING)?;
        return Err(error);
    }
    crash::point("staged");
    // Making every staged byte durable can take a while on a slow disk:
    // a phase of its own, so that the bar does not sit at 100%.
    job.progress.phase("flushing", 0);

    // Keep the snapshot being replaced, for rollback.
    let keep_previous = job.installed.is_some() && !job.repair;
    if !job.repair {
        target.remove_state(PREVIOUS)?;
    }
    if keep_previous {
        for name in [STATE_FILE, MANIFEST_FILE, SIGNATURE_FILE] {
            if let Some(bytes) = target.read_state(name)? {
                target.write_state(&format!("{PREVIOUS}/{name}"), &bytes)?;
            }
        }
    }
    write_incoming(target, job.snapshot.manifest_bytes(), job.snapshot.signature_bytes(), job.state, job.records)?;
    let keeping = match (keep_previous, target.capabilities().keeps_by_moving) {
        (false, _) => Keeping::Nothing,
        (true, false) => Keeping::UpFront,
        (true, true) => Keeping::ByMoving,
    };
    let journal =
        Journal { snapshot: job.snapshot.id(), kind: JournalKind::Import, steps: plan(&old, manifest, &puts, keeping) };
    // Staged data must be durable before a journal that points at it is.
    target.flush()?;
    crash::point("before-journal");
    target.write_state(JOURNAL_FILE, &journal.encode())?;
    crash::point("after-journal");
    run_journal(target, &journal)
}

fn write_incoming(
    target: &dyn Backend,
    manifest: &[u8],
    signature: &[u8],
    state: &InstalledState,
    records: &[crate::audit::Record],
) -> Result<()> {
    target.write_state(&format!("{INCOMING}/{MANIFEST_FILE}"), manifest)?;
    target.write_state(&format!("{INCOMING}/{SIGNATURE_FILE}"), signature)?;
    target.write_state(&format!("{INCOMING}/{STATE_FILE}"), &state.encode())?;
    target.write_state(&format!("{INCOMING}/{AUDIT_FILE}"), &history::prepared(target, records)?)
}

/// Runs every step of a complete journal, then commits the incoming state.
fn run_journal(target: &dyn Backend, journal: &Journal) -> Result<()> {
    let run_step = |step: &Step| -> Result<()> {
        match step {
            Step::MakeDir(path) => target.make_dir(path),
            Step::Save(path) => target.save(path, &kept_name(path)),
            Step::Put { from, to } => target.put(from, to),
            Step::Keep(path) => target.keep(path, &kept_name(path)),
            Step::Swap { from, to } => target.keep(to, &kept_name(to)).and_then(|()| target.put(from, to)),
            Step::Restore(path) => target.put(&kept_name(path), path),
            Step::Delete(path) => target.delete_file(path),
            Step::RemoveDir(path) => target.delete_dir(path),
            Step::Barrier => Ok(()),
        }
    };
    let mut done = 0;
    let mut crashed_midway = false;
    for segment in journal.steps.split(|step| *step == Step::Barrier) {
        // Folders are created parents first and removed deepest first: those
        // segments keep their order. Everything else is independent.
        let independent = segment.iter().all(|s| !matches!(s, Step::MakeDir(_) | Step::RemoveDir(_)));
        if independent && segment.len() > 1 {
            if let Some(error) =
                parallel::for_each_with(target.parallelism(), segment, true, run_step).into_iter().next()
            {
                return Err(error);
            }
        } else {
            segment.iter().try_for_each(run_step)?;
        }
        done += segment.len() + 1;
        if !crashed_midway && done > journal.steps.len() / 2 {
            crashed_midway = true;
            crash::point("mid-journal");
        }
    }
    target.flush()?;
    crash::point("before-state");
    let incoming = |name: &str| -> Result<Vec<u8>> {
        target.read_state(&format!("{INCOMING}/{name}"))?.ok_or_else(|| Error::Recovery {
            path: format!("{}/{INCOMING}/{name}", target.state_location()).into(),
            problem: "missing while finishing a switch; the state folder was changed by hand".into(),
        })
    };
    target.write_state(MANIFEST_FILE, &incoming(MANIFEST_FILE)?)?;
    target.write_state(SIGNATURE_FILE, &incoming(SIGNATURE_FILE)?)?;
    // The state marker is the commit: written after every file is in place.
    target.write_state(STATE_FILE, &incoming(STATE_FILE)?)?;
    crash::point("after-state");
    finish_record(target)?;
    target.remove_state(JOURNAL_FILE)?;
    if journal.kind == JournalKind::Rollback {
        target.remove_state(PREVIOUS)?;
    }
    target.remove_state(INCOMING)?;
    target.remove_state(STAGING)?;
    target.flush()
}

/// Appends the journal entries the switch prepared in `incoming/`. A
/// switch begun by an earlier version left a plain history record there
/// instead: it is kept as the reason of a `recover` entry.
fn finish_record(target: &dyn Backend) -> Result<()> {
    if let Some(lines) = target.read_state(&format!("{INCOMING}/{AUDIT_FILE}"))? {
        return history::append_prepared(target, &lines);
    }
    if let Some(old) = target.read_state(&format!("{INCOMING}/{HISTORY_FILE}"))? {
        let text = String::from_utf8_lossy(&old);
        let record = crate::audit::Record::new(crate::clock::now(), crate::audit::Action::Recover)
            .by(None, Some(&format!("switch recorded by an earlier version: {}", text.trim_end())));
        return history::append(target, &[record]);
    }
    Err(Error::Recovery {
        path: format!("{}/{INCOMING}/{AUDIT_FILE}", target.state_location()).into(),
        problem: "missing while finishing a switch; the state folder was changed by hand".into(),
    })
}

/// Finishes a switch a crash interrupted, or clears what an import left
/// before its journal was complete (nothing visible had changed then).
/// Returns a description of what it did, if anything.
pub fn recover(target: &dyn Backend) -> Result<Option<Recovery>> {
    let Some(bytes) = target.read_state(JOURNAL_FILE)? else {
        let leftovers = target.read_state(&format!("{INCOMING}/{STATE_FILE}"))?.is_some();
        target.remove_state(INCOMING)?;
        target.remove_state(STAGING)?;
        return Ok(leftovers.then(|| Recovery::new("removed the staging area of an unfinished import", false)));
    };
    let origin = format!("{}/{JOURNAL_FILE}", target.state_location());
    match Journal::decode(&bytes, Utf8Path::new(&origin))? {
        None => {
            target.remove_state(JOURNAL_FILE)?;
            target.remove_state(INCOMING)?;
            target.remove_state(STAGING)?;
            Ok(Some(Recovery::new("discarded an incomplete journal; the target was not changed", false)))
        }
        Some(journal) => {
            run_journal(target, &journal)?;
            let finished_rollback = journal.kind == JournalKind::Rollback;
            let what = if finished_rollback { "rollback" } else { "switch" };
            Ok(Some(Recovery::new(
                format!("finished an interrupted {what} to snapshot {}", journal.snapshot.short()),
                finished_rollback,
            )))
        }
    }
}

/// Whether a previous snapshot is kept for [`rollback`].
pub fn has_previous(target: &dyn Backend) -> Result<bool> {
    Ok(target.read_state(&format!("{PREVIOUS}/{STATE_FILE}"))?.is_some())
}

/// Reads the kept previous snapshot: its state, manifest and signature bytes.
pub fn previous_snapshot(target: &dyn Backend) -> Result<(InstalledState, Vec<u8>, Vec<u8>)> {
    let read = |name: &str| -> Result<Vec<u8>> {
        target.read_state(&format!("{PREVIOUS}/{name}"))?.ok_or_else(|| Error::NoPrevious(target.location().into()))
    };
    let origin = format!("{}/{PREVIOUS}/{STATE_FILE}", target.state_location());
    let state_bytes = read(STATE_FILE)?;
    if state_bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(Error::format(origin, "larger than the state file limit"));
    }
    let state = InstalledState::decode(&state_bytes, Utf8Path::new(&origin))?;
    Ok((state, read(MANIFEST_FILE)?, read(SIGNATURE_FILE)?))
}

/// Switches back to the previous snapshot: files it had that the current
/// one replaced or deleted come back from `previous/tree/`.
pub fn rollback(
    target: &dyn Backend,
    current: &Manifest,
    previous: &Manifest,
    previous_bytes: (&[u8], &[u8]),
    state: &InstalledState,
    records: &[crate::audit::Record],
) -> Result<()> {
    let old = known_entries(Some(current), &[]);
    let mut puts = Vec::new();
    for (path, file) in previous.files() {
        let same = matches!(old.get(path), Some(Known::File(Some(now))) if *now == file);
        if !same {
            let kept = kept_name(path);
            let size = target.state_file_size(&kept)?;
            if size != Some(file.size) {
                return Err(Error::Recovery {
                    path: format!("{}/{kept}", target.state_location()).into(),
                    problem: "the kept copy needed for rollback is missing or damaged; nothing was changed".into(),
                });
            }
            puts.push((path, PutSource::Kept, file.index));
        }
    }
    write_incoming(target, previous_bytes.0, previous_bytes.1, state, records)?;
    let snapshot = crate::digest::Digest::of(previous_bytes.0);
    let journal =
        Journal { snapshot, kind: JournalKind::Rollback, steps: plan(&old, previous, &puts, Keeping::Nothing) };
    target.flush()?;
    target.write_state(JOURNAL_FILE, &journal.encode())?;
    run_journal(target, &journal)
}

#[cfg(test)]
mod tests {
    //! The install plan as a table: what the tree held, what the new
    //! snapshot lists, and the steps `plan` must journal, `|` for a barrier.
    //! Entries are written `dir/`, `file=N` (content N, so equal N means an
    //! unchanged file) and `file=N!` for an index file; adopted trees list
    //! `dir/` and `file` (ferry does not know their content).

    use super::*;
    use crate::digest::Digest;
    use crate::manifest::Entry;

    /// What the target held before the switch.
    enum Old {
        /// A snapshot ferry installed: an import over it.
        Installed(&'static [&'static str]),
        /// The same, on a back end that keeps files by moving them (FTP).
        InstalledMoving(&'static [&'static str]),
        /// A folder ferry did not fill, being adopted.
        Adopted(&'static [&'static str]),
        /// The current snapshot, while rolling back to the new one.
        RollingBack(&'static [&'static str]),
    }

    struct Case {
        name: &'static str,
        old: Old,
        new: &'static [&'static str],
        steps: &'static [&'static str],
    }

    const CASES: &[Case] = &[
        Case {
            name: "into an empty target: folders first, parents first, data files before index files",
            old: Old::Adopted(&[]),
            new: &["bases/", "bases/a=1", "bases/sub/", "bases/sub/b=2", "index/", "index/m.xml=3!", "z=4"],
            steps: &[
                "|",
                "mkdir bases",
                "mkdir bases/sub",
                "mkdir index",
                "|",
                "put bases/a",
                "put bases/sub/b",
                "put z",
                "|",
                "put index/m.xml",
                "|",
            ],
        },
        Case {
            name: "an index file waits for the data files of its own folder",
            old: Old::Installed(&["d/", "d/a.xml=1!", "d/b=1"]),
            new: &["d/", "d/a.xml=2!", "d/b=2"],
            steps: &["save d/a.xml", "save d/b", "|", "|", "|", "put d/b", "|", "put d/a.xml", "|"],
        },
        Case {
            name: "unchanged files are neither saved nor put",
            old: Old::Installed(&["a=1", "b=1"]),
            new: &["a=1", "b=2"],
            steps: &["save b", "|", "|", "|", "put b", "|", "|"],
        },
        Case {
            name: "deletions after every put, files before folders, folders deepest first",
            old: Old::Installed(&["a/", "a/b/", "a/b/c=1", "a/d=1", "keep=1", "x=1"]),
            new: &["keep=1", "x=2"],
            steps: &[
                "save a/b/c",
                "save a/d",
                "save x",
                "|",
                "|",
                "|",
                "put x",
                "|",
                "|",
                "delete a/b/c",
                "delete a/d",
                "|",
                "rmdir a/b",
                "rmdir a",
            ],
        },
        Case {
            name: "a file in the way of a new folder is deleted before the folder is made",
            old: Old::Installed(&["p=1"]),
            new: &["p/", "p/q=2"],
            steps: &["save p", "|", "delete p", "|", "mkdir p", "|", "put p/q", "|", "|"],
        },
        Case {
            name: "a folder in the way of a new file is emptied deepest first before the file is put",
            old: Old::Installed(&["p/", "p/q/", "p/q/r=1", "p/s=1"]),
            new: &["p=2"],
            steps: &[
                "save p/q/r",
                "save p/s",
                "|",
                "delete p/q/r",
                "delete p/s",
                "rmdir p/q",
                "rmdir p",
                "|",
                "|",
                "put p",
                "|",
                "|",
            ],
        },
        Case {
            name: "an adopted tree: every file is put, nothing is saved, what the snapshot lacks goes",
            old: Old::Adopted(&["old/", "old/f", "same", "was-dir/", "was-dir/g"]),
            new: &["same=1", "was-dir=2"],
            steps: &[
                "delete was-dir/g",
                "rmdir was-dir",
                "|",
                "|",
                "put same",
                "put was-dir",
                "|",
                "|",
                "delete old/f",
                "|",
                "rmdir old",
            ],
        },
        Case {
            name: "kept by moving: a replaced file is swapped where it is put, a deleted one kept where it goes",
            old: Old::InstalledMoving(&["a/", "a/b/", "a/b/c=1", "a/d=1", "keep=1", "x=1", "i.xml=1!"]),
            new: &["i.xml=2!", "keep=1", "n=1", "x=2"],
            steps: &[
                "|",
                "|",
                "put n",
                "swap x",
                "|",
                "swap i.xml",
                "|",
                "keep a/b/c",
                "keep a/d",
                "|",
                "rmdir a/b",
                "rmdir a",
            ],
        },
        Case {
            name: "kept by moving: files in the way of a new folder, or inside an old folder in the way, are kept",
            old: Old::InstalledMoving(&["p=1", "q/", "q/r=1"]),
            new: &["p/", "p/s=2", "q=3"],
            steps: &["keep p", "keep q/r", "rmdir q", "|", "mkdir p", "|", "put p/s", "put q", "|", "|"],
        },
        Case {
            name: "a rollback restores the kept files and saves nothing",
            old: Old::RollingBack(&["a=2", "i.xml=2!", "n=1", "same=1"]),
            new: &["a=1", "g=1", "i.xml=1!", "same=1"],
            steps: &["|", "|", "restore a", "restore g", "|", "restore i.xml", "|", "delete n"],
        },
    ];

    fn rel(text: &str) -> RelPath {
        RelPath::new(text).unwrap()
    }

    fn manifest(spec: &[&str]) -> Manifest {
        let entries = spec
            .iter()
            .map(|item| match item.strip_suffix('/') {
                Some(dir) => Entry { path: rel(dir), kind: EntryKind::Dir },
                None => {
                    let (path, content) = item.split_once('=').expect("files are written `path=N`");
                    let fill: u8 = content.trim_end_matches('!').parse().unwrap();
                    let file = FileEntry {
                        size: fill.into(),
                        digest: Digest([fill; 32]),
                        executable: false,
                        index: content.ends_with('!'),
                    };
                    Entry { path: rel(path), kind: EntryKind::File(file) }
                }
            })
            .collect();
        crate::manifest::for_tests(entries)
    }

    fn staged_name(path: &RelPath) -> String {
        format!("{STAGING}/{path}")
    }

    fn show(step: &Step) -> String {
        match step {
            Step::MakeDir(path) => format!("mkdir {path}"),
            Step::Save(path) => format!("save {path}"),
            Step::Put { from, to } => {
                assert_eq!(*from, staged_name(to), "put {to} takes another file's staged copy");
                format!("put {to}")
            }
            Step::Swap { from, to } => {
                assert_eq!(*from, staged_name(to), "swap {to} takes another file's staged copy");
                format!("swap {to}")
            }
            Step::Restore(path) => format!("restore {path}"),
            Step::Keep(path) => format!("keep {path}"),
            Step::Delete(path) => format!("delete {path}"),
            Step::RemoveDir(path) => format!("rmdir {path}"),
            Step::Barrier => "|".to_owned(),
        }
    }

    /// The steps `plan` gives for `case`, with the puts and the save flag
    /// chosen as `install` and `rollback` choose them.
    fn planned(case: &Case) -> Vec<String> {
        let new = manifest(case.new);
        let (installed, adopted) = match case.old {
            Old::Installed(spec) | Old::InstalledMoving(spec) | Old::RollingBack(spec) => {
                (Some(manifest(spec)), Vec::new())
            }
            Old::Adopted(spec) => {
                (None, spec.iter().map(|s| (rel(s.trim_end_matches('/')), s.ends_with('/'))).collect::<Vec<_>>())
            }
        };
        let old = known_entries(installed.as_ref(), &adopted);
        let puts: Vec<(&RelPath, PutSource, bool)> = match case.old {
            Old::RollingBack(_) => new
                .files()
                .filter(|(path, file)| !matches!(old.get(path), Some(Known::File(Some(now))) if now == file))
                .map(|(path, file)| (path, PutSource::Kept, file.index))
                .collect(),
            _ => ChangeSet::between(installed.as_ref(), &new)
                .to_write()
                .into_iter()
                .map(|(path, file)| (path, PutSource::Staged(staged_name(path)), file.index))
                .collect(),
        };
        let keeping = match case.old {
            Old::Installed(_) => Keeping::UpFront,
            Old::InstalledMoving(_) => Keeping::ByMoving,
            Old::Adopted(_) | Old::RollingBack(_) => Keeping::Nothing,
        };
        plan(&old, &new, &puts, keeping).iter().map(show).collect()
    }

    #[test]
    fn install_plan_table() {
        let mut wrong = Vec::new();
        for case in CASES {
            let steps = planned(case);
            if steps != case.steps {
                wrong.push(format!("{}:\n  expected {:?}\n  planned  {:?}", case.name, case.steps, steps));
            }
        }
        assert!(wrong.is_empty(), "{} of {} plans differ:\n{}", wrong.len(), CASES.len(), wrong.join("\n"));
    }
}
