//! Paths below a root that ferry does not trust, resolved without following
//! symbolic links (formats/threat-model.md §7).
//!
//! A drive travels and is formatted by whoever handed it over: below the
//! folder named on the command line it may hold symbolic links (to folders
//! of the host ferry runs on), FIFOs, sockets, devices, or a folder where a
//! file belongs. A [`Dir`] is an open folder reached from such a root one
//! component at a time with `openat(O_NOFOLLOW | O_DIRECTORY)`, so every
//! file ferry creates, renames, removes or reads through it lies below the
//! root, whatever the drive holds. The root itself may be a link (operators
//! use `/media/usb` links); nothing below it may be. Files are opened
//! non-blocking and checked with `fstat` to be regular before a byte is
//! read, so a FIFO can never make a command hang.

use crate::error::{Error, Result};
use camino::{Utf8Component, Utf8Path, Utf8PathBuf};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

/// Suffix of the temporary name [`Dir::write_atomic`] writes first.
const TEMPORARY_SUFFIX: &str = ".ferry-tmp";

/// What an entry below a root is, from `lstat` (links are not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link, with where it points.
    Link(String),
    /// Anything else: a FIFO, socket or device, described for messages.
    Other(&'static str),
}

/// Folders a walk down a tree keeps open at most: deeper ones are opened
/// again from an open folder above. A hostile drive or manifest may nest
/// deeper than the handles a process may hold.
pub const MAX_OPEN_FOLDERS: usize = 64;

/// An open folder below an untrusted root, reached without following links.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: Utf8PathBuf,
}

impl Dir {
    /// Opens `path`, the root the operator named: a link is followed here,
    /// and only here.
    pub fn root(path: &Utf8Path) -> Result<Dir> {
        let fd =
            rustix::fs::open(path.as_std_path(), OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::io("open folder", path, e.into()))?;
        Ok(Dir { fd, path: path.to_owned() })
    }

