//! Local folders and mounted shared folders (SMB/NFS paths).
//!
//! On a local Linux filesystem the whole tree is switched in one step: the
//! new tree is built in the hidden sibling `PARENT/.NAME.ferry-next`
//! (unchanged files hard-linked, so no data is copied twice), then
//! `renameat2(RENAME_EXCHANGE)` swaps it with `TARGET`. The old tree becomes
//! `PARENT/.NAME.ferry-previous`, which `ferry rollback` swaps back. Where
//! the exchange is impossible (a mount point, a network filesystem, a
//! state folder outside the tree) the ordered switch of [`super::ordered`]
//! is used instead. See `formats/target-state-v1.md`.

use super::state::{
    HISTORY_FILE, HISTORY_MAGIC, InstalledState, MANIFEST_FILE, MAX_STATE_BYTES, SIGNATURE_FILE, STATE_FILE,
};
use super::{Capabilities, Recovery, STATE_DIR, StagedFile, Target, TargetLock, TreeInstall, WholeTreeSwitch};
use crate::crash;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::manifest::{EntryKind, FileEntry};
use crate::parallel;
use crate::rel_path::RelPath;
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::HashMap;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::OnceLock;

/// Largest history log carried over into a new tree.
const MAX_HISTORY_BYTES: u64 = 64 * 1024 * 1024;
/// Marks a tree that a whole-tree rollback is switching to.
const ROLLBACK_INTENT: &str = "rollback-intent";

/// A folder target.
#[derive(Debug)]
pub struct DirTarget {
    root: Utf8PathBuf,
    state_dir: Utf8PathBuf,
    state_inside: bool,
    tree_switch: OnceLock<Probe>,
}

/// What the whole-tree probe found.
#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    /// The exchange works here.
    works: bool,
    /// The probe could not even create its scratch folders because the
    /// disk is full (ENOSPC, EDQUOT): an error to report, not a capability.
    disk_full: Option<i32>,
}

impl DirTarget {
    /// A target at `root` with its state in `state_dir` (default `root/.ferry`).
    pub fn new(root: &Utf8Path, state_dir: Option<&Utf8Path>) -> Self {
        let state_inside = state_dir.is_none();
        let state_dir = state_dir.map_or_else(|| root.join(STATE_DIR), Utf8Path::to_owned);
        DirTarget { root: root.to_owned(), state_dir, state_inside, tree_switch: OnceLock::new() }
    }

    /// The folder devices read.
    pub fn root(&self) -> &Utf8Path {
        &self.root
    }

    fn state_path(&self, name: &str) -> Utf8PathBuf {
        self.state_dir.join(name)
    }

    fn sibling(&self, suffix: &str) -> Result<Utf8PathBuf> {
        let absolute = self.root.canonicalize_utf8().ctx("resolve", &self.root)?;
        let parent =
            absolute.parent().ok_or_else(|| Error::InvalidArgument(format!("`{}` has no parent folder", self.root)))?;
        let name = absolute.file_name().unwrap_or("target");
        Ok(parent.join(format!(".{name}.ferry-{suffix}")))
    }

    fn next_tree(&self) -> Result<Utf8PathBuf> {
        self.sibling("next")
    }

    fn previous_tree(&self) -> Result<Utf8PathBuf> {
        self.sibling("previous")
    }

    /// Whether `renameat2(RENAME_EXCHANGE)` can swap TARGET with a sibling:
    /// state inside the tree, TARGET not a mount point, and a probe exchange
    /// of two scratch folders in the parent succeeds.
    fn probe_tree_switch(&self) -> Probe {
        if !self.state_inside {
            return Probe::default();
        }
        let probe = || -> Result<bool> {
            let root_meta = std::fs::metadata(&self.root).ctx("inspect", &self.root)?;
            let a = self.sibling("probe-a")?;
            let b = self.sibling("probe-b")?;
            let parent = a.parent().unwrap_or(Utf8Path::new("/")).to_owned();
            if std::fs::metadata(&parent).ctx("inspect", &parent)?.dev() != root_meta.dev() {
                return Ok(false);
            }
            fsutil::remove_tree(&a)?;
            fsutil::remove_tree(&b)?;
            std::fs::create_dir(&a).ctx("create", &a)?;
            std::fs::create_dir(&b).ctx("create", &b)?;
            let works = exchange(&a, &b).is_ok();
            fsutil::remove_tree(&a)?;
            fsutil::remove_tree(&b)?;
            Ok(works)
        };
        match probe() {
            Ok(works) => Probe { works, disk_full: None },
            Err(Error::Io { source, .. }) if matches!(source.raw_os_error(), Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error() || code == rustix::io::Errno::DQUOT.raw_os_error()) => {
                Probe { works: false, disk_full: source.raw_os_error() }
            }
            // Anything else (no permission beside TARGET, an exotic
            // filesystem): the ordered switch does not need the parent.
            Err(_) => Probe::default(),
        }
    }

