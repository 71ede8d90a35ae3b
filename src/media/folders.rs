//! Folders of a payload tree kept open while its files are read.
//!
//! [`beneath::Dir::open_file`] reaches a file from its root one component
//! at a time (no link followed), which costs an `openat` and a `close` per
//! folder on the way, for every file. Files of one folder mostly follow
//! each other, so verify and import open each file's folder once and keep
//! the last few open: the file itself is then one `lstat`, `openat`,
//! `fstat` and `fcntl` away.

use crate::beneath::Dir;
use crate::error::Result;
use camino::{Utf8Path, Utf8PathBuf};
use std::fs::File;
use std::sync::{Arc, Mutex};

/// Folders below one root opened for recent files, shared by the workers.
#[derive(Debug, Default)]
pub(crate) struct FolderCache {
    kept: Mutex<Vec<(Utf8PathBuf, Arc<Dir>)>>,
}

impl FolderCache {
    /// Folders kept: a few per worker.
    const KEEP: usize = 8;

    /// Opens the regular file `relative` below `root` as
    /// [`Dir::open_file`] does, through its folder when that is kept. A
    /// folder that cannot be opened is left to [`Dir::open_file`], so the
    /// error is the same as without the cache.
    pub(crate) fn open_file(&self, root: &Dir, relative: &Utf8Path) -> Result<File> {
        let (Some(parent), Some(name)) = (relative.parent(), relative.file_name()) else {
            return root.open_file(relative);
        };
        if parent.as_str().is_empty() {
            return root.open_file(relative);
        }
        let folder = match self.find(parent) {
            Some(folder) => folder,
            None => match root.open(parent) {
                Ok(folder) => self.keep(parent, folder),
                Err(_) => return root.open_file(relative),
            },
        };
        folder.open_file(Utf8Path::new(name))
    }

    fn find(&self, relative: &Utf8Path) -> Option<Arc<Dir>> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().rev().find(|(path, _)| path == relative).map(|(_, dir)| Arc::clone(dir))
    }

    fn keep(&self, relative: &Utf8Path, folder: Dir) -> Arc<Dir> {
        let folder = Arc::new(folder);
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= Self::KEEP {
            kept.remove(0);
        }
        kept.push((relative.to_owned(), Arc::clone(&folder)));
        folder
    }
}
