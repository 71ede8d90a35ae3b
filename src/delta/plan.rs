//! What changed between two snapshots, file by file: the base of `ferry
//! diff` ([`compare`]) and of what a delta carries for one or several bases
//! ([`plan_carry`], formats/delta-v1.md §3).

use crate::delta::patch;
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::{FileEntry, Manifest};
use crate::manifest_v3::{Carry, PatchLine};
use crate::rel_path::RelPath;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

/// A file that differs between the old and the new snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Its path.
    pub path: String,
    /// Size in the old snapshot (`None`: added).
    pub old_size: Option<u64>,
    /// Size in the new snapshot (`None`: removed).
    pub new_size: Option<u64>,
    /// Only the executable flag changed: nothing to carry.
    pub mode_only: bool,
}

/// Files added, removed and changed from `old` to `new`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// In `new` only.
    pub added: Vec<FileChange>,
    /// In `old` only.
    pub removed: Vec<FileChange>,
    /// In both, with other content or mode.
    pub changed: Vec<FileChange>,
    /// In both, identical.
    pub unchanged: usize,
}

impl Comparison {
    /// Bytes a delta carries when every added or changed file ships whole.
    pub fn whole_bytes(&self) -> u64 {
        self.added.iter().chain(self.changed.iter().filter(|c| !c.mode_only)).filter_map(|c| c.new_size).sum()
    }
}

/// Compares two file lists (path and entry), each in any order.
pub fn compare<'a>(
    old: impl IntoIterator<Item = (&'a RelPath, &'a FileEntry)>,
    new: impl IntoIterator<Item = (&'a RelPath, &'a FileEntry)>,
) -> Comparison {
    let old: BTreeMap<&str, &FileEntry> = old.into_iter().map(|(p, f)| (p.as_str(), f)).collect();
    let new: BTreeMap<&str, &FileEntry> = new.into_iter().map(|(p, f)| (p.as_str(), f)).collect();
    let mut comparison = Comparison::default();
    for (path, file) in &new {
        let change =
            |old_size| FileChange { path: path.to_string(), old_size, new_size: Some(file.size), mode_only: false };
        match old.get(path) {
            None => comparison.added.push(change(None)),
            Some(before) if before.digest != file.digest => comparison.changed.push(change(Some(before.size))),
            Some(before) if before.executable != file.executable => {
                comparison.changed.push(FileChange { mode_only: true, ..change(Some(before.size)) })
            }
            Some(_) => comparison.unchanged += 1,
        }
    }
    for (path, file) in old.iter().filter(|(path, _)| !new.contains_key(*path)) {
        comparison.removed.push(FileChange {
            path: path.to_string(),
            old_size: Some(file.size),
            new_size: None,
            mode_only: false,
        });
    }
    comparison
}

/// A patch line and the patch's bytes.
pub type PlannedPatch = (PatchLine, Vec<u8>);

/// What a delta from some bases to a new snapshot carries (§3).
#[derive(Debug, Clone, Default)]
pub struct CarryPlan {
    /// Files some base lacks, by path: carried whole or patched (absent:
    /// left to the bases, `b`). Most files of a day's delta are left to
    /// the bases: a million of them would be a million owned paths here.
    pub carry: BTreeMap<String, Carry>,
    /// The patches, sorted by (path, from), with their bytes.
    pub patches: Vec<PlannedPatch>,
    /// Bytes of the files carried whole.
    pub whole_bytes: u64,
}

impl CarryPlan {
    /// Bytes of all patches.
    pub fn patch_bytes(&self) -> u64 {
        self.patches.iter().map(|(line, _)| line.size).sum()
    }
}

/// Gives the old version of a file by its SHA-256 when the exporter still
/// has it (`None`: no patch from it). Called from several threads.
pub type OldContent<'a> = dyn Fn(&Digest) -> Result<Option<Vec<u8>>> + Sync + 'a;
/// Gives the new version of a file, borrowed when already in memory.
/// Called from several threads.
pub type NewContent<'a, 'c> = dyn Fn(&RelPath) -> Result<Cow<'c, [u8]>> + Sync + 'a;

