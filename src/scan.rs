//! The sorted walk of a source repository.
//!
//! Everything that cannot be carried safely (symlinks, devices, sockets,
//! non-UTF-8 names, names Windows or FAT refuse, names that collide when case
//! is ignored) is collected and refused in one error listing *every*
//! offender, so the operator fixes the tree once instead of once per run.

use crate::error::{Error, Result};
use crate::rel_path::{self, RelPath};
use camino::Utf8Path;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::HashMap;
use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Mutex, PoisonError};

/// Index-file patterns used when the operator names none: update indexes are
/// XML or `.idx` files, or live in an `index` folder.
pub const DEFAULT_INDEX_PATTERNS: &[&str] = &["**/*.xml", "**/*.idx", "**/index/**"];

/// One entry of the source tree, before its content is hashed.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// Path relative to the source root.
    pub path: RelPath,
    /// `None` for a directory, `Some` for a regular file.
    pub file: Option<SourceFile>,
    /// Size, times and identity when walked: export compares them with the
    /// file or folder after reading it, to notice one that changed.
    pub stamp: Stamp,
}

/// What says that a file or folder is still the one the scan saw: size,
/// modification and change times (nanoseconds), device and inode. Writing a
/// file, or adding, removing or renaming an entry of a folder, changes its
/// modification time; a rename over it changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time: seconds and nanoseconds since 1970.
    pub modified: (i64, i64),
    /// Status-change time: seconds and nanoseconds since 1970.
    pub changed: (i64, i64),
    /// Device and inode number.
    pub identity: (u64, u64),
}

impl Stamp {
    /// The stamp of `metadata` (from `lstat` or `fstat`).
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            size: metadata.len(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
            identity: (metadata.dev(), metadata.ino()),
        }
    }

    /// How `now` differs from this stamp, in words; `None` if it does not.
    pub fn difference(&self, now: &Stamp) -> Option<String> {
        if self.identity != now.identity {
            Some("it was replaced by another file".into())
        } else if self.size != now.size {
            Some(format!("its size went from {} to {} bytes", self.size, now.size))
        } else if self.modified != now.modified {
            Some("its modification time changed".into())
        } else if self.changed != now.changed {
            Some("its change time changed".into())
        } else {
            None
        }
    }
}

/// What the walk knows about a regular file.
#[derive(Debug, Clone, Copy)]
pub struct SourceFile {
    /// Size when walked.
    pub size: u64,
    /// Executable bit (any of the three x bits).
    pub executable: bool,
    /// Matches an index pattern.
    pub index: bool,
}

/// Compiles index-file glob patterns.
pub fn index_matcher(patterns: &[String]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("index pattern `{pattern}`: {e}")))?;
        builder.add(glob);
    }
    builder.build().map_err(|e| Error::InvalidArgument(format!("index patterns: {e}")))
}

/// Walks `root` and returns its entries sorted by path bytes, or an error
/// listing every entry that cannot be exported.
///
/// The walk goes one depth at a time, the folders of a depth read on every
/// core; each entry's `lstat` is made relative to its open folder, not by
/// resolving its path from the root again.
pub fn scan(root: &Utf8Path, index: &GlobSet) -> Result<Vec<SourceEntry>> {
    let found = Mutex::new(Found::default());
    let mut depth: Vec<Option<RelPath>> = vec![None];
    while !depth.is_empty() {
        let next = Mutex::new(Vec::new());
        crate::parallel::for_each(&depth, false, |folder| -> Result<(), Infallible> {
            let one = read_folder(root, folder.as_ref(), index);
            let folders: Vec<Option<RelPath>> =
                one.entries.iter().filter(|e| e.file.is_none()).map(|e| Some(e.path.clone())).collect();
            next.lock().unwrap_or_else(PoisonError::into_inner).extend(folders);
            // Moved into the one list at once: a folder's entries are never
            // held twice for long (at a million files, that was 80 MB).
            let mut found = found.lock().unwrap_or_else(PoisonError::into_inner);
            found.entries.extend(one.entries);
            found.problems.extend(one.problems);
            Ok(())
        });
        depth = next.into_inner().unwrap_or_else(PoisonError::into_inner);
    }
    let Found { mut entries, mut problems } = found.into_inner().unwrap_or_else(PoisonError::into_inner);
    // Paths are unique: the unstable sort needs no buffer of half the list.
    entries.sort_unstable_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    if !problems.is_empty() {
        problems.sort();
        return Err(Error::UnexportableSource {
            source_dir: root.to_owned(),
            problems: problems.into_iter().map(|p| rel_path::escape(&p)).collect(),
        });
    }
    Ok(entries)
}

/// What the walk found: entries, and why others cannot be exported.
#[derive(Default)]
struct Found {
    entries: Vec<SourceEntry>,
    problems: Vec<String>,
}

