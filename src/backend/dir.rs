//! Local folders and mounted shared folders (SMB/NFS paths).
//!
//! On a local Linux filesystem the whole tree is switched in one step: the
//! new tree is built in the hidden sibling `PARENT/.NAME.ferry-next`
//! (unchanged files hard-linked, so no data is copied twice), then
//! `renameat2(RENAME_EXCHANGE)` swaps it with `TARGET`. The old tree becomes
//! `PARENT/.NAME.ferry-previous`, which `ferry rollback` swaps back. Where
//! the exchange is impossible (a mount point, a network filesystem, a
//! state folder outside the tree) the ordered switch of
//! [`crate::install::ordered`] is used instead. This file only provides the
//! storage primitives ([`TreeExchange`]); what goes into each tree is
//! decided by [`crate::install::tree`]. See `formats/target-state-v1.md`.

use super::{Backend, BackendLock, Capabilities, Download, STATE_DIR, Slot, StagedFile, TreeExchange};
use crate::beneath::{Dir, Kind};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::rel_path::RelPath;
use camino::{Utf8Path, Utf8PathBuf};
use std::fs::{File, Permissions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The state marker, removed first when a tree beside the live one is
/// cleared (`formats/target-state-v1.md` §4).
const STATE_MARKER: &str = "state";

/// A folder target.
#[derive(Debug)]
pub struct DirBackend {
    root: Utf8PathBuf,
    state_dir: Utf8PathBuf,
    state_inside: bool,
    make_parents: bool,
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

impl DirBackend {
    /// A target at `root` with its state in `state_dir` (default `root/.ferry`).
    pub fn new(root: &Utf8Path, state_dir: Option<&Utf8Path>) -> Self {
        let state_inside = state_dir.is_none();
        let state_dir = state_dir.map_or_else(|| root.join(STATE_DIR), Utf8Path::to_owned);
        DirBackend { root: root.to_owned(), state_dir, state_inside, make_parents: false, tree_switch: OnceLock::new() }
    }

    /// Lets [`Backend::create`] make missing parents of the target folder.
    pub fn make_parents(mut self, make_parents: bool) -> Self {
        self.make_parents = make_parents;
        self
    }

    /// The folder devices read.
    pub fn root(&self) -> &Utf8Path {
        &self.root
    }

    fn state_path(&self, name: &str) -> Utf8PathBuf {
        self.state_dir.join(name)
    }

    /// The tree devices read, opened: every path below it is resolved
    /// without following links (formats/threat-model.md §7 T1).
    fn tree(&self) -> Result<Dir> {
        Dir::root(&self.root)
    }

    /// Opens the installed file `path` to read it. A link, FIFO or device
    /// where a file was installed is no installed file: `None`, as for a
    /// missing one (it is replaced, never read).
    fn open_installed(&self, path: &RelPath) -> Result<Option<std::fs::File>> {
        match self.tree()?.open_file(path.as_path()) {
            Ok(file) => Ok(Some(file)),
            Err(Error::SymbolicLink { .. } | Error::WrongKind { .. }) => Ok(None),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The state folder, opened without following links below TARGET (a
    /// `.ferry` that is a link is refused), or the `--state-dir` given;
    /// created first with `create`, else `None` when it does not exist.
    fn state(&self, create: bool) -> Result<Option<Dir>> {
        match (self.state_inside, create) {
            (true, true) => Ok(Some(self.tree()?.create(Utf8Path::new(STATE_DIR))?)),
            (true, false) => self.tree()?.open_if_present(Utf8Path::new(STATE_DIR)),
            (false, true) => {
                fsutil::create_dir_all(&self.state_dir)?;
                Dir::root(&self.state_dir).map(Some)
            }
            (false, false) => Dir::root_if_present(&self.state_dir),
        }
    }

    /// The tree file `path` and the state entry `kept` that `save` or `keep`
    /// would fill, or `None` when there is nothing to do: `kept` exists, or
    /// `path` is gone or not a file (a kind change being replayed).
    fn to_keep<'a>(&self, path: &'a RelPath, kept: &'a str) -> Result<Option<(Dir, &'a str, Dir, &'a str)>> {
        let (from_dir, from_name) = match self.tree()?.parent_of(path.as_path()) {
            Ok(Some(found)) => found,
            Ok(None) | Err(Error::WrongKind { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        if from_dir.kind(Utf8Path::new(from_name))? != Some(Kind::File) {
            return Ok(None);
        }
        let (to_dir, to_name) = self.state_entry(kept)?;
        Ok((to_dir.kind(Utf8Path::new(to_name))?.is_none()).then_some((from_dir, from_name, to_dir, to_name)))
    }

    /// The folder (created) that holds the state file `name`, and its last name.
    fn state_entry<'a>(&self, name: &'a str) -> Result<(Dir, &'a str)> {
        let name = Utf8Path::new(name);
        let state = self.state(true).and_then(|state| state.ok_or_else(|| missing(&self.state_dir)))?;
        let folder = state.create(name.parent().unwrap_or(Utf8Path::new("")))?;
        Ok((folder, name.file_name().unwrap_or_default()))
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
}

/// Takes the import lock on a folder that is about to become TARGET.
fn lock_folder(folder: Dir) -> Result<File> {
    let path = folder.path().to_owned();
    let handle = folder.into_file();
    handle.lock().ctx("lock", &path)?;
    Ok(handle)
}

/// Who holds the `flock` on the folder with metadata `meta`, from the
/// kernel's lock table (`/proc/locks`: "N: FLOCK ADVISORY WRITE PID
/// MAJOR:MINOR:INODE ..."), so that no lock file can go stale.
fn flock_holder(meta: &std::fs::Metadata) -> String {
    let wanted = format!("{:02x}:{:02x}:{}", rustix::fs::major(meta.dev()), rustix::fs::minor(meta.dev()), meta.ino());
    let table = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let pid = table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&wanted.as_str())).then(|| fields.get(4).copied())?
    });
    match pid {
        Some(pid) => {
            let command = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|text| text.replace('\0', " ").trim().to_owned())
                .unwrap_or_default();
            if command.is_empty() { format!("PID {pid}") } else { format!("PID {pid}: {command}") }
        }
        None => "holder not found in /proc/locks".into(),
    }
}

fn missing(path: &Utf8Path) -> Error {
    Error::io("open", path, std::io::ErrorKind::NotFound.into())
}

/// Whether `error` says a path (or a folder on the way) does not exist.
fn is_not_found(error: &Error) -> bool {
    matches!(error, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
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

impl Backend for DirBackend {
    fn location(&self) -> String {
        self.root.to_string()
    }

    fn state_location(&self) -> String {
        self.state_dir.to_string()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { cheap_metadata: true, keeps_by_moving: false }
    }

    fn create(&self) -> Result<bool> {
        let missing = crate::destination::check_folder(&self.root, "TARGET", self.make_parents)?;
        for folder in &missing {
            std::fs::create_dir(folder).ctx("create", folder)?;
        }
        Ok(!missing.is_empty())
    }

    fn is_missing(&self) -> Result<bool> {
        Ok(!crate::destination::check_folder(&self.root, "TARGET", self.make_parents)?.is_empty())
    }

    fn discard(&self) -> Result<()> {
        fsutil::remove_tree(&self.root)
    }

    fn lock(&self, wait: bool) -> Result<BackendLock> {
        loop {
            let handle = File::open(&self.root).ctx("open", &self.root)?;
            if wait {
                handle.lock().ctx("lock", &self.root)?;
            } else {
                match handle.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => {
                        let meta = handle.metadata().ctx("inspect", &self.root)?;
                        return Err(Error::Locked { target: self.root.clone(), holder: flock_holder(&meta) });
                    }
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
        match self.state(false)? {
            Some(state) => state.read_capped(Utf8Path::new(name), crate::manifest::MAX_MANIFEST_BYTES),
            None => Ok(None),
        }
    }

    fn state_file_size(&self, name: &str) -> Result<Option<u64>> {
        match self.state(false)? {
            Some(state) => state.file_size(Utf8Path::new(name)),
            None => Ok(None),
        }
    }

    fn write_state(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let (folder, name) = self.state_entry(name)?;
        folder.write_atomic(name, bytes)
    }

    fn append_state(&self, name: &str, first_line: &str, line: &str) -> Result<()> {
        let path = self.state_path(name);
        let (folder, name) = self.state_entry(name)?;
        let mut file = folder.open_append(name)?;
        if file.metadata().ctx("inspect", &path)?.len() == 0 {
            writeln!(file, "{first_line}").ctx("append to", &path)?;
        }
        writeln!(file, "{line}").ctx("append to", &path)?;
        file.sync_all().ctx("flush", &path)
    }

    fn remove_state(&self, name: &str) -> Result<()> {
        let Some(state) = self.state(false)? else { return Ok(()) };
        match state.parent_of(Utf8Path::new(name))? {
            Some((folder, name)) => folder.remove_tree(name),
            None => Ok(()),
        }
    }

    fn create_staged(&self, name: &str, executable: bool) -> Result<Box<dyn StagedFile>> {
        let path = self.state_path(name);
        let (folder, name) = self.state_entry(name)?;
        // A leftover of an interrupted run (or a link planted there) is
        // removed, never written through.
        folder.remove_file(name)?;
        let file = folder.create_file(name)?;
        file.set_permissions(file_mode(executable)).ctx("set permissions of", &path)?;
        Ok(Box::new(DirStagedFile { writer: BufWriter::with_capacity(256 * 1024, file), path }))
    }

    fn file_size(&self, path: &RelPath) -> Result<Option<u64>> {
        match self.tree()?.file_size(path.as_path()) {
            // A file on the way where a folder was: no file here.
            Err(Error::WrongKind { .. }) => Ok(None),
            other => other,
        }
    }

    fn file_sizes(&self, paths: &[&RelPath]) -> Result<Vec<Option<u64>>> {
        // Each folder is opened once (from the root, without following
        // links) instead of once per file, and folders are read on every
        // core: a delta checks every file it keeps in place, thousands of
        // them (formats/delta-v1.md DI3).
        let tree = self.tree()?;
        let mut order: Vec<usize> = (0..paths.len()).collect();
        order.sort_by_key(|&n| paths[n].as_path().parent());
        let folders: Vec<&[usize]> =
            order.chunk_by(|&a, &b| paths[a].as_path().parent() == paths[b].as_path().parent()).collect();
        let sizes = Mutex::new(vec![None; paths.len()]);
        let errors = crate::parallel::for_each(&folders, true, |files| -> Result<()> {
            let parent = paths[files[0]].as_path().parent().unwrap_or(Utf8Path::new(""));
            let dir = match tree.open_if_present(parent) {
                // A file on the way where a folder was: no file here.
                Err(Error::WrongKind { .. }) => return Ok(()),
                other => other?,
            };
            let Some(dir) = dir else { return Ok(()) };
            let found: Vec<(usize, Option<u64>)> =
                files.iter().map(|&n| Ok((n, dir.entry_size(paths[n].file_name())?))).collect::<Result<_>>()?;
            let mut sizes = sizes.lock().unwrap_or_else(PoisonError::into_inner);
            for (n, size) in found {
                sizes[n] = size;
            }
            Ok(())
        });
        match errors.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(sizes.into_inner().unwrap_or_else(PoisonError::into_inner)),
        }
    }

    fn copy_file(&self, path: &RelPath, limit: u64, to: &mut dyn Download) -> Result<Option<crate::digest::Hashed>> {
        let Some(mut file) = self.open_installed(path)? else { return Ok(None) };
        crate::digest::copy_hashing(&mut file, Some(to), limit, &|_| {}).map(Some).ctx("read", &path.under(&self.root))
    }

    fn make_dir(&self, path: &RelPath) -> Result<()> {
        self.tree()?.create(path.as_path()).map(drop)
    }

    fn save(&self, path: &RelPath, kept: &str) -> Result<()> {
        let from = path.under(&self.root);
        let Some((from_dir, from_name, to_dir, to_name)) = self.to_keep(path, kept)? else { return Ok(()) };
        if from_dir.hard_link_to(from_name, &to_dir, to_name).is_ok() {
            return Ok(());
        }
        // No hard links (some shared folders): copy under a temporary name
        // so that a crash never leaves a partial copy looking complete.
        let temporary = format!("{to_name}.ferry-tmp");
        to_dir.remove_file(&temporary)?;
        let mut reader = from_dir.open_file(Utf8Path::new(from_name))?;
        let mut writer = to_dir.create_file(&temporary)?;
        std::io::copy(&mut reader, &mut writer).ctx("copy", &from)?;
        let mode = reader.metadata().ctx("inspect", &from)?.permissions();
        writer.set_permissions(mode).ctx("copy", &from)?;
        to_dir.rename_to(&temporary, &to_dir, to_name).ctx("rename", &self.state_path(kept))
    }

    fn keep(&self, path: &RelPath, kept: &str) -> Result<()> {
        let Some((from_dir, from_name, to_dir, to_name)) = self.to_keep(path, kept)? else { return Ok(()) };
        from_dir.rename_to(from_name, &to_dir, to_name).ctx("rename", &path.under(&self.root))
    }

    fn put(&self, from: &str, to: &RelPath) -> Result<()> {
        let destination = to.under(&self.root);
        let Some((from_dir, from_name)) =
            self.state(false)?.map(|s| s.parent_of(Utf8Path::new(from))).transpose()?.flatten()
        else {
            return Ok(());
        };
        let (to_dir, to_name) = self.tree()?.parent_of(to.as_path())?.ok_or_else(|| missing(&destination))?;
        match from_dir.rename_to(from_name, &to_dir, to_name) {
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && from_dir.kind(Utf8Path::new(from_name))?.is_none() =>
            {
                Ok(())
            }
            other => other.ctx("rename into place", &destination),
        }
    }

    fn delete_file(&self, path: &RelPath) -> Result<()> {
        self.delete(path, false)
    }

    fn delete_dir(&self, path: &RelPath) -> Result<()> {
        self.delete(path, true)
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

    fn tree_exchange(&self) -> Option<&dyn TreeExchange> {
        self.tree_switch.get_or_init(|| self.probe_tree_switch()).works.then_some(self as &dyn TreeExchange)
    }
}

impl DirBackend {
    /// Removes a tree file (or an empty folder, with `folder`) without
    /// following a link on the way. What is already gone, or already
    /// replaced by what the new snapshot puts there (a journal step run
    /// again), is fine; a folder that still holds files ferry never
    /// installed stays (they are not ours to delete).
    fn delete(&self, path: &RelPath, folder: bool) -> Result<()> {
        let full = path.under(&self.root);
        let (dir, name) = match self.tree()?.parent_of(path.as_path()) {
            Ok(Some(found)) => found,
            Ok(None) | Err(Error::WrongKind { .. }) => return Ok(()),
            Err(error) => return Err(error),
        };
        match dir.unlink(name, folder) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::IsADirectory
                        | std::io::ErrorKind::NotADirectory
                        | std::io::ErrorKind::DirectoryNotEmpty
                ) && (folder || e.kind() != std::io::ErrorKind::DirectoryNotEmpty) =>
            {
                Ok(())
            }
            other => other.ctx(if folder { "remove folder" } else { "remove" }, &full),
        }
    }

    /// The folder holding the trees beside TARGET (trusted: it holds
    /// TARGET), opened, and the name of the tree in `slot` in it.
    fn slot_entry(&self, slot: Slot) -> Result<(Dir, String)> {
        let path = self.slot_path(slot)?;
        let name = path.file_name().unwrap_or_default().to_owned();
        Ok((Dir::root(&self.parent_of_trees()?)?, name))
    }

    /// The tree in `slot`, opened without following a link there.
    fn slot_dir(&self, slot: Slot) -> Result<Dir> {
        let (parent, name) = self.slot_entry(slot)?;
        parent.open(Utf8Path::new(&name))
    }

    /// Refuses a tree in `slot` that is not a real folder (a link planted
    /// beside TARGET must never become TARGET).
    fn check_slot(&self, slot: Slot) -> Result<()> {
        self.slot_dir(slot).map(drop)
    }

    fn slot_path(&self, slot: Slot) -> Result<Utf8PathBuf> {
        match slot {
            Slot::Next => self.next_tree(),
            Slot::Previous => self.previous_tree(),
        }
    }

    fn parent_of_trees(&self) -> Result<Utf8PathBuf> {
        let next = self.next_tree()?;
        Ok(next.parent().unwrap_or(Utf8Path::new("/")).to_owned())
    }
}

impl TreeExchange for DirBackend {
    fn exists(&self, slot: Slot) -> bool {
        self.slot_entry(slot).is_ok_and(|(parent, name)| matches!(parent.kind(Utf8Path::new(&name)), Ok(Some(_))))
    }

    fn clear(&self, slot: Slot) -> Result<()> {
        let (parent, name) = self.slot_entry(slot)?;
        if parent.kind(Utf8Path::new(&name))? == Some(Kind::Dir) {
            let tree = parent.open(Utf8Path::new(&name))?;
            if tree.kind(Utf8Path::new(STATE_DIR))? == Some(Kind::Dir) {
                tree.open(Utf8Path::new(STATE_DIR))?.remove_file(STATE_MARKER)?;
            }
        }
        // A link (or file) there is removed as itself, never followed.
        parent.remove_tree(&name)
    }

    fn create(&self, slot: Slot) -> Result<()> {
        let tree = self.slot_path(slot)?;
        std::fs::create_dir(&tree).ctx("create", &tree)?;
        self.slot_dir(slot)?.create(Utf8Path::new(STATE_DIR)).map(drop)
    }

    fn make_dirs(&self, slot: Slot, paths: &[&RelPath]) -> Result<()> {
        let root = self.slot_dir(slot)?;
        // Each folder is created in the nearest folder above it that is
        // still open on the way down (at most MAX_OPEN_FOLDERS of them: a hostile
        // manifest nests deeper than the handles a process may hold).
        let mut open: Vec<(&Utf8Path, Dir)> = Vec::new();
        for path in paths.iter().map(|p| p.as_path()) {
            while open.last().is_some_and(|(above, _)| !path.starts_with(above)) {
                open.pop();
            }
            let dir = match open.last() {
                Some((above, dir)) => dir.create(path.strip_prefix(above).unwrap_or(path))?,
                None => root.create(path)?,
            };
            if open.len() < crate::beneath::MAX_OPEN_FOLDERS {
                open.push((path, dir));
            }
        }
        Ok(())
    }

    fn link_live(&self, slot: Slot, paths: &[&RelPath]) -> Vec<bool> {
        let (Ok(live), Ok(next)) = (self.tree(), self.slot_dir(slot)) else { return vec![false; paths.len()] };
        // Files of one folder follow each other in manifest order: the two
        // folders are opened once for all of them.
        let mut folders: Option<(&Utf8Path, Option<(Dir, Dir)>)> = None;
        paths
            .iter()
            .map(|path| {
                let parent = path.as_path().parent().unwrap_or(Utf8Path::new(""));
                if folders.as_ref().is_none_or(|(open, _)| *open != parent) {
                    let pair = match (live.open_if_present(parent), next.open_if_present(parent)) {
                        (Ok(Some(from)), Ok(Some(to))) => Some((from, to)),
                        _ => None,
                    };
                    folders = Some((parent, pair));
                }
                let Some((_, Some((from, to)))) = &folders else { return false };
                let name = path.file_name();
                from.hard_link_to(name, to, name).is_ok()
            })
            .collect()
    }

    fn create_file(&self, slot: Slot, path: &RelPath, executable: bool) -> Result<Box<dyn StagedFile>> {
        let destination = path.under(&self.slot_path(slot)?);
        let (folder, name) = self.slot_dir(slot)?.parent_of(path.as_path())?.ok_or_else(|| missing(&destination))?;
        let handle = folder.create_file(name)?;
        handle.set_permissions(file_mode(executable)).ctx("set permissions of", &destination)?;
        Ok(Box::new(DirStagedFile { writer: BufWriter::with_capacity(256 * 1024, handle), path: destination }))
    }

    fn read_state(&self, slot: Slot, name: &str) -> Result<Option<Vec<u8>>> {
        let (parent, tree) = self.slot_entry(slot)?;
        let path = Utf8Path::new(&tree).join(STATE_DIR).join(name);
        parent.read_capped(&path, crate::manifest::MAX_MANIFEST_BYTES)
    }

    fn write_state(&self, slot: Slot, name: &str, bytes: &[u8]) -> Result<()> {
        self.slot_dir(slot)?.open(Utf8Path::new(STATE_DIR))?.write_atomic(name, bytes)
    }

    fn sync(&self, slot: Slot) -> Result<()> {
        self.slot_dir(slot)?.sync_filesystem()
    }

    fn lock(&self, slot: Slot) -> Result<BackendLock> {
        let handle = lock_folder(self.slot_dir(slot)?)?;
        Ok(Box::new(DirLock { _handle: handle }))
    }

    fn exchange(&self, slot: Slot) -> Result<()> {
        self.check_slot(slot)?;
        exchange(&self.root, &self.slot_path(slot)?).ctx("switch trees at", &self.root)?;
        fsutil::sync_dir(&self.parent_of_trees()?)
    }

    fn keep_next_as_previous(&self) -> Result<()> {
        self.check_slot(Slot::Next)?;
        let next = self.next_tree()?;
        std::fs::rename(&next, self.previous_tree()?).ctx("rename", &next)?;
        fsutil::sync_dir(&self.parent_of_trees()?)
    }

    fn describe(&self, slot: Slot) -> String {
        self.slot_path(slot).map_or_else(|_| format!("{slot:?}"), |path| path.to_string())
    }
}
