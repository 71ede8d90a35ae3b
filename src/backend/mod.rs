//! Where bytes are stored: the update sources devices read.
//!
//! A [`Backend`] is small, dumb and untrusted storage: it creates folders,
//! writes staged files, renames and deletes, and declares what it can
//! guarantee in [`Capabilities`]. Everything that decides *what* to write
//! and checks *that it is right* lives above it, in [`crate::install`]; the
//! payload's integrity is checked where it is read ([`crate::media`]).
//!
//! A new kind of update source is one file in this folder plus one line in
//! [`open`], the registry; per-kind options live in [`BackendOptions`].
//! Every kind passes the conformance suite in `tests/conformance.rs`.
//!
//! Paths given to a back end are either [`RelPath`]s in the tree devices
//! read, or names inside ferry's state folder (`.ferry/` by default), such
//! as `staging/000001` or `previous/tree/a/b`.

pub mod dir;
pub mod ftp;
pub mod location;

use crate::error::{Error, Result};
use crate::rel_path::RelPath;
use camino::Utf8PathBuf;
use std::io::Write;

pub use location::Location;

/// Name of the state folder inside a target unless `--state-dir` moves it.
pub const STATE_DIR: &str = ".ferry";

/// What a back end can guarantee; the install engine picks its strategy
/// from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Asking a file's size costs no network round trip, so files the
    /// installed manifest says are unchanged are checked before being kept.
    pub cheap_metadata: bool,
    /// Keeping a file for rollback costs a transfer (no hard links, no
    /// server-side copy) while renaming it is cheap: the ordered switch then
    /// moves each replaced file aside just before the new one takes its
    /// name (`swap`) and moves deleted files aside (`keep`) instead of
    /// keeping copies up front (`save`).
    pub keeps_by_moving: bool,
}

/// Where [`Backend::copy_file`] writes: somewhere that can start again
/// from empty, because a download cut by the network is retried whole.
pub trait Download: Write {
    /// Forgets everything written so far.
    fn restart(&mut self) -> std::io::Result<()>;
}

impl Download for Vec<u8> {
    fn restart(&mut self) -> std::io::Result<()> {
        self.clear();
        Ok(())
    }
}