    fn read_tree_state(&self, tree: &Utf8Path) -> Option<InstalledState> {
        let path = tree.join(STATE_DIR).join(STATE_FILE);
        let bytes = fsutil::read_optional(&path, MAX_STATE_BYTES).ok()??;
        InstalledState::decode(&bytes, &path).ok()
    }

    fn copy_history(&self, into: &Utf8Path, line: &str) -> Result<()> {
        let mut history = fsutil::read_optional(&self.state_path(HISTORY_FILE), MAX_HISTORY_BYTES)?
            .unwrap_or_else(|| format!("{HISTORY_MAGIC}\n").into_bytes());
        history.extend_from_slice(line.as_bytes());
        history.push(b'\n');
        fsutil::write_atomic(&into.join(HISTORY_FILE), &history)
    }
}

/// Removes a whole tree, its state marker first: a tree that was only half
/// deleted must never look like a valid previous or next tree to recovery.
fn remove_tree_state_first(tree: &Utf8Path) -> Result<()> {
    fsutil::remove_file(&tree.join(STATE_DIR).join(STATE_FILE))?;
    fsutil::remove_tree(tree)
}

/// Takes the import lock on a folder that is about to become TARGET.
fn lock_folder(folder: &Utf8Path) -> Result<File> {
    let handle = File::open(folder).ctx("open", folder)?;
    handle.lock().ctx("lock", folder)?;
    Ok(handle)
}

/// Swaps two directory entries in one atomic step.
fn exchange(a: &Utf8Path, b: &Utf8Path) -> std::io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a.as_std_path(),
        rustix::fs::CWD,
        b.as_std_path(),
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(std::io::Error::from)
}

fn file_mode(executable: bool) -> Permissions {
    Permissions::from_mode(if executable { 0o755 } else { 0o644 })
}

/// An exclusive `flock` on the target folder itself. The kernel releases
/// it when the process dies, so a lock can never be left stale by `kill -9`.
struct DirLock {
    _handle: File,
}

struct DirStagedFile {
    path: Utf8PathBuf,
    writer: BufWriter<File>,
}