    /// [`Dir::root`], or `None` if `path` does not exist.
    pub fn root_if_present(path: &Utf8Path) -> Result<Option<Dir>> {
        match Dir::root(path) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            other => other.map(Some),
        }
    }

    /// The folder's path, for messages.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// Opens the folder `relative` below this one; every component must be
    /// a folder, not a link. A missing one is an `Io` error of kind `NotFound`.
    pub fn open(&self, relative: &Utf8Path) -> Result<Dir> {
        let mut dir = self.duplicate()?;
        for name in names(relative)? {
            dir = dir.child(name)?;
        }
        Ok(dir)
    }

    /// [`Dir::open`], or `None` where a component does not exist.
    pub fn open_if_present(&self, relative: &Utf8Path) -> Result<Option<Dir>> {
        match self.open(relative) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            other => other.map(Some),
        }
    }

    /// Opens the folder `relative` below this one, creating what is missing.
    pub fn create(&self, relative: &Utf8Path) -> Result<Dir> {
        let mut dir = self.duplicate()?;
        for name in names(relative)? {
            match rustix::fs::mkdirat(&dir.fd, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(Error::io("create folder", dir.path.join(name), e.into())),
            }
            dir = dir.child(name)?;
        }
        Ok(dir)
    }

    /// Checks, writing nothing, that every component of `relative` that
    /// exists is a real folder: the first link (or file, FIFO, ...) on the
    /// way is the error.
    pub fn check(&self, relative: &Utf8Path) -> Result<()> {
        let mut dir = self.duplicate()?;
        for name in names(relative)? {
            match dir.kind_of(name)? {
                None => break,
                Some(Kind::Dir) => dir = dir.child(name)?,
                Some(_) => return Err(dir.refusal(&dir.path.join(name), c_name(name)?, "a folder")),
            }
        }
        Ok(())
    }

    /// What `relative` is, without following a link; `None` if absent.
    pub fn kind(&self, relative: &Utf8Path) -> Result<Option<Kind>> {
        let (parent, name) = match self.split(relative)? {
            Some(split) => split,
            None => return Ok(Some(Kind::Dir)),
        };
        let Some(parent) = parent else { return Ok(None) };
        parent.kind_of(name)
    }

    /// Opens the regular file `relative` for reading: no link anywhere
    /// below this folder, opened non-blocking (a FIFO cannot block) and
    /// checked with `fstat` to be a regular file before it is returned.
    pub fn open_file(&self, relative: &Utf8Path) -> Result<File> {
        let Some((parent, name)) = self.split(relative)? else {
            return Err(wrong_kind(&self.path, "a folder", "a regular file"));
        };
        let Some(parent) = parent else {
            return Err(Error::io("open", self.path.join(relative), std::io::ErrorKind::NotFound.into()));
        };
        parent.file(name)
    }

    /// Reads the regular file `relative` if it exists, refusing it unless it
    /// holds at most `cap` bytes (checked with `fstat` before reading).
    pub fn read_capped(&self, relative: &Utf8Path, cap: u64) -> Result<Option<Vec<u8>>> {
        let path = self.path.join(relative);
        let file = match self.open_file(relative) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let size = file.metadata().map_err(|e| Error::io("inspect", &path, e))?.len();
        if size > cap {
            return Err(Error::format(&path, format!("larger than the {cap}-byte limit")));
        }
        // Sized to the file: a manifest of a million files is ~100 MB, and
        // reading it into a growing vector would hold up to twice that.
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(cap.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| Error::io("read", &path, e))?;
        if bytes.len() as u64 > cap {
            return Err(Error::format(&path, format!("larger than the {cap}-byte limit")));
        }
        Ok(Some(bytes))
    }

    /// Creates the file `name` in this folder; fails if anything (a link
    /// included) already has that name.
    pub fn create_file(&self, name: &str) -> Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, single(name)?, flags, Mode::from_raw_mode(0o644))
            .map_err(|e| Error::io("create", self.path.join(name), e.into()))?;
        Ok(File::from(fd))
    }

    /// Writes `name` so that readers see the old content or the new, never
    /// a part: `.NAME.ferry-tmp` in this folder (a leftover one removed
    /// first, never written through), fsync, rename, fsync the folder. A
    /// link at `name` is replaced, never followed.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write_atomic_with(name, &mut |out| out.write_all(bytes))
    }

    /// As [`Dir::write_atomic`], with the content written by `write` through
    /// a buffer: a file listing a million paths is never held whole in memory.
    pub fn write_atomic_with(
        &self,
        name: &str,
        write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let temporary = format!(".{}{TEMPORARY_SUFFIX}", single(name)?);
        self.remove_file(&temporary)?;
        let file = self.create_file(&temporary)?;
        let temporary_path = self.path.join(&temporary);
        let mut buffered = std::io::BufWriter::with_capacity(256 * 1024, file);
        write(&mut buffered).map_err(|e| Error::io("write", &temporary_path, e))?;
        let file = buffered.into_inner().map_err(|e| Error::io("write", &temporary_path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io("flush", &temporary_path, e))?;
        drop(file);
        rustix::fs::renameat(&self.fd, temporary.as_str(), &self.fd, name)
            .map_err(|e| Error::io("rename into place", self.path.join(name), e.into()))?;
        self.sync()
    }

    /// The size of the regular file `relative`; `None` when it is absent or
    /// not a regular file (a link is not followed).
    pub fn file_size(&self, relative: &Utf8Path) -> Result<Option<u64>> {
        let Some((Some(parent), name)) = self.split(relative)? else { return Ok(None) };
        parent.entry_size(name)
    }

    /// [`Dir::file_size`] of `name` directly in this folder: one `lstat`,
    /// for callers that ask about many files of one folder.
    pub fn entry_size(&self, name: &str) -> Result<Option<u64>> {
        match rustix::fs::statat(&self.fd, single(name)?, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile => {
                Ok(Some(u64::try_from(stat.st_size).unwrap_or(0)))
            }
            Ok(_) | Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io("inspect", self.path.join(name), e.into())),
        }
    }

    /// The folder holding `relative`, opened without following links, and
    /// the last name; `None` when that folder does not exist.
    pub fn parent_of<'a>(&self, relative: &'a Utf8Path) -> Result<Option<(Dir, &'a str)>> {
        Ok(match self.split(relative)? {
            Some((Some(parent), name)) => Some((parent, name)),
            _ => None,
        })
    }

    /// Opens the regular file `name` in this folder for appending, creating
    /// it if missing; a link or anything but a regular file is refused.
    pub fn open_append(&self, name: &str) -> Result<File> {
        let path = self.path.join(name);
        // As for reading: a device is refused from lstat, never opened.
        match self.kind_of(single(name)?)? {
            Some(Kind::File) | None => {}
            Some(_) => return Err(self.refusal(&path, c_name(name)?, "a regular file")),
        }
        let flags = OFlags::WRONLY
            | OFlags::APPEND
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::NOCTTY
            | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.fd, single(name)?, flags, Mode::from_raw_mode(0o644)) {
            Ok(fd) => fd,
            Err(Errno::LOOP | Errno::NXIO | Errno::ISDIR) => {
                return Err(self.refusal(&path, c_name(name)?, "a regular file"));
            }
            Err(e) => return Err(Error::io("open", path, e.into())),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| Error::io("inspect", &path, e.into()))?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::RegularFile {
            return Err(wrong_kind(&path, describe(kind), "a regular file"));
        }
        rustix::fs::fcntl_setfl(&fd, OFlags::APPEND).map_err(|e| Error::io("open", &path, e.into()))?;
        Ok(File::from(fd))
    }

    /// Renames `name` in this folder to `to_name` in `to` (`renameat`: a
    /// link at either name is moved or replaced, never followed). The raw
    /// error is returned for the caller to judge.
    pub fn rename_to(&self, name: &str, to: &Dir, to_name: &str) -> std::io::Result<()> {
        rustix::fs::renameat(&self.fd, name, &to.fd, to_name).map_err(Into::into)
    }

    /// Makes `to_name` in `to` a hard link to `name` in this folder (a link
    /// at `name` is linked as a link, never followed).
    pub fn hard_link_to(&self, name: &str, to: &Dir, to_name: &str) -> std::io::Result<()> {
        rustix::fs::linkat(&self.fd, name, &to.fd, to_name, AtFlags::empty()).map_err(Into::into)
    }

    /// Removes the entry `name` of this folder: a folder (empty) with
    /// `folder`, else a file or link. The raw error is returned for the
    /// caller to judge.
    pub fn unlink(&self, name: &str, folder: bool) -> std::io::Result<()> {
        let flags = if folder { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        rustix::fs::unlinkat(&self.fd, name, flags).map_err(Into::into)
    }

    /// The folder as a `File` handle (to lock it, for instance).
    pub fn into_file(self) -> File {
        File::from(self.fd)
    }

    /// Removes the file (or link, never what it points to) `name` if present.
    pub fn remove_file(&self, name: &str) -> Result<()> {
        match rustix::fs::unlinkat(&self.fd, single(name)?, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::io("remove", self.path.join(name), e.into())),
        }
    }

    /// Removes `name` and everything below it if present, descending only
    /// into real folders (a link inside is removed, not followed). The
    /// folders directly in `name` are emptied on all cores: removing a
    /// tree of 10,000 files is most of the time of a small import (unlinks
    /// in different folders do not wait for each other).
    pub fn remove_tree(&self, name: &str) -> Result<()> {
        let name = c_name(single(name)?)?;
        let Ok(top) = self.child_raw(&name) else { return self.remove_raw(&name) };
        let entries = top.raw_names()?;
        let errors = crate::parallel::for_each(&entries, true, |entry| top.remove_raw(entry));
        if let Some(error) = errors.into_iter().next() {
            return Err(error);
        }
        drop(top);
        self.remove_raw(&name)
    }

    fn remove_raw(&self, name: &CStr) -> Result<()> {
        let path = || self.path.join(name.to_string_lossy().as_ref());
        // Most entries are files: one `unlinkat` each, no `lstat` first. Only
        // a folder (EISDIR, from the kernel before any filesystem sees it) is
        // opened, emptied and removed; a link is removed as itself.
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => return Ok(()),
            Err(Errno::ISDIR) => {}
            Err(e) => return Err(Error::io("remove", path(), e.into())),
        }
        let child = self.child_raw(name)?;
        for entry in child.raw_names()? {
            child.remove_raw(&entry)?;
        }
        drop(child);
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::io("remove", path(), e.into())),
        }
    }

    /// The names in this folder with what each is, sorted by name; a name
    /// that is not UTF-8 is shown with replacement characters (it cannot be
    /// opened by that name: it is for messages).
    pub fn entries(&self) -> Result<Vec<(String, Kind)>> {
        let mut out: Vec<(String, Kind)> =
            self.raw_entries()?.into_iter().map(|(name, kind)| (name.to_string_lossy().into_owned(), kind)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn raw_entries(&self) -> Result<Vec<(CString, Kind)>> {
        let mut out = Vec::new();
        for name in self.raw_names()? {
            if let Some(kind) = self.kind_raw(&name)? {
                out.push((name, kind));
            }
        }
        Ok(out)
    }

    /// The names in this folder, unsorted, without looking at what they are.
    fn raw_names(&self) -> Result<Vec<CString>> {
        let listing = rustix::fs::Dir::read_from(&self.fd).map_err(|e| Error::io("list", &self.path, e.into()))?;
        let mut out = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|e| Error::io("list", &self.path, e.into()))?;
            let name = entry.file_name();
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }

    /// Makes this folder's entries (creations, renames) durable.
    pub fn sync(&self) -> Result<()> {
        // Some FUSE and network filesystems refuse fsync on a directory.
        match rustix::fs::fsync(&self.fd) {
            Ok(()) | Err(Errno::INVAL) => Ok(()),
            Err(e) => Err(Error::io("flush folder", &self.path, e.into())),
        }
    }

    /// Flushes the whole filesystem holding this folder (`syncfs`).
    pub fn sync_filesystem(&self) -> Result<()> {
        rustix::fs::syncfs(&self.fd).map_err(|e| Error::io("flush the filesystem of", &self.path, e.into()))
    }

    fn duplicate(&self) -> Result<Dir> {
        let fd = self.fd.try_clone().map_err(|e| Error::io("open folder", &self.path, e))?;
        Ok(Dir { fd, path: self.path.clone() })
    }

    /// Opens the folder `name` directly in this one, refusing a link or
    /// anything that is not a folder.
    fn child(&self, name: &str) -> Result<Dir> {
        self.child_raw(&c_name(name)?)
    }

    fn child_raw(&self, name: &CStr) -> Result<Dir> {
        let path = self.path.join(name.to_string_lossy().as_ref());
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Dir { fd, path }),
            Err(Errno::LOOP | Errno::NOTDIR) => Err(self.refusal(&path, name, "a folder")),
            Err(e) => Err(Error::io("open folder", path, e.into())),
        }
    }

    /// Opens the regular file `name` directly in this folder (see [`Dir::open_file`]).
    fn file(&self, name: &str) -> Result<File> {
        let path = self.path.join(name);
        let name = &c_name(name)?;
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
        // A device is refused from lstat before it is opened at all: opening
        // some devices has effects (a tape rewinds).
        match self.kind_raw(name)? {
            Some(Kind::File) | None => {}
            Some(_) => return Err(self.refusal(&path, name, "a regular file")),
        }
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => return Err(self.refusal(&path, name, "a regular file")),
            Err(e) => return Err(Error::io("open", path, e.into())),
        };
        // Replaced between the lstat and the open: judge what was opened.
        let stat = rustix::fs::fstat(&fd).map_err(|e| Error::io("inspect", &path, e.into()))?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::RegularFile {
            return Err(wrong_kind(&path, describe(kind), "a regular file"));
        }
        // Non-blocking means nothing for a regular file; clear it anyway so
        // the handle behaves as any other.
        rustix::fs::fcntl_setfl(&fd, OFlags::empty()).map_err(|e| Error::io("open", &path, e.into()))?;
        Ok(File::from(fd))
    }

    /// `lstat` of `name` directly in this folder; `None` if absent.
    fn kind_of(&self, name: &str) -> Result<Option<Kind>> {
        self.kind_raw(&c_name(name)?)
    }

    fn kind_raw(&self, name: &CStr) -> Result<Option<Kind>> {
        let stat = match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(Error::io("inspect", self.path.join(name.to_string_lossy().as_ref()), e.into())),
        };
        Ok(Some(match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Link(self.link_target(name)),
            other => Kind::Other(describe(other)),
        }))
    }

    fn link_target(&self, name: &CStr) -> String {
        rustix::fs::readlinkat(&self.fd, name, Vec::new())
            .map(|target| target.to_string_lossy().into_owned())
            .unwrap_or_else(|e| format!("? ({e})"))
    }

    /// The error for `name` (at `path`), which is not the `expected` kind.
    fn refusal(&self, path: &Utf8Path, name: impl AsRef<CStr>, expected: &'static str) -> Error {
        let path = path.to_owned();
        match self.kind_raw(name.as_ref()) {
            Ok(Some(Kind::Link(target))) => Error::SymbolicLink { path, target },
            Ok(Some(Kind::Dir)) => wrong_kind(&path, "a folder", expected),
            Ok(Some(Kind::File)) => wrong_kind(&path, "a regular file", expected),
            Ok(Some(Kind::Other(found))) => wrong_kind(&path, found, expected),
            Ok(None) => Error::io("open", path, std::io::ErrorKind::NotFound.into()),
            Err(error) => error,
        }
    }

    /// Splits `relative` into its parent folder (opened; `None` if a part of
    /// it is missing) and its last name; `None` for an empty path.
    fn split<'a>(&self, relative: &'a Utf8Path) -> Result<Option<(Option<Dir>, &'a str)>> {
        let mut parts = names(relative)?;
        let Some(name) = parts.pop() else { return Ok(None) };
        let parent: Utf8PathBuf = parts.iter().collect();
        Ok(Some((self.open_if_present(&parent)?, name)))
    }
}

