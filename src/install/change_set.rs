//! What an install changes: the one place that compares the installed
//! manifest with the new one.

use crate::backend::Backend;
use crate::error::Result;
use crate::manifest::{FileEntry, Manifest};
use crate::rel_path::RelPath;
use std::collections::{HashMap, HashSet};

/// The files of a new snapshot, split by what the installed one had.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet<'a> {
    /// Files the installed snapshot did not have.
    pub added: Vec<(&'a RelPath, &'a FileEntry)>,
    /// Files whose size, digest or mode changed, or that the target no
    /// longer holds as installed.
    pub changed: Vec<(&'a RelPath, &'a FileEntry)>,
    /// Files to keep as they are.
    pub unchanged: Vec<(&'a RelPath, &'a FileEntry)>,
    /// Files of the installed snapshot that the new one does not list.
    pub removed: Vec<&'a RelPath>,
}

impl<'a> ChangeSet<'a> {
    /// Compares `installed` (none for an empty or adopted target) with `new`.
    pub fn between(installed: Option<&'a Manifest>, new: &'a Manifest) -> Self {
        let old: HashMap<&RelPath, &FileEntry> = installed.map(|m| m.files().collect()).unwrap_or_default();
        let mut set = ChangeSet::default();
        for (path, file) in new.files() {
            match old.get(path) {
                None => set.added.push((path, file)),
                Some(before) if *before != file => set.changed.push((path, file)),
                Some(_) => set.unchanged.push((path, file)),
            }
        }
        let new_paths: HashSet<&RelPath> = new.files().map(|(path, _)| path).collect();
        if let Some(installed) = installed {
            set.removed = installed.files().map(|(path, _)| path).filter(|path| !new_paths.contains(path)).collect();
        }
        set
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
            backend.file_sizes(&self.unchanged.iter().map(|(path, _)| *path).collect::<Vec<_>>())?
        };
        let mut kept = Vec::with_capacity(self.unchanged.len());
        for (n, (path, file)) in std::mem::take(&mut self.unchanged).into_iter().enumerate() {
            let intact = if rehash {
                backend
                    .hash_file(path, file.size)?
                    .is_some_and(|seen| seen.size == file.size && seen.digest == file.digest)
            } else {
                sizes[n] == Some(file.size)
            };
            if intact {
                kept.push((path, file));
            } else {
                self.changed.push((path, file));
            }
        }
        self.unchanged = kept;
        Ok(())
    }

    /// The files to write: added and changed ones.
    pub fn to_write(&self) -> Vec<(&'a RelPath, &'a FileEntry)> {
        self.added.iter().chain(&self.changed).copied().collect()
    }

    /// Bytes of the files to write.
    pub fn bytes_to_write(&self) -> u64 {
        self.added.iter().chain(&self.changed).map(|(_, file)| file.size).sum()
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

    #[test]
    fn splits_files_by_what_the_installed_snapshot_had() {
        let old = manifest(&[("a", 1, 1), ("b", 2, 2), ("c", 3, 3)]);
        let new = manifest(&[("a", 1, 1), ("b", 2, 9), ("d", 4, 4)]);
        let set = ChangeSet::between(Some(&old), &new);
        let names = |list: &[(&RelPath, &FileEntry)]| list.iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&set.added), ["d"]);
        assert_eq!(names(&set.changed), ["b"]);
        assert_eq!(names(&set.unchanged), ["a"]);
        assert_eq!(set.removed.iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(set.bytes_to_write(), 6);
        let fresh = ChangeSet::between(None, &new);
        assert_eq!(fresh.added.len(), 3);
        assert!(fresh.removed.is_empty());
    }
}