impl Write for DirStagedFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.writer.write(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

impl StagedFile for DirStagedFile {
    fn commit(self: Box<Self>) -> Result<()> {
        // One syncfs before the journal replaces an fsync per staged file.
        self.writer.into_inner().map(drop).map_err(|e| Error::io("write", self.path.clone(), e.into_error()))
    }
}

impl Target for DirTarget {
    fn location(&self) -> String {
        self.root.to_string()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_tree_switch: self.tree_switch.get_or_init(|| self.probe_tree_switch()).works,
            atomic_replace: true,
            hard_links: true,
            cheap_metadata: true,
        }
    }

    fn create(&self) -> Result<()> {
        fsutil::create_dir_all(&self.root)
    }

    fn lock(&self, wait: bool) -> Result<TargetLock> {
        loop {
            let handle = File::open(&self.root).ctx("open", &self.root)?;
            if wait {
                handle.lock().ctx("lock", &self.root)?;
            } else {
                match handle.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked(self.root.clone())),
                    Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", self.root.clone(), e)),
                }
            }
            // A whole-tree switch by the previous holder puts another folder
            // at this path; the lock must be on the folder that is there now.
            let held = handle.metadata().ctx("inspect", &self.root)?;
            let current = std::fs::metadata(&self.root).ctx("inspect", &self.root)?;
            if held.ino() == current.ino() && held.dev() == current.dev() {
                return Ok(Box::new(DirLock { _handle: handle }));
            }
        }
    }

    fn list_tree(&self) -> Result<Vec<(RelPath, bool)>> {
        let mut entries = Vec::new();
        let walker = walkdir::WalkDir::new(&self.root).min_depth(1).sort_by_file_name();
        for item in walker.into_iter().filter_entry(|e| !(e.depth() == 1 && e.file_name() == STATE_DIR)) {
            let item = item.map_err(|e| Error::io("list", self.root.clone(), e.into()))?;
            let relative = item.path().strip_prefix(&self.root).unwrap_or(item.path());
            let text = relative.to_str().ok_or_else(|| {
                Error::InvalidArgument(format!("`{}` has a name that is not UTF-8", item.path().display()))
            })?;
            let path =
                RelPath::new(text).map_err(|e| Error::InvalidArgument(format!("cannot adopt `{}`: {e}", self.root)))?;
            entries.push((path, item.file_type().is_dir()));
        }
        Ok(entries)
    }

    fn read_state(&self, name: &str) -> Result<Option<Vec<u8>>> {
        fsutil::read_optional(&self.state_path(name), crate::manifest::MAX_MANIFEST_BYTES)
    }

    fn state_file_size(&self, name: &str) -> Result<Option<u64>> {
        match std::fs::symlink_metadata(self.state_path(name)) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            _ => Ok(None),
        }
    }

    fn write_state(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.state_path(name);
        if let Some(parent) = path.parent() {
            fsutil::create_dir_all(parent)?;
        }
        fsutil::write_atomic(&path, bytes)
    }

    fn append_history(&self, line: &str) -> Result<()> {
        fsutil::create_dir_all(&self.state_dir)?;
        let path = self.state_path(HISTORY_FILE);
        let mut file = OpenOptions::new().create(true).append(true).open(&path).ctx("open", &path)?;
        if file.metadata().ctx("inspect", &path)?.len() == 0 {
            writeln!(file, "{HISTORY_MAGIC}").ctx("append to", &path)?;
        }
        writeln!(file, "{line}").ctx("append to", &path)?;
        file.sync_all().ctx("flush", &path)
    }

    fn remove_state(&self, name: &str) -> Result<()> {
        let path = self.state_path(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => fsutil::remove_tree(&path),
            Ok(_) => fsutil::remove_file(&path),
            Err(_) => Ok(()),
        }
    }

    fn create_staged(&self, name: &str, executable: bool) -> Result<Box<dyn StagedFile>> {
        let path = self.state_path(name);
        if let Some(parent) = path.parent() {
            fsutil::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(&path).ctx("create", &path)?;
        file.set_permissions(file_mode(executable)).ctx("set permissions of", &path)?;
        Ok(Box::new(DirStagedFile { writer: BufWriter::with_capacity(256 * 1024, file), path }))
    }

    fn file_size(&self, path: &RelPath) -> Result<Option<u64>> {
        match std::fs::symlink_metadata(path.under(&self.root)) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            _ => Ok(None),
        }
    }

    fn hash_file(&self, path: &RelPath, limit: u64) -> Result<Option<crate::digest::Hashed>> {
        let full = path.under(&self.root);
        let mut file = match File::open(&full) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", full, e)),
        };
        crate::digest::copy_hashing(&mut file, None, limit, &|_| {}).map(Some).ctx("read", &full)
    }

    fn make_dir(&self, path: &RelPath) -> Result<()> {
        let full = path.under(&self.root);
        match std::fs::create_dir(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && full.is_dir() => Ok(()),
            other => other.ctx("create folder", &full),
        }
    }

    fn save(&self, path: &RelPath, kept: &str) -> Result<()> {
        let from = path.under(&self.root);
        let to = self.state_path(kept);
        if to.exists() || !from.is_file() {
            return Ok(());
        }
        if let Some(parent) = to.parent() {
            fsutil::create_dir_all(parent)?;
        }
        if std::fs::hard_link(&from, &to).is_ok() {
            return Ok(());
        }
        // No hard links (some shared folders): copy under a temporary name
        // so that a crash never leaves a partial copy looking complete.
        let temporary = Utf8PathBuf::from(format!("{to}.ferry-tmp"));
        std::fs::copy(&from, &temporary).ctx("copy", &from)?;
        std::fs::rename(&temporary, &to).ctx("rename", &to)
    }

    fn put(&self, from: &str, to: &RelPath) -> Result<()> {
        let source = self.state_path(from);
        let destination = to.under(&self.root);
        match std::fs::rename(&source, &destination) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !source.exists() => Ok(()),
            other => other.ctx("rename into place", &destination),
        }
    }

    fn delete_file(&self, path: &RelPath) -> Result<()> {
        let full = path.under(&self.root);
        match std::fs::remove_file(&full) {
            // Gone, or already replaced by the folder (or under the file) the
            // new snapshot puts there: a journal step being run again.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(())
            }
            other => other.ctx("remove", &full),
        }
    }

    fn delete_dir(&self, path: &RelPath) -> Result<()> {
        let full = path.under(&self.root);
        match std::fs::remove_dir(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            // Files ferry never installed (left by someone else) keep the
            // folder alive; they are not ours to delete.
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
            // Already replaced by the file the new snapshot puts there (a
            // journal step being run again).
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(()),
            other => other.ctx("remove folder", &full),
        }
    }

    fn flush(&self) -> Result<()> {
        fsutil::sync_filesystem(&self.root)?;
        if !self.state_inside {
            fsutil::sync_filesystem(&self.state_dir)?;
        }
        Ok(())
    }

    fn check_space(&self) -> Result<()> {
        match self.tree_switch.get_or_init(|| self.probe_tree_switch()).disk_full {
            Some(code) => {
                Err(Error::io("create a folder beside", self.root.clone(), std::io::Error::from_raw_os_error(code)))
            }
            None => Ok(()),
        }
    }

    fn whole_tree(&self) -> Option<&dyn WholeTreeSwitch> {
        self.capabilities().atomic_tree_switch.then_some(self as &dyn WholeTreeSwitch)
    }
}