/// The entries of one folder of the source (`None`: the root itself).
fn read_folder(root: &Utf8Path, folder: Option<&RelPath>, index: &GlobSet) -> Found {
    let mut found = Found::default();
    let at = folder.map_or_else(|| root.to_owned(), |folder| folder.under(root));
    let listing = match std::fs::read_dir(&at) {
        Ok(listing) => listing,
        Err(e) => {
            found.problems.push(format!("{at}: cannot read ({e})"));
            return found;
        }
    };
    for item in listing {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                found.problems.push(format!("{at}: cannot read ({e})"));
                continue;
            }
        };
        let name = item.file_name();
        let Some(name) = name.to_str() else {
            let shown = Utf8Path::new(folder.map_or("", |f| f.as_str())).join(name.to_string_lossy().as_ref());
            found.problems.push(format!("{shown}: name is not valid UTF-8"));
            continue;
        };
        let text = match folder {
            Some(folder) => format!("{folder}/{name}"),
            None => name.to_owned(),
        };
        let path = match RelPath::new(&text) {
            Ok(path) => path,
            Err(why) => {
                found.problems.push(why);
                continue;
            }
        };
        // `DirEntry::metadata` is `lstat` relative to the open folder.
        let metadata = match item.metadata() {
            Ok(metadata) => metadata,
            Err(e) => {
                found.problems.push(format!("{path}: cannot read metadata ({e})"));
                continue;
            }
        };
        let kind = metadata.file_type();
        let file = if kind.is_dir() {
            None
        } else if kind.is_file() {
            Some(SourceFile {
                size: metadata.len(),
                executable: metadata.permissions().mode() & 0o111 != 0,
                index: index.is_match(path.as_str()),
            })
        } else {
            let what = if kind.is_symlink() {
                "a symbolic link"
            } else {
                "not a regular file or folder (device, socket or pipe)"
            };
            found.problems.push(format!("{path}: {what}"));
            continue;
        };
        found.entries.push(SourceEntry { path, file, stamp: Stamp::of(&metadata) });
    }
    found.problems.extend(case_collisions(&mut found.entries));
    found
}

/// Names of one folder's `entries` that differ only in case (they collide
/// on FAT, exFAT and NTFS), each named against the first in byte order;
/// sorts `entries`. Paths in two folders can collide only when their
/// folders, or folders above them, do: that pair is named where it is.
fn case_collisions(entries: &mut [SourceEntry]) -> Vec<String> {
    entries.sort_unstable_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    let mut folded: HashMap<String, &RelPath> = HashMap::new();
    let mut problems = Vec::new();
    for entry in entries.iter() {
        if let Some(other) = folded.insert(entry.path.file_name().to_lowercase(), &entry.path) {
            problems.push(format!(
                "{}: differs from `{other}` only in case (they collide on FAT, exFAT and NTFS)",
                entry.path
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_index_patterns_match_at_any_depth() {
        let patterns: Vec<String> = DEFAULT_INDEX_PATTERNS.iter().map(|p| p.to_string()).collect();
        let index = index_matcher(&patterns).unwrap();
        for path in ["master.xml", "data/catalog.xml", "a/b/c.idx", "index/u1313g.dat", "bases/index/x/y.bin"] {
            assert!(index.is_match(path), "{path} should be an index file");
        }
        for path in ["bases/av.dat", "xml", "indexes/a.dat", "a/b.xml.bak"] {
            assert!(!index.is_match(path), "{path} should be a data file");
        }
    }

    /// Every problem is listed at once, sorted: names that differ only in
    /// case (named where they collide: the folders `Docs` and `docs`, not
    /// the files below them), a symbolic link several folders down.
    #[test]
    fn every_unexportable_entry_is_listed_once_sorted() {
        let root = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(root.path()).unwrap();
        for path in ["a/b/Readme.txt", "a/b/README.txt", "a/b/other.txt", "Docs/x.txt", "docs/x.txt", "c/d/e/f.dat"] {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), path).unwrap();
        }
        std::os::unix::fs::symlink("f.dat", root.join("c/d/e/link")).unwrap();
        let index = index_matcher(&[]).unwrap();
        let Err(Error::UnexportableSource { problems, .. }) = scan(root, &index) else { panic!("not refused") };
        assert_eq!(
            problems,
            [
                "a/b/Readme.txt: differs from `a/b/README.txt` only in case (they collide on FAT, exFAT and NTFS)",
                "c/d/e/link: a symbolic link",
                "docs: differs from `Docs` only in case (they collide on FAT, exFAT and NTFS)",
            ]
        );
        std::fs::remove_file(root.join("c/d/e/link")).unwrap();
        for path in ["a/b/Readme.txt", "docs/x.txt"] {
            std::fs::remove_file(root.join(path)).unwrap();
        }
        std::fs::remove_dir(root.join("docs")).unwrap();
        let entries = scan(root, &index).unwrap();
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        let expected =
            ["Docs", "Docs/x.txt", "a", "a/b", "a/b/README.txt", "a/b/other.txt", "c", "c/d", "c/d/e", "c/d/e/f.dat"];
        assert_eq!(paths, expected, "sorted by path bytes");
    }
}