impl Download for std::io::Sink {
    fn restart(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Download for std::fs::File {
    fn restart(&mut self) -> std::io::Result<()> {
        use std::io::Seek;
        self.set_len(0)?;
        self.rewind()
    }
}

/// A file being written into the state folder's staging area, or into a
/// tree being built beside the live one.
pub trait StagedFile: Write + Send {
    /// Closes the file; it stays where it was created. Durability comes
    /// from [`Backend::flush`] (or [`TreeExchange::sync`]), which the
    /// engine calls once before anything depends on it.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A held target lock; dropping it releases the lock.
pub type BackendLock = Box<dyn std::any::Any + Send>;

/// An update source that snapshots are installed into.
pub trait Backend: Sync {
    /// The target as the operator wrote it, for messages.
    fn location(&self) -> String;
    /// Where the state folder is, for messages (`TARGET/.ferry` unless moved).
    fn state_location(&self) -> String {
        format!("{}/{STATE_DIR}", self.location())
    }
    /// What this back end can guarantee.
    fn capabilities(&self) -> Capabilities;
    /// How many files to transfer at once.
    fn parallelism(&self) -> usize {
        crate::parallel::workers()
    }
    /// Creates the target's root folder if it does not exist yet; returns
    /// whether it did, so that a failed first import can [`Backend::discard`]
    /// it again.
    fn create(&self) -> Result<bool>;
    /// Whether the root folder is still to be made by [`Backend::create`],
    /// found without making it (`--dry-run`); fails as `create` would on a
    /// path it could not make. Back ends that make folders as they go (FTP)
    /// keep the default: reading a missing target's state finds none.
    fn is_missing(&self) -> Result<bool> {
        Ok(false)
    }
    /// Removes the root folder that [`Backend::create`] made in this run,
    /// with everything this run wrote into it: a refused first import
    /// leaves no trace. Call with the lock held.
    fn discard(&self) -> Result<()> {
        Ok(())
    }
    /// Takes the exclusive import lock, waiting for it if `wait` is set.
    fn lock(&self, wait: bool) -> Result<BackendLock>;
    /// Every entry of the tree devices read (not the state folder), with
    /// `true` for folders. Used only to adopt a folder ferry did not fill.
    fn list_tree(&self) -> Result<Vec<(RelPath, bool)>>;
    /// Reads a small state file, `None` if absent.
    fn read_state(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// Size of a state file, `None` if absent.
    fn state_file_size(&self, name: &str) -> Result<Option<u64>>;
    /// Replaces a state file atomically and durably.
    fn write_state(&self, name: &str, bytes: &[u8]) -> Result<()>;
    /// Appends one line to the state file `name`, creating it with
    /// `first_line` when it does not exist yet; durable on return.
    fn append_state(&self, name: &str, first_line: &str, line: &str) -> Result<()>;
    /// Removes a state file or folder (recursively) if present.
    fn remove_state(&self, name: &str) -> Result<()>;
    /// Creates a staged file `name` in the state folder with the given mode bit.
    fn create_staged(&self, name: &str, executable: bool) -> Result<Box<dyn StagedFile>>;
    /// Size of a file in the tree, `None` if absent or not a file.
    fn file_size(&self, path: &RelPath) -> Result<Option<u64>>;
    /// [`Backend::file_size`] of each of `paths`, in the same order: one
    /// question per file, unless the back end can ask a folder at a time.
    fn file_sizes(&self, paths: &[&RelPath]) -> Result<Vec<Option<u64>>> {
        paths.iter().map(|path| self.file_size(path)).collect()
    }
    /// Reads tree file `path` into `to`, hashing it on the way (at most
    /// `limit + 1` bytes, so an over-long file shows without reading it
    /// all); `None` if it is absent. The caller checks the size and digest
    /// against its manifest, so no byte is hashed twice.
    fn copy_file(&self, path: &RelPath, limit: u64, to: &mut dyn Download) -> Result<Option<crate::digest::Hashed>>;
    /// [`Backend::copy_file`] into nowhere. Used by `verify` of an installed
    /// source.
    fn hash_file(&self, path: &RelPath, limit: u64) -> Result<Option<crate::digest::Hashed>> {
        self.copy_file(path, limit, &mut std::io::sink())
    }
    /// [`Backend::copy_file`] into memory. Used by delta import to read a
    /// base file (formats/delta-v1.md DI4), whose size the caller bounds.
    fn read_file(&self, path: &RelPath, limit: u64) -> Result<Option<(crate::digest::Hashed, Vec<u8>)>> {
        let mut bytes = Vec::new();
        Ok(self.copy_file(path, limit, &mut bytes)?.map(|hashed| (hashed, bytes)))
    }
    /// Creates a folder in the tree if missing.
    fn make_dir(&self, path: &RelPath) -> Result<()>;
    /// Keeps the tree file `path` as state file `kept` (hard link where
    /// possible, else a copy). Does nothing if `kept` exists or `path` does not.
    fn save(&self, path: &RelPath, kept: &str) -> Result<()>;
    /// Moves the tree file `path` to state file `kept` (creating its
    /// folders). Does nothing if `kept` exists or `path` is not a file, so a
    /// re-run after the move, or after a later step put a new file at
    /// `path`, changes nothing.
    fn keep(&self, path: &RelPath, kept: &str) -> Result<()>;
    /// Renames state file `from` onto tree path `to`; does nothing if `from`
    /// is gone (the step already ran).
    fn put(&self, from: &str, to: &RelPath) -> Result<()>;
    /// Deletes a tree file if present.
    fn delete_file(&self, path: &RelPath) -> Result<()>;
    /// Deletes a tree folder if present and empty.
    fn delete_dir(&self, path: &RelPath) -> Result<()>;
    /// Makes everything written so far durable.
    fn flush(&self) -> Result<()>;
    /// Fails when finding out what the target can do already ran out of
    /// space: better said at once than as "no whole-tree switch here".
    fn check_space(&self) -> Result<()> {
        Ok(())
    }
    /// The whole-tree exchange, for back ends that can swap the live tree
    /// with another one in one atomic step.
    fn tree_exchange(&self) -> Option<&dyn TreeExchange> {
        None
    }
}

/// A tree kept beside the live one by a back end that can exchange trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The tree being built, switched in next.
    Next,
    /// The tree switched out last time, kept for rollback.
    Previous,
}

/// Storage primitives of the whole-tree switch (`formats/target-state-v1.md`
/// §4): trees beside the live one, each with its own state folder, and an
/// atomic exchange. What goes into them is decided by
/// [`crate::install::tree`].
pub trait TreeExchange: Sync {
    /// Whether a tree is in `slot`.
    fn exists(&self, slot: Slot) -> bool;
    /// Removes the tree in `slot` if present, its state marker first: a
    /// tree half deleted must never look valid to recovery.
    fn clear(&self, slot: Slot) -> Result<()>;
    /// Creates an empty tree in `slot`, which must not exist.
    fn create(&self, slot: Slot) -> Result<()>;
    /// Creates folders in the tree in `slot`; `paths` come in manifest
    /// order (a folder after its parent).
    fn make_dirs(&self, slot: Slot, paths: &[&RelPath]) -> Result<()>;
    /// Gives the tree in `slot` the live tree's files `paths` (in manifest
    /// order) without copying data (hard links); says for each whether it
    /// was done (`false` where that is impossible here: it is copied then).
    fn link_live(&self, slot: Slot, paths: &[&RelPath]) -> Vec<bool>;
    /// Creates a new file in the tree in `slot`.
    fn create_file(&self, slot: Slot, path: &RelPath, executable: bool) -> Result<Box<dyn StagedFile>>;
    /// Reads a small file of the state folder of the tree in `slot`.
    fn read_state(&self, slot: Slot, name: &str) -> Result<Option<Vec<u8>>>;
    /// Writes a file of the state folder of the tree in `slot`, atomically.
    fn write_state(&self, slot: Slot, name: &str, bytes: &[u8]) -> Result<()>;
    /// Makes the tree in `slot` durable.
    fn sync(&self, slot: Slot) -> Result<()>;
    /// Takes the import lock on the tree in `slot`, which is about to
    /// become the live tree: whoever opens the target after the exchange
    /// must find it locked.
    fn lock(&self, slot: Slot) -> Result<BackendLock>;
    /// Swaps the live tree and the tree in `slot` in one atomic, durable step.
    fn exchange(&self, slot: Slot) -> Result<()>;
    /// Renames the tree in [`Slot::Next`] to [`Slot::Previous`], which must
    /// be clear.
    fn keep_next_as_previous(&self) -> Result<()>;
    /// The tree in `slot`, for messages.
    fn describe(&self, slot: Slot) -> String;
}

/// How to reach each kind of back end: every per-kind option in one place.
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    /// Keep ferry's state here instead of `TARGET/.ferry` (folders only).
    pub state_dir: Option<Utf8PathBuf>,
    /// Create a folder target's missing parents too (`--mkpath`); without
    /// it only the target folder itself may be missing.
    pub make_parents: bool,
    /// `ftps://` means implicit TLS instead of AUTH TLS.
    pub implicit_tls: bool,
    /// FTP and FTPS servers.
    pub ftp: ftp::FtpOptions,
}

/// The registry: parses a target location and opens the back end for it.
pub fn open(text: &str, options: &BackendOptions) -> Result<Box<dyn Backend>> {
    match location::parse(text, options.implicit_tls)? {
        Location::Dir(path) => {
            Ok(Box::new(dir::DirBackend::new(&path, options.state_dir.as_deref()).make_parents(options.make_parents)))
        }
        Location::Ftp(url) => {
            if options.state_dir.is_some() {
                return Err(Error::InvalidArgument("--state-dir applies to folder targets only".into()));
            }
            Ok(Box::new(ftp::FtpBackend::new(url, options.ftp.clone())?))
        }
    }
}
