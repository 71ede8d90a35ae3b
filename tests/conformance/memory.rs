//! An in-memory back end: the sketch of a new kind of update source.
//!
//! Everything a kind of update source provides is in this one file: the
//! [`Backend`] storage primitives (a tree devices read, a state folder,
//! staged files, an import lock) and the optional [`TreeExchange`]
//! capability (trees beside the live one, swapped in one step). Nothing
//! here decides what to write or checks that it is right: the install
//! engine above does that for every kind alike. A real kind would live in
//! `src/backend/` and get one line in the registry, `backend::open`; this
//! one lives in the tests, where the conformance suite runs every case
//! against it under both switches.
//!
//! It is as strict as real storage: a folder or a file needs its parent
//! folder, nothing is put over a folder, and a folder is removed only when
//! empty, so an install plan that gets the order wrong fails here too.
//! File modes are not kept: nothing in [`Backend`] reads them back.

use ferry::backend::{Backend, BackendLock, Capabilities, Download, Slot, StagedFile, TreeExchange};
use ferry::digest::{Hashed, copy_hashing};
use ferry::error::{Error, Result};
use ferry::rel_path::RelPath;
use std::collections::{BTreeMap, HashSet};
use std::io::{ErrorKind, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A folder, or a file's bytes (shared, so linking a file copies nothing).
#[derive(Clone)]
enum Node {
    Dir,
    File(Arc<Vec<u8>>),
}

/// One tree and its own state folder, as the whole-tree switch needs.
#[derive(Default)]
struct Tree {
    /// Tells locks apart: a lock belongs to a tree, not to a slot.
    id: u64,
    entries: BTreeMap<RelPath, Node>,
    state: BTreeMap<String, Arc<Vec<u8>>>,
}

/// Everything stored, behind one mutex.
#[derive(Default)]
struct Store {
    live: Tree,
    next: Option<Tree>,
    previous: Option<Tree>,
    /// Ids of the trees whose import lock is held.
    locked: HashSet<u64>,
    trees_made: u64,
}

#[derive(Default)]
struct Shared {
    store: Mutex<Store>,
    unlocked: Condvar,
}

/// An update source held in memory; it lives as long as the value.
pub struct MemoryBackend {
    name: String,
    shared: Arc<Shared>,
}

impl MemoryBackend {
    /// An empty source called `memory:NAME` in messages.
    pub fn new(name: &str) -> Self {
        MemoryBackend { name: name.to_owned(), shared: Arc::default() }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.shared.store.lock().expect("memory store poisoned")
    }

    fn fail(&self, action: &'static str, what: &str, kind: ErrorKind) -> Error {
        Error::io(action, format!("memory:{}/{what}", self.name), kind.into())
    }

    /// The tree in `slot` of `store`.
    fn slot<'s>(&self, store: &'s mut Store, slot: Slot) -> Result<&'s mut Tree> {
        let tree = match slot {
            Slot::Next => store.next.as_mut(),
            Slot::Previous => store.previous.as_mut(),
        };
        tree.ok_or_else(|| self.fail("open", &format!("{slot:?}"), ErrorKind::NotFound))
    }
}

impl Tree {
    fn is_dir(&self, path: &RelPath) -> bool {
        matches!(self.entries.get(path), Some(Node::Dir))
    }

    fn has_parent(&self, path: &RelPath) -> bool {
        path.parent().is_none_or(|parent| self.is_dir(&parent))
    }

    fn make_dir(&mut self, path: &RelPath) -> std::result::Result<(), ErrorKind> {
        match self.entries.get(path) {
            Some(Node::Dir) => Ok(()),
            Some(Node::File(_)) => Err(ErrorKind::AlreadyExists),
            None if !self.has_parent(path) => Err(ErrorKind::NotFound),
            None => {
                self.entries.insert(path.clone(), Node::Dir);
                Ok(())
            }
        }
    }

    fn put_file(&mut self, path: &RelPath, bytes: Arc<Vec<u8>>) -> std::result::Result<(), ErrorKind> {
        if self.is_dir(path) {
            return Err(ErrorKind::IsADirectory);
        }
        if !self.has_parent(path) {
            return Err(ErrorKind::NotFound);
        }
        self.entries.insert(path.clone(), Node::File(bytes));
        Ok(())
    }

    fn file(&self, path: &RelPath) -> Option<Arc<Vec<u8>>> {
        match self.entries.get(path) {
            Some(Node::File(bytes)) => Some(bytes.clone()),
            _ => None,
        }
    }
}

/// Who holds a lock, for messages: only this process can see the store.
const HOLDER: &str = "another thread of this process";

/// The import lock on one tree; released (and waiters woken) on drop.
struct MemoryLock {
    shared: Arc<Shared>,
    tree: u64,
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        if let Ok(mut store) = self.shared.store.lock() {
            store.locked.remove(&self.tree);
        }
        self.shared.unlocked.notify_all();
    }
}

