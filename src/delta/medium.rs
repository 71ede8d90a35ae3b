//! What a delta's medium carries (formats/delta-v1.md §5): the folders, the
//! files carried whole, then the patch files under the reserved root
//! `.ferry/patches/SHA256`. Export writes exactly this list, and verify,
//! read-back and import check the medium against it ([`view`]), tree or
//! tar alike: it is the allow-list of the medium as the complete manifest
//! is the allow-list of the target.

use crate::beneath::Dir;
use crate::error::{IoContext, Result};
use crate::manifest::{Entry, EntryKind, FileEntry, Manifest};
use crate::manifest_v3::{Carry, PatchLine, SnapshotManifest};
use crate::rel_path::RelPath;
use crate::volume::VolumeWriter;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write;

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
