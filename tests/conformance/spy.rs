//! A wrapper around any back end that records every call that changes
//! something, in order, and can make one kind of call fail: how the suite
//! checks the order of an install (the state marker last) and interrupts
//! a switch at a chosen step on every back end alike.

use ferry::backend::{Backend, BackendLock, Capabilities, Download, Slot, StagedFile, TreeExchange};
use ferry::digest::Hashed;
use ferry::error::{Error, Result};
use ferry::rel_path::RelPath;
use std::sync::Mutex;

/// Records the calls made to `inner`; see the module comment.
pub struct Spy<'a> {
    inner: &'a dyn Backend,
    log: Mutex<Vec<String>>,
    /// Calls whose record starts with this prefix fail once `after` of
    /// them have succeeded.
    fail: Option<(&'static str, usize)>,
}

impl<'a> Spy<'a> {
    /// Records and passes every call through.
    pub fn new(inner: &'a dyn Backend) -> Self {
        Spy { inner, log: Mutex::default(), fail: None }
    }

    /// Like [`new`](Self::new), but calls recorded as `prefix...` fail
    /// after the first `after` of them succeeded.
    pub fn failing(inner: &'a dyn Backend, prefix: &'static str, after: usize) -> Self {
        Spy { inner, log: Mutex::default(), fail: Some((prefix, after)) }
    }

    /// The calls made so far, one line each (`put staging/000000 a/b`).
    pub fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Records `call`, or fails it when it is the one to fail.
    fn record(&self, call: String) -> Result<()> {
        let mut log = self.log.lock().unwrap();
        if let Some((prefix, after)) = self.fail
            && call.starts_with(prefix)
            && log.iter().filter(|done| done.starts_with(prefix)).count() >= after
        {
            return Err(Error::io("run", call, std::io::Error::other("failure injected by the conformance suite")));
        }
        log.push(call);
        Ok(())
    }

    fn trees(&self) -> &dyn TreeExchange {
        self.inner.tree_exchange().expect("the spy offers a tree exchange only when its back end does")
    }
}

impl Backend for Spy<'_> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn state_location(&self) -> String {
        self.inner.state_location()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn parallelism(&self) -> usize {
        self.inner.parallelism()
    }
    fn create(&self) -> Result<bool> {
        self.inner.create()
    }
    fn discard(&self) -> Result<()> {
        self.record("discard".into())?;
        self.inner.discard()
    }
    fn lock(&self, wait: bool) -> Result<BackendLock> {
        self.inner.lock(wait)
    }
    fn list_tree(&self) -> Result<Vec<(RelPath, bool)>> {
        self.inner.list_tree()
    }
    fn read_state(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.inner.read_state(name)
    }
    fn state_file_size(&self, name: &str) -> Result<Option<u64>> {
        self.inner.state_file_size(name)
    }
    fn write_state(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.record(format!("write_state {name}"))?;
        self.inner.write_state(name, bytes)
    }
    fn append_state(&self, name: &str, first_line: &str, line: &str) -> Result<()> {
        self.record(format!("append_state {name}"))?;
        self.inner.append_state(name, first_line, line)
    }
    fn remove_state(&self, name: &str) -> Result<()> {
        self.record(format!("remove_state {name}"))?;
        self.inner.remove_state(name)
    }
    fn create_staged(&self, name: &str, executable: bool) -> Result<Box<dyn StagedFile>> {
        self.record(format!("create_staged {name}"))?;
        self.inner.create_staged(name, executable)
    }
    fn file_size(&self, path: &RelPath) -> Result<Option<u64>> {
        self.inner.file_size(path)
    }
    fn copy_file(&self, path: &RelPath, limit: u64, to: &mut dyn Download) -> Result<Option<Hashed>> {
        self.inner.copy_file(path, limit, to)
    }
    fn make_dir(&self, path: &RelPath) -> Result<()> {
        self.record(format!("make_dir {path}"))?;
        self.inner.make_dir(path)
    }
    fn save(&self, path: &RelPath, kept: &str) -> Result<()> {
        self.record(format!("save {path} {kept}"))?;
        self.inner.save(path, kept)
    }
    fn keep(&self, path: &RelPath, kept: &str) -> Result<()> {
        self.record(format!("keep {path} {kept}"))?;
        self.inner.keep(path, kept)
    }
    fn put(&self, from: &str, to: &RelPath) -> Result<()> {
        self.record(format!("put {from} {to}"))?;
        self.inner.put(from, to)
    }
    fn delete_file(&self, path: &RelPath) -> Result<()> {
        self.record(format!("delete_file {path}"))?;
        self.inner.delete_file(path)
    }
    fn delete_dir(&self, path: &RelPath) -> Result<()> {
        self.record(format!("delete_dir {path}"))?;
        self.inner.delete_dir(path)
    }
    fn flush(&self) -> Result<()> {
        self.record("flush".into())?;
        self.inner.flush()
    }
    fn check_space(&self) -> Result<()> {
        self.inner.check_space()
    }
    fn tree_exchange(&self) -> Option<&dyn TreeExchange> {
        self.inner.tree_exchange().map(|_| self as &dyn TreeExchange)
    }
}

impl TreeExchange for Spy<'_> {
    fn exists(&self, slot: Slot) -> bool {
        self.trees().exists(slot)
    }
    fn clear(&self, slot: Slot) -> Result<()> {
        self.record(format!("clear {slot:?}"))?;
        self.trees().clear(slot)
    }
    fn create(&self, slot: Slot) -> Result<()> {
        self.record(format!("create {slot:?}"))?;
        self.trees().create(slot)
    }
    fn make_dirs(&self, slot: Slot, paths: &[&RelPath]) -> Result<()> {
        for path in paths {
            self.record(format!("slot_make_dir {slot:?} {path}"))?;
        }
        self.trees().make_dirs(slot, paths)
    }
    fn link_live(&self, slot: Slot, paths: &[&RelPath]) -> Vec<bool> {
        if paths.iter().any(|path| self.record(format!("slot_link_live {slot:?} {path}")).is_err()) {
            return vec![false; paths.len()];
        }
        self.trees().link_live(slot, paths)
    }
    fn create_file(&self, slot: Slot, path: &RelPath, executable: bool) -> Result<Box<dyn StagedFile>> {
        self.record(format!("slot_create_file {slot:?} {path}"))?;
        self.trees().create_file(slot, path, executable)
    }
    fn read_state(&self, slot: Slot, name: &str) -> Result<Option<Vec<u8>>> {
        self.trees().read_state(slot, name)
    }
    fn write_state(&self, slot: Slot, name: &str, bytes: &[u8]) -> Result<()> {
        self.record(format!("slot_write_state {slot:?} {name}"))?;
        self.trees().write_state(slot, name, bytes)
    }
    fn sync(&self, slot: Slot) -> Result<()> {
        self.record(format!("sync {slot:?}"))?;
        self.trees().sync(slot)
    }
    fn lock(&self, slot: Slot) -> Result<BackendLock> {
        self.trees().lock(slot)
    }
    fn exchange(&self, slot: Slot) -> Result<()> {
        self.record(format!("exchange {slot:?}"))?;
        self.trees().exchange(slot)
    }
    fn keep_next_as_previous(&self) -> Result<()> {
        self.record("keep_next_as_previous".into())?;
        self.trees().keep_next_as_previous()
    }
    fn describe(&self, slot: Slot) -> String {
        self.trees().describe(slot)
    }
}
