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
    let mut found = Found::default();
    let mut depth: Vec<Option<RelPath>> = vec![None];
    while !depth.is_empty() {
        let read = Mutex::new(Vec::with_capacity(depth.len()));
        crate::parallel::for_each(&depth, false, |folder| -> Result<(), Infallible> {
            let one = read_folder(root, folder.as_ref(), index);
            read.lock().unwrap_or_else(PoisonError::into_inner).push(one);
            Ok(())
        });
        let mut next = Vec::new();
        for one in read.into_inner().unwrap_or_else(PoisonError::into_inner) {
            next.extend(one.entries.iter().filter(|e| e.file.is_none()).map(|e| Some(e.path.clone())));
            found.entries.extend(one.entries);
            found.problems.extend(one.problems);
        }
        depth = next;
    }
    let Found { mut entries, mut problems } = found;
    entries.sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    let mut folded: HashMap<String, &RelPath> = HashMap::new();
    for entry in &entries {
        if let Some(other) = folded.insert(entry.path.as_str().to_lowercase(), &entry.path) {
            problems.push(format!(
                "{}: differs from `{other}` only in case (they collide on FAT, exFAT and NTFS)",
                entry.path
            ));
        }
    }
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
    found
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
}
