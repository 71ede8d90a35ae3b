//! Filesystem steps that every writer needs, each adding the path to its
//! error: write-then-rename, directory fsync, filesystem-wide sync and
//! dropping a file from the page cache.

use crate::error::{IoContext, Result};
use camino::Utf8Path;
use std::fs::{File, OpenOptions};
use std::io::Write;

/// Writes `bytes` to `path` so that readers see the old content or the new,
/// never a part: a temporary file in the same directory (a rename across
/// filesystems would be a copy), fsync, rename, fsync the directory.
pub fn write_atomic(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    // A bare file name has the parent "", which no call can open.
    let dir = path.parent().filter(|dir| !dir.as_str().is_empty()).unwrap_or(Utf8Path::new("."));
    let name = path.file_name().unwrap_or("file");
    let temporary = dir.join(format!(".{name}.ferry-tmp"));
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).open(&temporary).ctx("create", &temporary)?;
    file.write_all(bytes).ctx("write", &temporary)?;
    file.sync_all().ctx("flush", &temporary)?;
    drop(file);
    std::fs::rename(&temporary, path).ctx("rename into place", path)?;
    sync_dir(dir)
}

/// Makes a directory's entries (creations, renames) durable.
pub fn sync_dir(dir: &Utf8Path) -> Result<()> {
    let handle = File::open(dir).ctx("open folder", dir)?;
    // Some FUSE and network filesystems refuse fsync on a directory; their
    // durability is whatever the server gives, and there is nothing to add.
    match handle.sync_all() {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => Ok(()),
        other => other.ctx("flush folder", dir),
    }
}

/// Flushes everything written to the filesystem holding `path` in one call:
/// much cheaper than an fsync per file when thousands were written.
pub fn sync_filesystem(path: &Utf8Path) -> Result<()> {
    let handle = File::open(path).ctx("open", path)?;
    rustix::fs::syncfs(&handle).map_err(std::io::Error::from).ctx("flush the filesystem of", path)
}

/// Asks the kernel to forget cached pages of `file` so the next read comes
/// from the device (read-back after export). Best effort: a filesystem that
/// ignores the advice is read from the cache.
pub fn drop_cache(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// Creates `path` and its parents if missing.
pub fn create_dir_all(path: &Utf8Path) -> Result<()> {
    std::fs::create_dir_all(path).ctx("create folder", path)
}

/// Removes a directory tree if it exists.
pub fn remove_tree(path: &Utf8Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.ctx("remove", path),
    }
}

/// Removes a file if it exists.
pub fn remove_file(path: &Utf8Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.ctx("remove", path),
    }
}

/// Reads a file that may be absent.
pub fn read_optional(path: &Utf8Path, cap: u64) -> Result<Option<Vec<u8>>> {
    match read_capped(path, cap) {
        Err(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        other => other.map(Some),
    }
}

/// Reads a small file, refusing one larger than `cap` bytes.
pub(crate) fn read_capped(path: &Utf8Path, cap: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ctx("open", path)?;
    // Refuse an oversized regular file before reading a byte of it; the
    // capped read below still guards files whose size lies (pipes, /proc).
    let size = file.metadata().ctx("inspect", path)?.len();
    if size > cap {
        return Err(crate::Error::format(path, format!("larger than the {cap}-byte limit")));
    }
    // Sized to the file: no doubling for a manifest of a million files.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes).ctx("read", path)?;
    if bytes.len() as u64 > cap {
        return Err(crate::Error::format(path, format!("larger than the {cap}-byte limit")));
    }
    Ok(bytes)
}