/// The names of a relative path's components; `..`, `.` or an absolute
/// path are refused (ferry builds these paths itself, from validated parts).
fn names(relative: &Utf8Path) -> Result<Vec<&str>> {
    relative
        .components()
        .map(|component| match component {
            Utf8Component::Normal(name) => Ok(name),
            _ => Err(Error::InvalidArgument(format!("`{relative}` is not a plain relative path"))),
        })
        .collect()
}

fn c_name(name: &str) -> Result<CString> {
    CString::new(name).map_err(|e| Error::InvalidArgument(e.to_string()))
}

fn single(name: &str) -> Result<&str> {
    match names(Utf8Path::new(name))?.as_slice() {
        [one] => Ok(one),
        _ => Err(Error::InvalidArgument(format!("`{name}` is not a single name"))),
    }
}

fn wrong_kind(path: &Utf8Path, found: &'static str, expected: &'static str) -> Error {
    Error::WrongKind { path: path.to_owned(), found, expected }
}

/// How a file type reads in a message.
fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown kind",
    }
}

/// `path` relative to `root`, which it must lie below (ferry builds such
/// paths by joining names to the root).
pub fn relative<'a>(root: &Utf8Path, path: &'a Utf8Path) -> Result<&'a Utf8Path> {
    path.strip_prefix(root).map_err(|_| Error::InvalidArgument(format!("`{path}` does not lie below `{root}`")))
}

