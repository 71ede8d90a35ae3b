//! What an install changes: the one place that compares the installed
//! manifest with the new one.

use crate::backend::Backend;
use crate::error::Result;
use crate::manifest::{Entry, EntryKind, FileEntry, Manifest};
use crate::rel_path::RelPath;

/// The files of a new snapshot, split by what the installed one had.
///
/// Files are kept as indices into the manifests' entry lists (4 bytes
/// each), found by walking both sorted lists side by side: no map keyed by
/// path, no copy of a path. At a million files a map of either manifest
/// cost tens of megabytes (issue 14).
#[derive(Debug, Clone)]
pub struct ChangeSet<'a> {
    /// The new snapshot's entries.
    new: &'a [Entry],
    /// The installed snapshot's entries (empty for an empty or adopted target).
    installed: &'a [Entry],
    /// Indices into `new.entries` of files the installed snapshot did not have.
    added: Vec<u32>,
    /// Indices into `new.entries` of files whose size, digest or mode
    /// changed; from `listed_changes` on, of files listed alike by both
    /// manifests that the target no longer holds as installed.
    changed: Vec<u32>,
    /// How many of `changed` the manifests differ on.
    listed_changes: usize,
    /// Indices into `new.entries` of files to keep as they are.
    unchanged: Vec<u32>,
    /// Indices into `installed.entries` of files the new snapshot does not list.
    removed: Vec<u32>,
}

/// The files of `entries` with their index in the list.
fn indexed_files(entries: &[Entry]) -> impl Iterator<Item = (u32, &RelPath, &FileEntry)> {
    // The decoder's byte limit keeps a manifest far below 2^32 entries
    // (each line takes at least 6 bytes of MAX_MANIFEST_BYTES).
    entries.iter().enumerate().filter_map(|(n, entry)| entry.file().map(|file| (n as u32, &entry.path, file)))
}

/// The file at `index` of `entries`; the indices a change set holds only
/// ever name files.
fn file_at(entries: &[Entry], index: u32) -> (&RelPath, &FileEntry) {
    let entry = &entries[index as usize];
    match &entry.kind {
        EntryKind::File(file) => (&entry.path, file),
        EntryKind::Dir => unreachable!("a change set indexes files only"),
    }
}

impl<'a> ChangeSet<'a> {
    /// Compares `installed` (none for an empty or adopted target) with `new`.
    /// Both list their entries sorted by path bytes (formats/manifest-v1.md
    /// §4), so one pass over each finds every file's counterpart.
    pub fn between(installed: Option<&'a Manifest>, new: &'a Manifest) -> Self {
        let old_entries = installed.map_or(&[][..], |m| m.entries.as_slice());
        debug_assert!(new.entries.is_sorted_by(|a, b| a.path.as_str().as_bytes() < b.path.as_str().as_bytes()));
        debug_assert!(old_entries.is_sorted_by(|a, b| a.path.as_str().as_bytes() < b.path.as_str().as_bytes()));
        let mut set = ChangeSet {
            new: &new.entries,
            installed: old_entries,
            added: Vec::new(),
            changed: Vec::new(),
            listed_changes: 0,
            unchanged: Vec::new(),
            removed: Vec::new(),
        };
        let mut old = indexed_files(old_entries).peekable();
        for (n, path, file) in indexed_files(&new.entries) {
            let path = path.as_str().as_bytes();
            // Installed files sorted before this one are not in the new snapshot.
            while let Some((gone, _, _)) = old.next_if(|(_, before, _)| before.as_str().as_bytes() < path) {
                set.removed.push(gone);
            }
            match old.next_if(|(_, before, _)| before.as_str().as_bytes() == path) {
                None => set.added.push(n),
                Some((_, _, before)) if before != file => set.changed.push(n),
                Some(_) => set.unchanged.push(n),
            }
        }
        set.removed.extend(old.map(|(gone, _, _)| gone));
        set.listed_changes = set.changed.len();
        set
    }

    /// Files the installed snapshot did not have, in manifest order.
    pub fn added(&self) -> impl ExactSizeIterator<Item = (&'a RelPath, &'a FileEntry)> {
        let new = self.new;
        self.added.iter().map(move |&n| file_at(new, n))
    }

    /// Files whose size, digest or mode changed, then those found no longer
    /// as installed at the target ([`ChangeSet::confirm_in_place`]).
    pub fn changed(&self) -> impl ExactSizeIterator<Item = (&'a RelPath, &'a FileEntry)> {
        let new = self.new;
        self.changed.iter().map(move |&n| file_at(new, n))
    }

    /// Of [`ChangeSet::changed`], the files both manifests list alike: in
    /// it only because the target no longer holds them as installed.
    pub fn changed_in_place(&self) -> impl ExactSizeIterator<Item = (&'a RelPath, &'a FileEntry)> {
        let new = self.new;
        self.changed[self.listed_changes..].iter().map(move |&n| file_at(new, n))
    }

    /// Files to keep as they are.
    pub fn unchanged(&self) -> impl ExactSizeIterator<Item = (&'a RelPath, &'a FileEntry)> {
        let new = self.new;
        self.unchanged.iter().map(move |&n| file_at(new, n))
    }