/// Files above this size are patched one at a time: each holds its old and
/// new version and a zstd window of about their size.
const LARGE_FILE: u64 = patch::MAX_PATCH_INPUT / 8;

/// A file some base lacks with this content, of at most the patch limit:
/// patched or compressed if that pays, else carried whole.
struct Candidate<'m> {
    path: &'m RelPath,
    file: &'m FileEntry,
    /// SHA-256 of the bases' versions that differ.
    differing: BTreeSet<[u8; 32]>,
    /// Some base lacks the path: no patch serves it.
    missing: bool,
}

/// Decides for every file of `new` whether a delta from `bases` carries it
/// whole, leaves it to the bases (DW1), patches it from each base's
/// version (DW2) or compresses it (DW3, D2a). Patches are made on every
/// core; the plan is the same whatever the order they finish in (DW6).
/// Each base goes straight to `new` (DW4).
pub fn plan_carry<'m>(
    new: impl IntoIterator<Item = (&'m RelPath, &'m FileEntry)>,
    bases: &[&Manifest],
    old_content: &OldContent<'_>,
    new_content: &NewContent<'_, '_>,
) -> Result<CarryPlan> {
    let mut plan = CarryPlan::default();
    let mut candidates = Vec::new();
    for (path, file) in new {
        let mut differing = BTreeSet::new();
        let mut missing = false;
        for base in bases {
            match base.file_at(path.as_str()) {
                Some(old) if old.digest == file.digest => {}
                Some(old) => {
                    differing.insert(old.digest.0);
                }
                None => missing = true,
            }
        }
        if differing.is_empty() && !missing {
            continue;
        }
        if file.size > patch::MAX_PATCH_INPUT {
            plan.carry.insert(path.to_string(), Carry::Whole);
            plan.whole_bytes += file.size;
        } else {
            candidates.push(Candidate { path, file, differing, missing });
        }
    }
    let made = Mutex::new(Vec::with_capacity(candidates.len()));
    let large_file_turn = Mutex::new(());
    let errors =
        crate::parallel::for_each(&candidates.iter().enumerate().collect::<Vec<_>>(), true, |&(n, candidate)| {
            // One large file at a time: memory stays that of the serial
            // plan (P2), while small files go on beside it.
            let _turn = (candidate.file.size > LARGE_FILE)
                .then(|| large_file_turn.lock().unwrap_or_else(PoisonError::into_inner));
            let patches = patches_or_compressed(candidate, old_content, new_content)?;
            made.lock().unwrap_or_else(PoisonError::into_inner).push((n, patches));
            Ok(())
        });
    if let Some(error) = errors.into_iter().next() {
        return Err(error);
    }
    let mut made = made.into_inner().unwrap_or_else(PoisonError::into_inner);
    made.sort_by_key(|(n, _)| *n);
    for (candidate, (_, patches)) in candidates.iter().zip(made) {
        match patches {
            Some(patches) => {
                plan.carry.insert(candidate.path.to_string(), Carry::Patched);
                plan.patches.extend(patches);
            }
            None => {
                plan.carry.insert(candidate.path.to_string(), Carry::Whole);
                plan.whole_bytes += candidate.file.size;
            }
        }
    }
    Ok(plan)
}

/// The patches of `candidate` from each base's version (DW2), else its
/// compressed form (DW3), else `None`: it ships whole.
fn patches_or_compressed(
    candidate: &Candidate<'_>,
    old_content: &OldContent<'_>,
    new_content: &NewContent<'_, '_>,
) -> Result<Option<Vec<PlannedPatch>>> {
    let Candidate { path, file, differing, missing } = candidate;
    let new_bytes = new_content(path)?;
    if !missing && let Some(patches) = patches_for(path, file, differing, old_content, &new_bytes)? {
        return Ok(Some(patches));
    }
    let Some(made) = patch::compress(&new_bytes)? else { return Ok(None) };
    let line = PatchLine {
        size: made.len() as u64,
        digest: Digest::of(&made),
        from: patch::FROM_NOTHING,
        path: (*path).clone(),
    };
    Ok(Some(vec![(line, made)]))
}

