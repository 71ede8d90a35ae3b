//! Delta import (formats/delta-v1.md §6): the checks that a delta applies
//! to what the target holds, and [`DeltaSource`], the [`FileSource`] that
//! serves the files a delta does not carry whole. Patched files are
//! rebuilt before the switch from the installed old version (read through
//! the back end, folder or FTP) and the patch on the medium, each checked
//! (P4) against the signed size and SHA-256 as they are made, into memory
//! or a temporary folder; [`Payload::copy_verified`] writes the bytes held
//! in memory as they were checked, and checks those read back from the
//! folder (and everything the medium carries) again on the way.

use crate::backend::Backend;
use crate::delta::{medium, patch};
use crate::digest::{Digest, copy_hashing};
use crate::error::{Error, IoContext, Result};
use crate::install::change_set::ChangeSet;
use crate::manifest::{FileEntry, Manifest};
use crate::manifest_v3::{Carry, PatchLine};
use crate::ops::import::{ImportOptions, SwitchChoice};
use crate::payload::{FileSource, OpenedFile, Payload};
use crate::rel_path::RelPath;
use crate::report::Progress;
use crate::signing::VerifiedSnapshot;
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// DI2: refuses a delta unless the installed snapshot (`installed`, its
/// id) is one of its bases. Nothing has changed at the target yet.
pub fn check_base(manifest: &Utf8Path, snapshot: &VerifiedSnapshot, installed: Option<(Digest, u64)>) -> Result<()> {
    let Some(delta) = snapshot.delta() else { return Ok(()) };
    if installed.is_some_and(|(id, _)| delta.bases.contains(&id)) {
        return Ok(());
    }
    let needs: Vec<String> = delta.bases.iter().map(Digest::short).collect();
    Err(Error::WrongBase {
        manifest: manifest.to_owned(),
        needs: format!("snapshot {}", needs.join(" or ")),
        holds: match installed {
            Some((id, sequence)) => format!("snapshot {} (sequence {sequence})", id.short()),
            None => "no snapshot installed by ferry".into(),
        },
    })
}

/// DI5: what `--switch auto` means for `snapshot`. A delta changes a few
/// files: the ordered switch renames just those into place under the
/// journal, where the whole-tree switch would hard-link every unchanged
/// file into a new tree and later remove the old one, work that grows with
/// the repository, not with the change (bench/README.md, deltas).
pub fn switch_choice(snapshot: &VerifiedSnapshot, asked: SwitchChoice) -> SwitchChoice {
    match (asked, snapshot.delta()) {
        (SwitchChoice::Auto, Some(_)) => SwitchChoice::Ordered,
        _ => asked,
    }
}