impl WholeTreeSwitch for DirTarget {
    fn recover_tree(&self) -> Result<Option<Recovery>> {
        let next = self.next_tree()?;
        let previous = self.previous_tree()?;
        let current = self.read_tree_state(&self.root);
        let mut done = None;
        if next.exists() {
            let exchanged = match (&current, self.read_tree_state(&next)) {
                (Some(current), Some(old)) => current.previous == Some(old.snapshot),
                _ => false,
            };
            if exchanged {
                remove_tree_state_first(&previous)?;
                std::fs::rename(&next, &previous).ctx("rename", &next)?;
                done = Some(Recovery::new(
                    format!("finished an interrupted switch: kept the old tree as {previous}"),
                    false,
                ));
            } else {
                remove_tree_state_first(&next)?;
                done = Some(Recovery::new(format!("removed an unfinished new tree {next}"), false));
            }
            fsutil::sync_dir(next.parent().unwrap_or(Utf8Path::new("/")))?;
        }
        // A rollback leaves an intent file in the tree it switches to: still
        // in the previous tree means the exchange has not happened yet.
        if previous.join(STATE_DIR).join(ROLLBACK_INTENT).exists() {
            exchange(&self.root, &previous).ctx("switch back to", &self.root)?;
            fsutil::sync_dir(previous.parent().unwrap_or(Utf8Path::new("/")))?;
            done = Some(Recovery::new("finished an interrupted rollback", true));
        }
        if self.state_path(ROLLBACK_INTENT).exists() {
            remove_tree_state_first(&previous)?;
            fsutil::remove_file(&self.state_path(ROLLBACK_INTENT))?;
            done = Some(Recovery::new("finished an interrupted rollback", true));
        }
        Ok(done)
    }