/// Where a file being written lands when it is committed.
enum Destination {
    State(String),
    Slot(Slot, RelPath),
}

struct MemoryFile {
    shared: Arc<Shared>,
    destination: Destination,
    bytes: Vec<u8>,
}

impl Write for MemoryFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl StagedFile for MemoryFile {
    fn commit(self: Box<Self>) -> Result<()> {
        let mut store = self.shared.store.lock().expect("memory store poisoned");
        let bytes = Arc::new(self.bytes);
        match self.destination {
            Destination::State(name) => {
                store.live.state.insert(name, bytes);
            }
            Destination::Slot(slot, path) => {
                let tree = match slot {
                    Slot::Next => store.next.as_mut(),
                    Slot::Previous => store.previous.as_mut(),
                };
                let gone = || Error::io("write", path.as_str(), ErrorKind::NotFound.into());
                tree.ok_or_else(gone)?
                    .put_file(&path, bytes)
                    .map_err(|kind| Error::io("write", path.as_str(), kind.into()))?;
            }
        }
        Ok(())
    }
}

impl Backend for MemoryBackend {
    fn location(&self) -> String {
        format!("memory:{}", self.name)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { cheap_metadata: true, keeps_by_moving: false }
    }

    /// The store always exists, like the root of an FTP account: nothing to
    /// create, so nothing for a failed first import to discard.
    fn create(&self) -> Result<bool> {
        Ok(false)
    }

    fn lock(&self, wait: bool) -> Result<BackendLock> {
        let mut store = self.store();
        loop {
            let tree = store.live.id;
            if store.locked.insert(tree) {
                return Ok(Box::new(MemoryLock { shared: self.shared.clone(), tree }));
            }
            if !wait {
                return Err(Error::Locked { target: self.location().into(), holder: HOLDER.into() });
            }
            store = self.shared.unlocked.wait(store).expect("memory store poisoned");
        }
    }

    fn list_tree(&self) -> Result<Vec<(RelPath, bool)>> {
        Ok(self.store().live.entries.iter().map(|(path, node)| (path.clone(), matches!(node, Node::Dir))).collect())
    }

