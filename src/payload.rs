//! Where the bytes of a snapshot's files come from, and the one place they
//! are checked against the signed manifest on their way to a target.
//!
//! A [`FileSource`] only finds and opens a file: the files of a tree on a
//! drive (or of an installed update source, for `publish`), stretches of
//! tar volumes ([`crate::volume::TarIndex`]), and later the base files a
//! delta snapshot takes from the target. Sources are untrusted; only
//! [`Payload::copy_verified`] decides that bytes are the signed ones.

use crate::digest::{Hashed, copy_hashing};
use crate::error::{Error, Result};
use crate::manifest::FileEntry;
use crate::rel_path::RelPath;
use crate::report::Progress;
use camino::Utf8PathBuf;
use std::io::{Read, Write};

/// A file opened by a [`FileSource`].
pub struct OpenedFile<'a> {
    /// Its bytes.
    pub reader: Box<dyn Read + 'a>,
    /// The file read, for I/O errors (a payload file, a volume).
    pub origin: Utf8PathBuf,
    /// How a wrong size or digest names it (`VOLUME: PATH` for tar volumes).
    pub shown_as: Utf8PathBuf,
}

/// Finds and opens the files of one snapshot, in any order and from
/// several threads at once.
pub trait FileSource: Send + Sync + std::fmt::Debug {
    /// Opens `path`; `expected` lets a source refuse a file of the wrong
    /// size before reading a byte.
    fn open(&self, path: &RelPath, expected: &FileEntry) -> Result<OpenedFile<'_>>;
    /// A key that orders reads: position in the volumes, so reads from a
    /// tar snapshot go forward through each volume. The same for every
    /// file where order does not matter.
    fn read_position(&self, _path: &RelPath) -> (usize, u64) {
        (0, 0)
    }
    /// The bytes of `path` when the source holds them in memory, already
    /// checked against exactly `expected` (size and SHA-256) as it made
    /// them: [`Payload::copy_verified`] writes them without hashing them a
    /// second time. `None` (the default): read and checked on the way.
    fn checked_bytes(&self, _path: &RelPath, _expected: &FileEntry) -> Option<&[u8]> {
        None
    }
}

/// The payload of a verified snapshot whose layout has been checked, ready
/// for import to read files from.
#[derive(Debug)]
pub struct Payload {
    source: Box<dyn FileSource>,
}

impl Payload {
    /// The payload read from `source`.
    pub fn new(source: impl FileSource + 'static) -> Self {
        Payload { source: Box::new(source) }
    }

    /// Opens the payload file `path` unchecked: for a source that wraps
    /// this payload (a delta's, [`crate::delta::import`]), which checks
    /// what it reads itself or hands it on to [`Payload::copy_verified`].
    pub(crate) fn open(&self, path: &RelPath, expected: &FileEntry) -> Result<OpenedFile<'_>> {
        self.source.open(path, expected)
    }

    /// See [`FileSource::read_position`].
    pub fn read_position(&self, path: &RelPath) -> (usize, u64) {
        self.source.read_position(path)
    }

    /// Copies the payload file `path` into `writer`, checking it against
    /// `expected` on the way; the error names the media file and what differs.
    pub fn copy_verified(
        &self,
        path: &RelPath,
        expected: &FileEntry,
        writer: &mut dyn Write,
        progress: &dyn Progress,
    ) -> Result<()> {
        if let Some(bytes) = self.source.checked_bytes(path, expected) {
            writer.write_all(bytes).map_err(|e| Error::io("write to the target", path.as_path(), e))?;
            progress.advance(bytes.len() as u64);
            progress.file_done();
            return Ok(());
        }
        let OpenedFile { mut reader, origin, shown_as } = self.source.open(path, expected)?;
        // A failed write is the target's fault, a failed read the drive's:
        // the message must send the operator to the right one.
        let mut tracked = TrackedWriter { inner: writer, failed: false };
        let seen =
            copy_hashing(&mut reader, Some(&mut tracked), expected.size, &|n| progress.advance(n)).map_err(|e| {
                if tracked.failed {
                    Error::io("write to the target", path.as_path(), e)
                } else {
                    Error::io("read", origin, e)
                }
            })?;
        match mismatch(&seen, expected) {
            Some(problem) => Err(Error::Mismatch { path: shown_as, problem }),
            None => {
                progress.file_done();
                Ok(())
            }
        }
    }
}

/// How the bytes read differ from the manifest entry, if they do: the one
/// wording verify, read-back and import share.
pub fn mismatch(seen: &Hashed, expected: &FileEntry) -> Option<String> {
    if seen.size != expected.size {
        let actual = if seen.size > expected.size { "larger".to_owned() } else { format!("{} bytes", seen.size) };
        return Some(format!("size is {actual}, the signed manifest says {} bytes", expected.size));
    }
    (seen.digest != expected.digest)
        .then(|| format!("sha256 is {}, the signed manifest says {}", seen.digest.short(), expected.digest.short()))
}

/// Remembers whether writing failed, to tell target errors from media errors.
pub struct TrackedWriter<'a> {
    /// Where the bytes go.
    pub inner: &'a mut dyn Write,
    /// Set when a write or flush failed.
    pub failed: bool,
}

impl Write for TrackedWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.inner.write(bytes).inspect_err(|_| self.failed = true)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}
