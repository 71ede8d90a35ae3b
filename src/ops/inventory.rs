//! `ferry inventory`: the components an isolated update source serves (or
//! that devices read from it), as an inventory file for the connected
//! side's `export --inventory` (formats/inventory-v1.md §3).

use crate::backend::Backend;
use crate::error::{Error, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::BTreeSet;

/// What to derive and where to write it.
#[derive(Debug, Clone)]
pub struct InventoryOptions {
    /// Cut each file's path to this many components (at least 1).
    pub depth: usize,
    /// Count only files read after they were written (folder targets).
    pub read: bool,
    /// Write the inventory file here (replaced atomically); `None` only reports.
    pub out: Option<Utf8PathBuf>,
}

/// What inventory found.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryReport {
    /// The update source.
    pub target: String,
    /// Repository installed there.
    pub repository: String,
    /// Sequence installed.
    pub sequence: u64,
    /// Snapshot id installed.
    pub snapshot_id: String,
    /// `installed` (every file of the snapshot) or `read` (files read since written).
    pub method: &'static str,
    /// Files (not index files) that counted.
    pub files: usize,
    /// The patterns, sorted.
    pub patterns: Vec<String>,
    /// The inventory file written, if any.
    pub out: Option<Utf8PathBuf>,
}

/// Derives the inventory from the installed manifest (§3) and writes it.
pub fn inventory(target: &dyn Backend, options: &InventoryOptions, now: jiff::Timestamp) -> Result<InventoryReport> {
    let Some((state, installed)) = crate::install::installed(target)? else {
        return Err(Error::NotInstalled(target.location().into()));
    };
    let root = Utf8PathBuf::from(target.location());
    if options.read && !root.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "--read needs a folder target: `{}` is not one (FTP servers keep their own access logs)",
            target.location()
        )));
    }
    let mut files = 0;
    let mut patterns = BTreeSet::new();
    for (path, file) in installed.manifest().files() {
        if file.index || (options.read && !read_since_written(&path.under(&root))) {
            continue;
        }
        files += 1;
        let cut: Vec<&str> = path.as_str().split('/').take(options.depth.max(1)).collect();
        patterns.insert(cut.join("/"));
    }
    let patterns: Vec<String> = patterns.into_iter().collect();
    if options.read && patterns.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no file at `{}` was read since it was written (or its filesystem is mounted noatime); leave out --read to list what is installed",
            target.location()
        )));
    }
    let comment = format!(
        "ferry inventory {}: {} sequence {} (snapshot {}), {}",
        target.location(),
        state.repository,
        state.sequence,
        state.snapshot.short(),
        crate::clock::format(now)
    );
    if let Some(out) = &options.out {
        crate::fsutil::write_atomic(out, &crate::workflow::inventory::encode(&comment, &patterns))?;
    }
    Ok(InventoryReport {
        target: target.location(),
        repository: state.repository.to_string(),
        sequence: state.sequence,
        snapshot_id: state.snapshot.to_hex(),
        method: if options.read { "read" } else { "installed" },
        files,
        patterns,
        out: options.out.clone(),
    })
}

/// Whether the file was read after it was last written: its access time
/// is later than its modification time (§3).
fn read_since_written(path: &Utf8Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_file() && (m.atime(), m.atime_nsec()) > (m.mtime(), m.mtime_nsec()))
}
