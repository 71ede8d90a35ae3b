//! Where snapshots are installed: an update source that devices read.
//!
//! A [`Target`] is small, dumb and untrusted storage: it creates folders,
//! writes staged files, renames and deletes, and declares what it can
//! guarantee in [`Capabilities`]. Everything that decides *what* to write and
//! checks *that it is right* lives above it, in [`ordered`] and
//! [`crate::ops::import`], so adding a kind of target touches one file.
//!
//! Paths given to a target are either [`RelPath`]s in the tree devices read,
//! or names inside ferry's state folder (`.ferry/` by default), such as
//! `staging/000001` or `previous/tree/a/b`.

pub mod dir;
pub mod ftp;
pub mod ordered;
pub mod spec;
pub mod state;

use crate::error::Result;
use crate::rel_path::RelPath;
use crate::report::Progress;
use crate::signing::VerifiedSnapshot;
use std::io::Write;

/// Name of the state folder inside a target unless `--state-dir` moves it.
pub const STATE_DIR: &str = ".ferry";

/// What a target can guarantee; the import picks its commit strategy from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// The whole tree can be exchanged for a new one in one atomic step.
    pub atomic_tree_switch: bool,
    /// A rename over an existing file replaces it atomically.
    pub atomic_replace: bool,
    /// Hard links work, so keeping the previous snapshot copies no data.
    pub hard_links: bool,
    /// Asking a file's size costs no network round trip, so files the
    /// installed manifest says are unchanged are checked before being skipped.
    pub cheap_metadata: bool,
}

/// A file being written into the state folder's staging area.
pub trait StagedFile: Write + Send {
    /// Closes the file; it stays staged. Durability comes from
    /// [`Target::flush`], which the switch calls once before the journal.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A held target lock; dropping it releases the lock.
pub type TargetLock = Box<dyn std::any::Any + Send>;

/// An update source that snapshots are installed into.
pub trait Target: Sync {
    /// The target as the operator wrote it, for messages.
    fn location(&self) -> String;
    /// What this target can guarantee.
    fn capabilities(&self) -> Capabilities;
    /// How many files to transfer at once.
    fn parallelism(&self) -> usize {
        crate::parallel::workers()
    }
    /// Creates the target's root folder if it does not exist yet.
    fn create(&self) -> Result<()>;
    /// Takes the exclusive import lock, waiting for it if `wait` is set.
    fn lock(&self, wait: bool) -> Result<TargetLock>;
    /// Every entry of the tree devices read (not the state folder), with
    /// `true` for folders. Used only to adopt a folder ferry did not fill.
    fn list_tree(&self) -> Result<Vec<(RelPath, bool)>>;
    /// Reads a small state file, `None` if absent.
    fn read_state(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// Size of a state file, `None` if absent.
    fn state_file_size(&self, name: &str) -> Result<Option<u64>>;
    /// Replaces a state file atomically and durably.
    fn write_state(&self, name: &str, bytes: &[u8]) -> Result<()>;
    /// Appends one line to the history log.
    fn append_history(&self, line: &str) -> Result<()>;
    /// Removes a state file or folder (recursively) if present.
    fn remove_state(&self, name: &str) -> Result<()>;
    /// Creates a staged file `name` in the state folder with the given mode bit.
    fn create_staged(&self, name: &str, executable: bool) -> Result<Box<dyn StagedFile>>;
    /// Size of a file in the tree, `None` if absent or not a file.
    fn file_size(&self, path: &RelPath) -> Result<Option<u64>>;
    /// Reads a tree file and hashes it (at most `limit + 1` bytes); `None`
    /// if it is absent. Used by `verify` of an installed source.
    fn hash_file(&self, path: &RelPath, limit: u64) -> Result<Option<crate::digest::Hashed>>;
    /// Creates a folder in the tree if missing.
    fn make_dir(&self, path: &RelPath) -> Result<()>;
    /// Keeps the tree file `path` as state file `kept` (hard link where
    /// possible, else a copy). Does nothing if `kept` exists or `path` does not.
    fn save(&self, path: &RelPath, kept: &str) -> Result<()>;
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
    /// The whole-tree switch, for targets that can exchange trees atomically.
    fn whole_tree(&self) -> Option<&dyn WholeTreeSwitch> {
        None
    }
}

/// Everything needed to build and switch in a new tree.
pub struct TreeInstall<'a> {
    /// The verified snapshot being installed.
    pub snapshot: &'a VerifiedSnapshot,
    /// Where its payload is read from.
    pub media: &'a crate::media::Payload,
    /// The installed manifest, to reuse unchanged files.
    pub installed: Option<&'a crate::manifest::Manifest>,
    /// The new state marker.
    pub state: &'a state::InstalledState,
    /// The history line to append.
    pub history_line: &'a str,
    /// Progress sink.
    pub progress: &'a dyn Progress,
}

/// What finishing an interrupted run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// For people and the history log.
    pub description: String,
    /// The interrupted run was a rollback, now complete.
    pub finished_rollback: bool,
}

impl Recovery {
    fn new(description: impl Into<String>, finished_rollback: bool) -> Self {
        Recovery { description: description.into(), finished_rollback }
    }
}

/// A target that can exchange its whole tree for a new one in one step.
pub trait WholeTreeSwitch {
    /// Finishes or discards what an interrupted switch left; returns what it did.
    fn recover_tree(&self) -> Result<Option<Recovery>>;
    /// Builds the new tree beside the old one and exchanges them.
    fn install_tree(&self, job: &TreeInstall<'_>) -> Result<()>;
    /// The state of the kept previous tree, if there is one.
    fn previous_tree_state(&self) -> Option<state::InstalledState>;
    /// Exchanges the tree with the previous one; `state` is the marker the
    /// previous tree gets (rolled back), `history_line` is logged there.
    fn rollback_tree(&self, state: &state::InstalledState, history_line: &str) -> Result<()>;
}