/// Patches from each differing old version to `new_bytes`, or `None` when
/// one of them cannot be had or patched, or all together are not worth it
/// (DW2).
fn patches_for(
    path: &RelPath,
    file: &FileEntry,
    differing: &BTreeSet<[u8; 32]>,
    old_content: &OldContent<'_>,
    new_bytes: &[u8],
) -> Result<Option<Vec<PlannedPatch>>> {
    let mut patches = Vec::new();
    for from in differing.iter().map(|bytes| Digest(*bytes)) {
        let Some(old) = old_content(&from)? else { return Ok(None) };
        let Some(made) = patch::make(&old, new_bytes)? else { return Ok(None) };
        let line = PatchLine { size: made.len() as u64, digest: Digest::of(&made), from, path: path.clone() };
        patches.push((line, made));
    }
    let total: u64 = patches.iter().map(|(line, _)| line.size).sum();
    Ok(patch::worth_shipping(total, file.size).then_some(patches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_removed_changed_and_mode_only() {
        let entry = |size, byte, executable| FileEntry { size, digest: Digest([byte; 32]), executable, index: false };
        let path = |text: &str| RelPath::new(text).unwrap();
        let old = [(path("a"), entry(1, 1, false)), (path("b"), entry(2, 2, false)), (path("c"), entry(3, 3, false))];
        let new = [(path("a"), entry(1, 1, true)), (path("b"), entry(5, 9, false)), (path("d"), entry(4, 4, false))];
        let comparison = compare(old.iter().map(|(p, f)| (p, f)), new.iter().map(|(p, f)| (p, f)));
        assert_eq!(comparison.added.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["d"]);
        assert_eq!(comparison.removed.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(comparison.changed.len(), 2);
        assert!(comparison.changed.iter().any(|c| c.path == "a" && c.mode_only));
        assert_eq!(comparison.whole_bytes(), 4 + 5);
    }

    /// Three sites at days 2, 5 and 8 and the repository at day 10: one plan
    /// serves all three, carrying the union of what each lacks.
    #[test]
    fn one_plan_serves_several_bases() {
        use crate::manifest::{Entry, EntryKind, Layout, RepositoryId};
        // Pseudo-random bytes (xorshift): they do not compress (DW3).
        let version = |day: u8, seed: u64| -> Vec<u8> {
            let mut x = seed;
            let mut bytes: Vec<u8> = (0..200_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            bytes[day as usize * 1000..day as usize * 1000 + 500].fill(day);
            bytes
        };
        // stable.dat never changes; daily.dat changes every day; new.dat
        // appears on day 6, so the day-5 site lacks it.
        let contents = |day: u8| -> Vec<(&'static str, Vec<u8>)> {
            let mut files = vec![("daily.dat", version(day, 31)), ("stable.dat", version(0, 17))];
            if day >= 6 {
                files.push(("new.dat", version(6, 5)));
            }
            files.sort();
            files
        };
        let manifest = |day: u8| Manifest {
            repository: RepositoryId::new("av").unwrap(),
            sequence: u64::from(day),
            created: crate::clock::parse("2026-12-05T12:00:00Z").unwrap(),
            expires: None,
            layout: Layout::Tree,
            entries: contents(day)
                .into_iter()
                .map(|(path, bytes)| Entry {
                    path: RelPath::new(path).unwrap(),
                    kind: EntryKind::File(patch::entry_of(&bytes)),
                })
                .collect(),
        };
        let (day2, day5, day8, day10) = (manifest(2), manifest(5), manifest(8), manifest(10));
        let old: BTreeMap<Digest, Vec<u8>> =
            [2, 5, 8].into_iter().flat_map(contents).map(|(_, bytes)| (Digest::of(&bytes), bytes)).collect();
        let new: BTreeMap<&str, Vec<u8>> = contents(10).into_iter().collect();
        let plan = plan_carry(day10.files(), &[&day2, &day5, &day8], &|digest| Ok(old.get(digest).cloned()), &|path| {
            Ok(Cow::Borrowed(&new[path.as_str()]))
        })
        .unwrap();
        assert_eq!(plan.carry.get("stable.dat"), None, "left to the bases");
        assert_eq!(plan.carry.get("daily.dat"), Some(&Carry::Patched));
        assert_eq!(plan.carry.get("new.dat"), Some(&Carry::Whole), "the day-5 site lacks it");
        assert_eq!(plan.whole_bytes, 200_000);
        let froms: Vec<Digest> = plan.patches.iter().map(|(line, _)| line.from).collect();
        assert_eq!(froms.len(), 3, "one patch per site's version of daily.dat");
        // Each patch turns its site's version into day 10's, byte for byte.
        for (line, bytes) in &plan.patches {
            let mut out = Vec::new();
            let entry = patch::entry_of(&new["daily.dat"]);
            patch::apply(&old[&line.from], &mut &bytes[..], &entry, camino::Utf8Path::new("daily.dat"), &mut out)
                .unwrap();
            assert_eq!(out, new["daily.dat"]);
        }
        // Without the old versions the exporter ships whole files.
        let whole =
            plan_carry(day10.files(), &[&day2], &|_| Ok(None), &|path| Ok(Cow::Borrowed(&new[path.as_str()]))).unwrap();
        assert_eq!((whole.patches.len(), whole.whole_bytes), (0, 400_000));
    }

    /// A file no patch serves (the base lacks it, or the exporter lacks
    /// the base's version) is compressed when that pays (DW3, D2a): one
    /// patch from no bytes, whatever the bases hold.
    #[test]
    fn files_without_a_patch_are_compressed_when_they_shrink() {
        use crate::manifest::{Entry, EntryKind, Layout, RepositoryId};
        let text =
            |n: usize| -> Vec<u8> { (0..n).flat_map(|i| format!("<entry id=\"{i}\"/>\n").into_bytes()).collect() };
        let manifest = |files: &[(&str, &[u8])]| Manifest {
            repository: RepositoryId::new("av").unwrap(),
            sequence: files.len() as u64,
            created: crate::clock::parse("2026-12-05T12:00:00Z").unwrap(),
            expires: None,
            layout: Layout::Tree,
            entries: files
                .iter()
                .map(|(path, bytes)| Entry {
                    path: RelPath::new(path).unwrap(),
                    kind: EntryKind::File(patch::entry_of(bytes)),
                })
                .collect(),
        };
        let (old_index, new_index, added) = (text(3000), text(3100), text(2000));
        let base = manifest(&[("index.xml", &old_index)]);
        let new = manifest(&[("added.xml", &added), ("index.xml", &new_index)]);
        let contents: BTreeMap<&str, &[u8]> = [("added.xml", &added[..]), ("index.xml", &new_index[..])].into();
        let plan = plan_carry(new.files(), &[&base], &|_| Ok(None), &|path| Ok(Cow::Borrowed(contents[path.as_str()])))
            .unwrap();
        assert_eq!(plan.whole_bytes, 0);
        for (path, bytes) in contents {
            assert_eq!(plan.carry.get(path), Some(&Carry::Patched), "{path}");
            let lines: Vec<_> = plan.patches.iter().filter(|(line, _)| line.path.as_str() == path).collect();
            assert_eq!(lines.len(), 1, "{path}");
            let (line, made) = lines[0];
            assert_eq!(line.from, patch::FROM_NOTHING);
            let mut out = Vec::new();
            patch::apply(&[], &mut &made[..], &patch::entry_of(bytes), camino::Utf8Path::new(path), &mut out).unwrap();
            assert_eq!(out, bytes);
        }
    }
}