/// DI3: checks that the files the import keeps are still as installed:
/// sizes where the back end answers cheaply, SHA-256 with `--deep` or
/// `--repair` (a file found changed is then written again like a changed
/// one). Refuses, before anything changes, when such a file cannot or may
/// not be written again: a delta does not carry it (`b` or `p`), or
/// `--deep` without `--repair` asked to check, not to mend.
pub fn confirm_kept<'a>(
    target: &dyn Backend,
    (manifest, snapshot): (&Utf8Path, &VerifiedSnapshot),
    installed: Option<&Manifest>,
    changes: &mut ChangeSet<'a>,
    options: &ImportOptions,
) -> Result<()> {
    changes.confirm_in_place(target, options.repair || options.deep)?;
    if installed.is_none() {
        return Ok(());
    }
    let delta = snapshot.delta();
    let refused = |path: &RelPath| {
        (options.deep && !options.repair) || delta.is_some_and(|delta| !delta.serves_any_base(path.as_str()))
    };
    // Files listed alike by both manifests, found changed in place.
    let problems: Vec<String> = changes
        .changed_in_place()
        .filter(|(path, _)| refused(path))
        .map(|(path, file)| match target.file_size(path) {
            Ok(None) => format!("{path}: missing"),
            Ok(Some(size)) if size != file.size => format!("{path}: {size} bytes, installed as {}", file.size),
            _ => format!("{path}: contents differ from the installed manifest"),
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::KeptFilesChanged {
        manifest: manifest.to_owned(),
        target: target.location(),
        problems,
        delta: delta.is_some(),
    })
}

/// Rebuilt files kept in memory by default, in total; the rest are
/// written to a temporary folder (formats/delta-v1.md DI4). An import may
/// set another bound ([`ImportOptions::rebuild_memory`], `--rebuild-memory`).
pub const DEFAULT_REBUILD_MEMORY: u64 = 256 * 1024 * 1024;
/// Files rebuilt at once: each holds its old and its new version (P2).
const REBUILDERS: usize = 2;

/// The payload import reads: `medium` itself for a full snapshot; for a
/// delta, a [`DeltaSource`] with every file the change set needs that the
/// medium does not carry whole rebuilt from the target (DI3, DI4), two at
/// a time, in memory up to `in_memory` bytes in total
/// ([`ImportOptions::rebuild_memory`]), else in a temporary folder.
pub fn payload(
    target: &dyn Backend,
    (manifest_path, snapshot): (&Utf8Path, &VerifiedSnapshot),
    installed: Option<&Manifest>,
    changes: &ChangeSet<'_>,
    (medium, in_memory): (Payload, u64),
    progress: &dyn Progress,
) -> Result<Payload> {
    let (Some(delta), Some(installed)) = (snapshot.delta(), installed) else { return Ok(medium) };
    let before: HashMap<&RelPath, &FileEntry> = installed.files().collect();
    let jobs: Vec<(usize, (&RelPath, &FileEntry))> = changes
        .added()
        .chain(changes.changed())
        .filter(|(path, _)| delta.carry_of(path.as_str()) != Carry::Whole)
        .enumerate()
        .collect();
    let folder =
        tempfile::Builder::new().prefix("ferry-delta-").tempdir().ctx("create", Utf8Path::new("a temporary folder"))?;
    let root = Utf8PathBuf::from_path_buf(folder.path().to_owned())
        .map_err(|p| Error::InvalidArgument(format!("temporary folder `{}` is not UTF-8", p.display())))?;
    let reserved = AtomicU64::new(0);
    let rebuilt = Mutex::new(HashMap::new());
    let workers = REBUILDERS.min(target.parallelism()).max(1);
    let errors = crate::parallel::for_each_with(workers, &jobs, true, |&(n, (path, file))| -> Result<()> {
        let old = before.get(path).copied();
        let bytes = rebuild(target, (manifest_path, delta), &medium, (path, file), old)?;
        let kept = if reserved.fetch_add(file.size, Ordering::Relaxed).saturating_add(file.size) <= in_memory {
            Rebuilt::Memory(bytes, (file.size, file.digest))
        } else {
            let to = root.join(n.to_string());
            std::fs::write(&to, &bytes).ctx("write", &to)?;
            Rebuilt::File(to)
        };
        rebuilt.lock().unwrap_or_else(PoisonError::into_inner).insert(path.clone(), kept);
        Ok(())
    });
    if let Some(error) = errors.into_iter().next() {
        return Err(error);
    }
    crate::crash::point("delta-rebuilt");
    if !jobs.is_empty() {
        progress.notice(&format!(
            "rebuilt {} from the installed snapshot and patches",
            crate::report::counted(jobs.len(), "file", "files")
        ));
    }
    let rebuilt = rebuilt.into_inner().unwrap_or_else(PoisonError::into_inner);
    Ok(Payload::new(DeltaSource { medium, rebuilt, _folder: folder }))
}

/// One file the medium does not carry whole: a compressed file's patch
/// applied to no bytes (D2a), or rebuilt from its installed version `old`:
/// the installed bytes themselves when only its mode changes (`b`), else
/// the patch from that version applied (`p`, P4). The installed bytes must
/// still be the ones the installed manifest lists.
fn rebuild(
    target: &dyn Backend,
    (manifest_path, delta): (&Utf8Path, &crate::manifest_v3::Delta),
    medium: &Payload,
    (path, file): (&RelPath, &FileEntry),
    old: Option<&FileEntry>,
) -> Result<Vec<u8>> {
    let drifted = || Error::WrongBase {
        manifest: manifest_path.to_owned(),
        needs: format!("`{path}` as installed"),
        holds: format!("`{path}` changed or missing since it was installed"),
    };
    if let Some(line) = delta.compressed(path.as_str()) {
        return apply_patch(medium, line, &[], (path, file));
    }
    let old_digest = old.map(|old| old.digest).ok_or_else(drifted)?;
    let limit = patch::MAX_PATCH_INPUT.max(file.size);
    let (read, old) =
        target.read_file(path, limit)?.filter(|(read, _)| read.digest == old_digest).ok_or_else(drifted)?;
    if delta.carry_of(path.as_str()) == Carry::Base {
        // Only its mode changes: the installed bytes are the signed ones,
        // checked here against the new entry itself (DeltaSource::checked_bytes).
        return if (read.size, read.digest) == (file.size, file.digest) { Ok(old) } else { Err(drifted()) };
    }
    let line = delta.patch_for(path.as_str(), &old_digest).ok_or_else(drifted)?;
    apply_patch(medium, line, &old, (path, file))
}

/// The new content of `path`: the patch of `line` from the medium applied
/// to `old`, checked against `file` as it is made (P4).
fn apply_patch(
    medium: &Payload,
    line: &PatchLine,
    old: &[u8],
    (path, file): (&RelPath, &FileEntry),
) -> Result<Vec<u8>> {
    let bytes = read_patch(medium, line)?;
    let mut out = Vec::with_capacity(usize::try_from(file.size).unwrap_or(0));
    patch::apply(old, &mut &bytes[..], file, path.as_path(), &mut out)?;
    Ok(out)
}

/// The patch file of `line` from the medium, checked against its size and
/// SHA-256 (DI4) before it is applied.
fn read_patch(medium: &Payload, line: &PatchLine) -> Result<Vec<u8>> {
    let path = medium::patch_path(line);
    let expected = medium::patch_entry(line);
    let OpenedFile { mut reader, origin, shown_as } = medium.open(&path, &expected)?;
    let mut bytes = Vec::new();
    let seen = copy_hashing(&mut reader.by_ref(), Some(&mut bytes), expected.size, &|_| {}).ctx("read", &origin)?;
    match crate::payload::mismatch(&seen, &expected) {
        Some(problem) => Err(Error::Mismatch { path: shown_as, problem }),
        None => Ok(bytes),
    }
}

/// A file rebuilt before the switch.
#[derive(Debug)]
enum Rebuilt {
    /// Its bytes, checked against the signed size and SHA-256 given as
    /// they were made (P4; a `b` file's installed bytes against its entry).
    Memory(Vec<u8>, (u64, Digest)),
    /// Written to the temporary folder (beyond the memory bound).
    File(Utf8PathBuf),
}

/// Serves rebuilt files from memory or the temporary folder and everything
/// else from the medium. Untrusted like every source:
/// [`Payload::copy_verified`] checks what it gives.
#[derive(Debug)]
pub struct DeltaSource {
    medium: Payload,
    rebuilt: HashMap<RelPath, Rebuilt>,
    /// Removed with the source.
    _folder: tempfile::TempDir,
}

impl FileSource for DeltaSource {
    fn open(&self, path: &RelPath, expected: &FileEntry) -> Result<OpenedFile<'_>> {
        let shown_as = path.as_path().to_owned();
        match self.rebuilt.get(path) {
            None => self.medium.open(path, expected),
            Some(Rebuilt::Memory(bytes, _)) => {
                Ok(OpenedFile { reader: Box::new(&bytes[..]), origin: shown_as.clone(), shown_as })
            }
            Some(Rebuilt::File(from)) => {
                let file = std::fs::File::open(from).ctx("open", from)?;
                Ok(OpenedFile { reader: Box::new(file), origin: from.clone(), shown_as })
            }
        }
    }

    fn read_position(&self, path: &RelPath) -> (usize, u64) {
        if self.rebuilt.contains_key(path) { (0, 0) } else { self.medium.read_position(path) }
    }

    /// Rebuilt bytes in memory were checked against the signed entry as
    /// they were made (P4) and have not changed since: hashing them again
    /// on their way into staging would only repeat that check.
    fn checked_bytes(&self, path: &RelPath, expected: &FileEntry) -> Option<&[u8]> {
        match self.rebuilt.get(path) {
            Some(Rebuilt::Memory(bytes, checked)) if *checked == (expected.size, expected.digest) => Some(bytes),
            _ => None,
        }
    }
}