    /// Files of the installed snapshot that the new one does not list.
    pub fn removed(&self) -> impl ExactSizeIterator<Item = &'a RelPath> {
        let installed = self.installed;
        self.removed.iter().map(move |&n| file_at(installed, n).0)
    }

    /// Moves unchanged files that the target no longer holds as installed
    /// (removed, truncated or edited by hand since) to `changed`, so that
    /// they are written again instead of kept. Sizes are compared where
    /// asking is cheap; `rehash` hashes every kept file as well (`--repair`).
    pub fn confirm_in_place(&mut self, backend: &dyn Backend, rehash: bool) -> Result<()> {
        if !rehash && !backend.capabilities().cheap_metadata {
            return Ok(());
        }
        let sizes = if rehash {
            Vec::new()
        } else {
            backend.file_sizes(&self.unchanged().map(|(path, _)| path).collect::<Vec<_>>())?
        };
        let mut kept = Vec::with_capacity(self.unchanged.len());
        for (k, n) in std::mem::take(&mut self.unchanged).into_iter().enumerate() {
            let (path, file) = file_at(self.new, n);
            let intact = if rehash {
                backend
                    .hash_file(path, file.size)?
                    .is_some_and(|seen| seen.size == file.size && seen.digest == file.digest)
            } else {
                // A size not answered counts as a file to write again.
                sizes.get(k) == Some(&Some(file.size))
            };
            if intact {
                kept.push(n);
            } else {
                self.changed.push(n);
            }
        }
        self.unchanged = kept;
        Ok(())
    }

    /// The files to write: added and changed ones.
    pub fn to_write(&self) -> Vec<(&'a RelPath, &'a FileEntry)> {
        self.added().chain(self.changed()).collect()
    }

    /// Bytes of the files to write.
    pub fn bytes_to_write(&self) -> u64 {
        self.added().chain(self.changed()).map(|(_, file)| file.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Entry, EntryKind};

    fn manifest(files: &[(&str, u64, u8)]) -> Manifest {
        let entries = files
            .iter()
            .map(|(path, size, fill)| Entry {
                path: RelPath::new(path).unwrap(),
                kind: EntryKind::File(FileEntry {
                    size: *size,
                    digest: crate::digest::Digest([*fill; 32]),
                    executable: false,
                    index: false,
                }),
            })
            .collect();
        crate::manifest::for_tests(entries)
    }

    fn names<'a>(list: impl Iterator<Item = (&'a RelPath, &'a FileEntry)>) -> Vec<String> {
        list.map(|(path, _)| path.to_string()).collect()
    }

    #[test]
    fn splits_files_by_what_the_installed_snapshot_had() {
        let old = manifest(&[("a", 1, 1), ("b", 2, 2), ("c", 3, 3)]);
        let new = manifest(&[("a", 1, 1), ("b", 2, 9), ("d", 4, 4)]);
        let set = ChangeSet::between(Some(&old), &new);
        assert_eq!(names(set.added()), ["d"]);
        assert_eq!(names(set.changed()), ["b"]);
        assert_eq!(names(set.unchanged()), ["a"]);
        assert_eq!(set.removed().map(|p| p.to_string()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(set.bytes_to_write(), 6);
        let fresh = ChangeSet::between(None, &new);
        assert_eq!(fresh.added().len(), 3);
        assert_eq!(fresh.removed().len(), 0);
    }

    /// The side-by-side walk meets every ordering case: runs of removed
    /// files before, between and after the new ones, a path that is a
    /// folder on one side and a file on the other, byte order (`a.b` sorts
    /// before `a/b`), and a changed executable flag.
    #[test]
    fn keys_files_by_index_through_both_sorted_lists() {
        let dir = |path: &str| Entry { path: RelPath::new(path).unwrap(), kind: EntryKind::Dir };
        let file = |path: &str, size: u64, executable: bool| Entry {
            path: RelPath::new(path).unwrap(),
            kind: EntryKind::File(FileEntry { size, digest: crate::digest::Digest([1; 32]), executable, index: false }),
        };
        let old = crate::manifest::for_tests(vec![
            file("0", 1, false),
            file("1", 1, false),
            dir("a"),
            file("a.b", 1, false),
            file("a/b", 1, false),
            file("k", 1, false),
            file("m", 1, false),
            file("n", 1, false),
            file("z1", 1, false),
            file("z2", 1, false),
        ]);
        let new = crate::manifest::for_tests(vec![
            dir("a"),
            file("a.b", 1, true),
            file("a/b", 1, false),
            file("a/c", 1, false),
            dir("k"),
            file("k/x", 1, false),
            file("n", 2, false),
            file("y", 1, false),
        ]);
        let set = ChangeSet::between(Some(&old), &new);
        assert_eq!(names(set.added()), ["a/c", "k/x", "y"]);
        assert_eq!(names(set.changed()), ["a.b", "n"]);
        assert_eq!(names(set.unchanged()), ["a/b"]);
        let removed: Vec<String> = set.removed().map(|p| p.to_string()).collect();
        assert_eq!(removed, ["0", "1", "k", "m", "z1", "z2"]);
        assert_eq!(set.changed_in_place().len(), 0);
        assert_eq!(names(set.to_write().into_iter()), ["a/c", "k/x", "y", "a.b", "n"]);
        // The same manifest on both sides changes nothing.
        let same = ChangeSet::between(Some(&new), &new);
        assert_eq!((same.added().len(), same.changed().len(), same.removed().len()), (0, 0, 0));
        assert_eq!(same.unchanged().len(), 6);
    }
}
