//! What a delta's medium carries (formats/delta-v1.md §5): the folders, the
//! files carried whole, then the patch files under the reserved root
//! `.ferry/patches/SHA256`. Export writes exactly this list, and verify,
//! read-back and import check the medium against it ([`view`]), tree or
//! tar alike: it is the allow-list of the medium as the complete manifest
//! is the allow-list of the target.

use crate::beneath::Dir;
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::manifest::{Entry, EntryKind, FileEntry, Manifest};
use crate::manifest_v3::{Carry, PatchLine, SnapshotManifest};
use crate::media::SnapshotDir;
use crate::rel_path::RelPath;
use crate::report::Progress;
use crate::signing::VerifiedSnapshot;
use crate::volume::VolumeWriter;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write;

/// DI6: of the trusted snapshots of one repository that drives offer, the
/// one to install over the snapshot `installed`: the newest that applies
/// to it (a full snapshot, a delta naming it as a base, or itself), else
/// the newest, whose refusal then says what it needs. When it passes over
/// newer snapshots or chooses among several, it says which it took.
pub fn pick(
    mut offered: Vec<(SnapshotDir, VerifiedSnapshot)>,
    installed: Option<Digest>,
    progress: &dyn Progress,
) -> Option<(SnapshotDir, VerifiedSnapshot)> {
    offered.sort_by_key(|(_, snapshot)| std::cmp::Reverse(snapshot.manifest().sequence));
    let applies = |snapshot: &VerifiedSnapshot| {
        installed.is_some_and(|id| id == snapshot.id())
            || snapshot.delta().is_none_or(|delta| installed.is_some_and(|id| delta.bases.contains(&id)))
    };
    let at = offered.iter().position(|(_, snapshot)| applies(snapshot)).unwrap_or(0);
    if offered.len() > 1 {
        let snapshot = &offered[at].1;
        let what = match (snapshot.delta(), at) {
            _ if installed == Some(snapshot.id()) => "the snapshot installed".to_owned(),
            (Some(_), _) => "a delta from the snapshot installed".to_owned(),
            (None, 0) => "a full snapshot".to_owned(),
            (None, _) => format!(
                "a full snapshot; the newer {} on the drives apply to other snapshots than the one installed",
                crate::report::counted(at, "delta", "deltas")
            ),
        };
        let count = offered.len();
        progress.attention(&format!(
            "chose sequence {} of the {count} on the drives: {what}",
            snapshot.manifest().sequence
        ));
    }
    (at < offered.len()).then(|| offered.swap_remove(at))
}

/// Where a patch file is on the medium (DM1, DM2).
pub fn patch_path(patch: &PatchLine) -> RelPath {
    RelPath::reserved(&format!("patches/{}", patch.digest))
}

/// The entry a patch file must match on the medium.
pub fn patch_entry(patch: &PatchLine) -> FileEntry {
    FileEntry { size: patch.size, digest: patch.digest, executable: false, index: false }
}

/// The entries the medium of `snapshot` holds, in the order export writes
/// them; the manifest itself for a full snapshot.
pub fn view(snapshot: &SnapshotManifest) -> Cow<'_, Manifest> {
    let Some(delta) = &snapshot.delta else { return Cow::Borrowed(&snapshot.manifest) };
    let manifest = &snapshot.manifest;
    let mut entries: Vec<Entry> = manifest
        .entries
        .iter()
        .filter(|entry| matches!(entry.kind, EntryKind::Dir) || delta.carry_of(entry.path.as_str()) == Carry::Whole)
        .cloned()
        .collect();
    // One file per distinct patch, by digest (two patch lines may share one).
    let mut seen = BTreeSet::new();
    let patches: Vec<&PatchLine> = delta.patches.iter().filter(|p| seen.insert(p.digest.0)).collect();
    if !patches.is_empty() {
        entries.push(Entry { path: RelPath::reserved(""), kind: EntryKind::Dir });
        entries.push(Entry { path: RelPath::reserved("patches"), kind: EntryKind::Dir });
        let mut files: Vec<Entry> =
            patches.iter().map(|p| Entry { path: patch_path(p), kind: EntryKind::File(patch_entry(p)) }).collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        entries.extend(files);
    }
    Cow::Owned(Manifest {
        repository: manifest.repository.clone(),
        sequence: manifest.sequence,
        created: manifest.created,
        expires: manifest.expires,
        layout: manifest.layout.clone(),
        entries,
    })
}

/// Writes the patch files into a tree medium's `payload/` (DM1).
pub fn write_patches(payload: &Dir, patches: &[(RelPath, &[u8])]) -> Result<()> {
    if patches.is_empty() {
        return Ok(());
    }
    let folder = payload.create(RelPath::reserved("patches").as_path())?;
    for (path, bytes) in patches {
        let mut file = folder.create_file(path.file_name())?;
        let to = path.under(payload.path());
        file.write_all(bytes).ctx("write", &to)?;
        file.sync_all().ctx("write", &to)?;
    }
    Ok(())
}

/// Adds the patch files to tar volumes after every file (DM2).
pub fn add_patches(writer: &mut VolumeWriter, patches: &[(RelPath, &[u8])]) -> Result<()> {
    if patches.is_empty() {
        return Ok(());
    }
    writer.add_dir(&RelPath::reserved(""))?;
    writer.add_dir(&RelPath::reserved("patches"))?;
    for (path, bytes) in patches {
        writer.add_file(path, bytes.len() as u64, false, &mut &bytes[..], path.as_path(), &|_| {})?;
    }
    Ok(())
}