    fn read_state(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.store().live.state.get(name).map(|bytes| bytes.to_vec()))
    }

    fn state_file_size(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.store().live.state.get(name).map(|bytes| bytes.len() as u64))
    }

    fn write_state(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.store().live.state.insert(name.to_owned(), Arc::new(bytes.to_vec()));
        Ok(())
    }

    fn append_state(&self, name: &str, first_line: &str, line: &str) -> Result<()> {
        let mut store = self.store();
        let mut text =
            store.live.state.get(name).map_or_else(|| format!("{first_line}\n").into_bytes(), |b| b.to_vec());
        text.extend_from_slice(format!("{line}\n").as_bytes());
        store.live.state.insert(name.to_owned(), Arc::new(text));
        Ok(())
    }

    fn remove_state(&self, name: &str) -> Result<()> {
        let inside = format!("{name}/");
        self.store().live.state.retain(|key, _| key != name && !key.starts_with(&inside));
        Ok(())
    }

    fn create_staged(&self, name: &str, _executable: bool) -> Result<Box<dyn StagedFile>> {
        let destination = Destination::State(name.to_owned());
        Ok(Box::new(MemoryFile { shared: self.shared.clone(), destination, bytes: Vec::new() }))
    }

    fn file_size(&self, path: &RelPath) -> Result<Option<u64>> {
        Ok(self.store().live.file(path).map(|bytes| bytes.len() as u64))
    }

    fn copy_file(&self, path: &RelPath, limit: u64, to: &mut dyn Download) -> Result<Option<Hashed>> {
        let Some(bytes) = self.store().live.file(path) else { return Ok(None) };
        let hashed = copy_hashing(&mut bytes.as_slice(), Some(to), limit, &|_| {});
        hashed.map(Some).map_err(|e| Error::io("read", path.as_str(), e))
    }

    fn make_dir(&self, path: &RelPath) -> Result<()> {
        self.store().live.make_dir(path).map_err(|kind| self.fail("create folder", path.as_str(), kind))
    }

    fn save(&self, path: &RelPath, kept: &str) -> Result<()> {
        let mut store = self.store();
        if let (false, Some(bytes)) = (store.live.state.contains_key(kept), store.live.file(path)) {
            store.live.state.insert(kept.to_owned(), bytes);
        }
        Ok(())
    }

    fn keep(&self, path: &RelPath, kept: &str) -> Result<()> {
        let mut store = self.store();
        if let (false, Some(bytes)) = (store.live.state.contains_key(kept), store.live.file(path)) {
            store.live.state.insert(kept.to_owned(), bytes);
            store.live.entries.remove(path);
        }
        Ok(())
    }

    fn put(&self, from: &str, to: &RelPath) -> Result<()> {
        let mut store = self.store();
        let Some(bytes) = store.live.state.get(from).cloned() else { return Ok(()) };
        store.live.put_file(to, bytes).map_err(|kind| self.fail("rename into place", to.as_str(), kind))?;
        store.live.state.remove(from);
        Ok(())
    }

    fn delete_file(&self, path: &RelPath) -> Result<()> {
        let mut store = self.store();
        if store.live.file(path).is_some() {
            store.live.entries.remove(path);
        }
        Ok(())
    }

    fn delete_dir(&self, path: &RelPath) -> Result<()> {
        let mut store = self.store();
        let inside = format!("{path}/");
        // Entries ferry never installed keep a folder alive, as on disk.
        if store.live.is_dir(path) && !store.live.entries.keys().any(|p| p.as_str().starts_with(&inside)) {
            store.live.entries.remove(path);
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn tree_exchange(&self) -> Option<&dyn TreeExchange> {
        Some(self)
    }
}

impl TreeExchange for MemoryBackend {
    fn exists(&self, slot: Slot) -> bool {
        self.slot(&mut self.store(), slot).is_ok()
    }

    fn clear(&self, slot: Slot) -> Result<()> {
        let mut store = self.store();
        match slot {
            Slot::Next => store.next = None,
            Slot::Previous => store.previous = None,
        }
        Ok(())
    }

    fn create(&self, slot: Slot) -> Result<()> {
        let mut store = self.store();
        store.trees_made += 1;
        let tree = Tree { id: store.trees_made, ..Tree::default() };
        let place = match slot {
            Slot::Next => &mut store.next,
            Slot::Previous => &mut store.previous,
        };
        if place.is_some() {
            return Err(self.fail("create", &format!("{slot:?}"), ErrorKind::AlreadyExists));
        }
        *place = Some(tree);
        Ok(())
    }

    fn make_dirs(&self, slot: Slot, paths: &[&RelPath]) -> Result<()> {
        let mut store = self.store();
        let tree = self.slot(&mut store, slot)?;
        for path in paths {
            tree.make_dir(path).map_err(|kind| self.fail("create folder", path.as_str(), kind))?;
        }
        Ok(())
    }

    fn link_live(&self, slot: Slot, paths: &[&RelPath]) -> Vec<bool> {
        let mut store = self.store();
        paths
            .iter()
            .map(|path| {
                let Some(bytes) = store.live.file(path) else { return false };
                self.slot(&mut store, slot).is_ok_and(|tree| tree.put_file(path, bytes).is_ok())
            })
            .collect()
    }

    fn create_file(&self, slot: Slot, path: &RelPath, _executable: bool) -> Result<Box<dyn StagedFile>> {
        let mut store = self.store();
        if self.slot(&mut store, slot)?.entries.contains_key(path) {
            return Err(self.fail("create", path.as_str(), ErrorKind::AlreadyExists));
        }
        let destination = Destination::Slot(slot, path.clone());
        Ok(Box::new(MemoryFile { shared: self.shared.clone(), destination, bytes: Vec::new() }))
    }

    fn read_state(&self, slot: Slot, name: &str) -> Result<Option<Vec<u8>>> {
        let mut store = self.store();
        Ok(self.slot(&mut store, slot)?.state.get(name).map(|bytes| bytes.to_vec()))
    }

    fn write_state(&self, slot: Slot, name: &str, bytes: &[u8]) -> Result<()> {
        let mut store = self.store();
        self.slot(&mut store, slot)?.state.insert(name.to_owned(), Arc::new(bytes.to_vec()));
        Ok(())
    }

    fn sync(&self, _slot: Slot) -> Result<()> {
        Ok(())
    }

    fn lock(&self, slot: Slot) -> Result<BackendLock> {
        let mut store = self.store();
        let tree = self.slot(&mut store, slot)?.id;
        if !store.locked.insert(tree) {
            return Err(Error::Locked { target: self.describe(slot).into(), holder: HOLDER.into() });
        }
        Ok(Box::new(MemoryLock { shared: self.shared.clone(), tree }))
    }

    fn exchange(&self, slot: Slot) -> Result<()> {
        let mut store = self.store();
        let Store { live, next, previous, .. } = &mut *store;
        let other = match slot {
            Slot::Next => next,
            Slot::Previous => previous,
        };
        let other = other.as_mut().ok_or_else(|| self.fail("switch", &format!("{slot:?}"), ErrorKind::NotFound))?;
        std::mem::swap(live, other);
        Ok(())
    }

    fn keep_next_as_previous(&self) -> Result<()> {
        let mut store = self.store();
        if store.previous.is_some() {
            return Err(self.fail("rename", "Previous", ErrorKind::AlreadyExists));
        }
        store.previous = Some(store.next.take().ok_or_else(|| self.fail("rename", "Next", ErrorKind::NotFound))?);
        Ok(())
    }

    fn describe(&self, slot: Slot) -> String {
        format!("memory:{}/{slot:?}", self.name)
    }
}