    fn install_tree(&self, job: &TreeInstall<'_>) -> Result<()> {
        let next = self.next_tree()?;
        remove_tree_state_first(&next)?;
        std::fs::create_dir(&next).ctx("create", &next)?;
        let manifest = job.snapshot.manifest();
        for entry in &manifest.entries {
            if let EntryKind::Dir = entry.kind {
                let dir = entry.path.under(&next);
                std::fs::create_dir(&dir).ctx("create folder", &dir)?;
            }
        }
        // Unchanged files are hard-linked from the installed tree: no data
        // copied, and the previous tree keeps its own name for the inode.
        let installed: HashMap<&RelPath, &FileEntry> = job.installed.map(|m| m.files().collect()).unwrap_or_default();
        let mut to_copy = Vec::new();
        for (path, file) in manifest.files() {
            let unchanged = installed.get(path) == Some(&file) && self.file_size(path)? == Some(file.size);
            if !(unchanged && std::fs::hard_link(path.under(&self.root), path.under(&next)).is_ok()) {
                to_copy.push((path, file));
            }
        }
        to_copy.sort_by_key(|(path, file)| (job.media.read_position(path), std::cmp::Reverse(file.size)));
        job.progress.phase("installing", to_copy.iter().map(|(_, f)| f.size).sum());
        let errors = parallel::for_each(&to_copy, true, |(path, file)| -> Result<()> {
            let destination = path.under(&next);
            let handle =
                OpenOptions::new().write(true).create_new(true).open(&destination).ctx("create", &destination)?;
            handle.set_permissions(file_mode(file.executable)).ctx("set permissions of", &destination)?;
            let mut writer = BufWriter::with_capacity(256 * 1024, handle);
            job.media.copy_verified(path, file, &mut writer, job.progress)?;
            writer.flush().ctx("write", &destination)
        });
        if let Some(error) = errors.into_iter().next() {
            remove_tree_state_first(&next)?;
            return Err(error);
        }
        crash::point("tree-built");
        let state_dir = next.join(STATE_DIR);
        std::fs::create_dir(&state_dir).ctx("create", &state_dir)?;
        fsutil::write_atomic(&state_dir.join(MANIFEST_FILE), job.snapshot.manifest_bytes())?;
        fsutil::write_atomic(&state_dir.join(SIGNATURE_FILE), job.snapshot.signature_bytes())?;
        self.copy_history(&state_dir, job.history_line)?;
        fsutil::write_atomic(&state_dir.join(STATE_FILE), &job.state.encode())?;
        fsutil::sync_filesystem(&next)?;
        // Whoever opens TARGET after the exchange finds this folder: it must
        // already be locked, or a newcomer could "recover" our last steps.
        let _new_tree_lock = lock_folder(&next)?;
        crash::point("before-exchange");
        exchange(&self.root, &next).ctx("switch in the new tree at", &self.root)?;
        let parent = next.parent().unwrap_or(Utf8Path::new("/")).to_owned();
        fsutil::sync_dir(&parent)?;
        crash::point("after-exchange");
        let previous = self.previous_tree()?;
        remove_tree_state_first(&previous)?;
        crash::point("previous-removed");
        std::fs::rename(&next, &previous).ctx("rename", &next)?;
        fsutil::sync_dir(&parent)
    }

    fn previous_tree_state(&self) -> Option<InstalledState> {
        self.read_tree_state(&self.previous_tree().ok()?)
    }

    fn rollback_tree(&self, state: &InstalledState, history_line: &str) -> Result<()> {
        let previous = self.previous_tree()?;
        let state_dir = previous.join(STATE_DIR);
        fsutil::write_atomic(&state_dir.join(ROLLBACK_INTENT), b"")?;
        self.copy_history(&state_dir, history_line)?;
        fsutil::write_atomic(&state_dir.join(STATE_FILE), &state.encode())?;
        let _returning_tree_lock = lock_folder(&previous)?;
        crash::point("rollback-prepared");
        exchange(&self.root, &previous).ctx("switch back to the previous tree at", &self.root)?;
        fsutil::sync_dir(previous.parent().unwrap_or(Utf8Path::new("/")))?;
        crash::point("rollback-exchanged");
        // One step back only: the tree rolled back from is not kept.
        remove_tree_state_first(&previous)?;
        fsutil::remove_file(&self.state_path(ROLLBACK_INTENT))
    }
}