/// Opens the regular file `path`, which lies below the untrusted `root`,
/// as [`Dir::open_file`] does.
pub fn open_file(root: &Utf8Path, path: &Utf8Path) -> Result<File> {
    Dir::root(root)?.open_file(relative(root, path)?)
}

/// Reads the regular file `path` below the untrusted `root` if it exists,
/// as [`Dir::read_capped`] does.
pub fn read_capped(root: &Utf8Path, path: &Utf8Path, cap: u64) -> Result<Option<Vec<u8>>> {
    Dir::root(root)?.read_capped(relative(root, path)?, cap)
}

/// What `path` below the untrusted `root` is, as [`Dir::kind`] says;
/// `None` when it (or the root) does not exist.
pub fn kind(root: &Utf8Path, path: &Utf8Path) -> Result<Option<Kind>> {
    match Dir::root_if_present(root)? {
        Some(dir) => dir.kind(relative(root, path)?),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        (dir, root)
    }

    #[test]
    fn links_below_the_root_are_refused_naming_where_they_point() {
        let (_keep, root) = scratch();
        std::fs::create_dir_all(root.join("real/inner")).unwrap();
        std::os::unix::fs::symlink("real", root.join("link")).unwrap();
        let dir = Dir::root(&root).unwrap();
        assert!(dir.open(Utf8Path::new("real/inner")).is_ok());
        let error = dir.open(Utf8Path::new("link/inner")).unwrap_err();
        assert!(matches!(&error, Error::SymbolicLink { target, .. } if target == "real"), "{error}");
        assert!(matches!(dir.create(Utf8Path::new("link/new")), Err(Error::SymbolicLink { .. })));
        assert!(!root.join("real/new").exists());
        assert!(matches!(dir.open_file(Utf8Path::new("link/x")), Err(Error::SymbolicLink { .. })));
    }

    #[test]
    fn fifos_are_refused_without_blocking_and_folders_are_not_files() {
        let (_keep, root) = scratch();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("pipe").as_std_path(),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        std::fs::create_dir(root.join("folder")).unwrap();
        let dir = Dir::root(&root).unwrap();
        let error = dir.open_file(Utf8Path::new("pipe")).unwrap_err();
        assert!(error.to_string().contains("FIFO"), "{error}");
        assert!(matches!(dir.open_file(Utf8Path::new("folder")), Err(Error::WrongKind { .. })));
        assert_eq!(dir.read_capped(Utf8Path::new("absent"), 10).unwrap(), None);
    }

    #[test]
    fn remove_tree_removes_links_not_what_they_point_to() {
        let (_keep, root) = scratch();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        std::fs::write(root.join("outside/precious"), b"keep").unwrap();
        std::fs::create_dir_all(root.join("doomed/sub")).unwrap();
        std::os::unix::fs::symlink(root.join("outside"), root.join("doomed/sub/link")).unwrap();
        let dir = Dir::root(&root).unwrap();
        dir.remove_tree("doomed").unwrap();
        assert!(!root.join("doomed").exists());
        assert_eq!(std::fs::read(root.join("outside/precious")).unwrap(), b"keep");
    }

    #[test]
    fn write_atomic_replaces_a_link_instead_of_writing_through_it() {
        let (_keep, root) = scratch();
        std::fs::write(root.join("victim"), b"host file").unwrap();
        std::os::unix::fs::symlink(root.join("victim"), root.join("manifest")).unwrap();
        std::os::unix::fs::symlink(root.join("victim"), root.join(".manifest.ferry-tmp")).unwrap();
        let dir = Dir::root(&root).unwrap();
        dir.write_atomic("manifest", b"new").unwrap();
        assert_eq!(std::fs::read(root.join("victim")).unwrap(), b"host file");
        assert_eq!(std::fs::read(root.join("manifest")).unwrap(), b"new");
    }
}
