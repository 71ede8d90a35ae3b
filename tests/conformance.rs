//! One conformance suite for every back end (issue 9).
//!
//! Each case below is written once, as a function of a [`Subject`]: a fresh,
//! empty back end and the switch to install into it with. The cases drive
//! the library (`import::install`, `rollback`, `install::recover`) and
//! observe what a target holds through the back end itself (`list_tree`,
//! `hash_file`, `read_state`), never through a server's disk, so a kind of
//! update source whose storage is not a local folder is tested the same way.
//!
//! The subjects, at the end of the file: the in-memory back end of
//! `conformance/memory.rs` under the whole-tree and the ordered switch;
//! folders under both switches, and with `--state-dir` outside the tree;
//! the in-process FTP server (plain, FTPS, and refusing to rename over an
//! existing file); pure-ftpd and vsftpd (plain
//! and FTPS), started by `scripts/test` (or `.ci/ftp-servers.sh`). When
//! those two are not running their cases FAIL naming how to start them,
//! unless `FERRY_TEST_SKIP` lists `ftp-servers` (`support::require`). Adding a kind of target means one
//! constructor and one line in the [`conformance!`] table.
//!
//! Every case × subject pair is its own test, named `SUBJECT::CASE`:
//! `cargo test --all-features --test conformance memory_tree::` runs one
//! subject, `-- ::rollback_` one case everywhere.

mod conformance {
    pub mod memory;
    pub mod spy;
}
mod ftp_support;
mod support;

use camino::Utf8Path;
use conformance::memory::MemoryBackend;
use conformance::spy::Spy;
use ferry::audit::Action;
use ferry::backend::ftp::FtpOptions;
use ferry::backend::{Backend, BackendOptions, Slot};
use ferry::digest::Digest;
use ferry::error::Error;
use ferry::install::state::{JOURNAL_FILE, Journal, JournalKind, Step};
use ferry::media::SnapshotDir;
use ferry::ops::export::{ExportOptions, MediaLayout, export};
use ferry::ops::import::{ImportOptions, ImportReport, SwitchChoice, SwitchUsed, install};
use ferry::ops::rollback::rollback;
use ferry::ops::verify::verify_installed;
use ferry::rel_path::RelPath;
use ferry::report::Silent;
use ferry::signing::{SecretKey, TrustStore, VerifiedSnapshot};
use ftp_support::ServerConfig;
use jiff::Timestamp;
use std::any::Any;
use std::io::Write as _;
use support::{Scratch, Tree, assert_tree_unchanged, small_repository, write};

// ---------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------

/// One exported snapshot, verified.
struct Snapshot {
    dir: SnapshotDir,
    verified: VerifiedSnapshot,
}

/// Snapshots of repository `av` signed with a fresh key: version 1, and
/// version 2 with files and folders added, changed and removed, a file
/// that becomes a folder and a folder that becomes a file.
struct Fixture {
    scratch: Scratch,
    key: SecretKey,
    trust: TrustStore,
    v1: Snapshot,
    v2: Snapshot,
}

fn version_1(root: &Utf8Path) {
    small_repository(root);
    write(&root.join("old/gone.dat"), b"removed by version 2\n");
    write(&root.join("old/deeper/x.dat"), b"removed with its folders\n");
    write(&root.join("swap/was-file"), b"a file that becomes a folder\n");
    write(&root.join("swap/was-dir/inner.dat"), b"inside a folder that becomes a file\n");
}

fn version_2(root: &Utf8Path) {
    version_1(root);
    write(&root.join("bases/av-1.dat"), b"antivirus database one, updated\n");
    std::fs::remove_file(root.join("bases/av-2.dat")).unwrap();
    write(&root.join("bases/av-3.dat"), &[0x5A; 40_000]);
    write(&root.join("index/master.xml"), b"<index><file name=\"bases/av-3.dat\"/></index>\n");
    write(&root.join("index/new.xml"), b"<new/>\n");
    std::fs::remove_dir_all(root.join("old")).unwrap();
    std::fs::remove_dir(root.join("empty-folder")).unwrap();
    write(&root.join("added/deep/er/file.dat"), b"in new folders\n");
    std::fs::create_dir_all(root.join("new-empty/folder")).unwrap();
    std::fs::remove_file(root.join("swap/was-file")).unwrap();
    write(&root.join("swap/was-file/inside.dat"), b"now a folder\n");
    std::fs::remove_dir_all(root.join("swap/was-dir")).unwrap();
    write(&root.join("swap/was-dir"), b"now a file\n");
}

/// Files version 2 adds, changes and removes compared with version 1.
const V2_ADDED: usize = 5;
const V2_CHANGED: usize = 2;
const V2_REMOVED: usize = 5;

impl Fixture {
    fn new() -> Self {
        let scratch = Scratch::new();
        let key = SecretKey::generate().expect("generate a key");
        let trust = key.own_trust();
        let v1 = export_snapshot(&scratch, &key, &trust, "av", 1, version_1);
        let v2 = export_snapshot(&scratch, &key, &trust, "av", 2, version_2);
        Fixture { scratch, key, trust, v1, v2 }
    }

    /// Another snapshot of repository `repository`, filled by `fill`.
    fn other(&self, repository: &str, sequence: u64, fill: fn(&Utf8Path)) -> Snapshot {
        export_snapshot(&self.scratch, &self.key, &self.trust, repository, sequence, fill)
    }
}

/// Exports a source filled by `fill` onto its own drive and opens it.
fn export_snapshot(
    scratch: &Scratch,
    key: &SecretKey,
    trust: &TrustStore,
    repository: &str,
    sequence: u64,
    fill: fn(&Utf8Path),
) -> Snapshot {
    let name = ftp_support::unique(&format!("{repository}-{sequence}"));
    let (source, media) = (scratch.path(&format!("{name}-source")), scratch.path(&format!("{name}-media")));
    fill(&source);
    let options = ExportOptions {
        source,
        media: media.clone(),
        more_media: Vec::new(),
        drive_size: None,
        target_fs: None,
        repository: Some(repository.to_owned()),
        sequence: Some(sequence),
        created: None,
        expires_after: None,
        index_patterns: ferry::scan::DEFAULT_INDEX_PATTERNS.iter().map(|p| p.to_string()).collect(),
        read_back: false,
        layout: MediaLayout::default(),
        prune: None,
        make_parents: false,
        // The scratch folder is on the system disk, not a removable drive.
        not_a_drive: true,
        ledger: None,
        since: Vec::new(),
        site_keys: None,
        base_keys: Vec::new(),
        rehash: false,
        ledger_contents: Some(ferry::ledger::DEFAULT_CONTENTS_FLOOR),
    };
    export(&options, key, &Silent).unwrap_or_else(|e| panic!("export {repository} {sequence}: {e}"));
    let dir = SnapshotDir::on_media(&media, repository, sequence);
    let verified = dir.open(trust).unwrap_or_else(|e| panic!("open {repository} {sequence}: {e}"));
    Snapshot { dir, verified }
}

// ---------------------------------------------------------------------------
// The back end under test
// ---------------------------------------------------------------------------

/// A fresh, empty back end and how the suite installs into it.
struct Subject {
    backend: Box<dyn Backend>,
    /// The switch asked for.
    switch: SwitchChoice,
    /// The switch that must be used.
    expect: SwitchUsed,
    /// Folders and servers the back end needs, dropped after it.
    _keep: Box<dyn Any>,
}

impl Subject {
    fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Installs `snapshot` into `backend` (this subject's back end, or a
    /// [`Spy`] around it) with this subject's switch.
    fn import(&self, backend: &dyn Backend, snapshot: &Snapshot) -> ferry::Result<ImportReport> {
        self.import_with(backend, snapshot, (false, false))
    }

    /// [`import`](Self::import) with `--adopt` and `--repair` as given.
    fn import_with(
        &self,
        backend: &dyn Backend,
        snapshot: &Snapshot,
        (adopt, repair): (bool, bool),
    ) -> ferry::Result<ImportReport> {
        let mut options = ImportOptions::new(vec![snapshot.dir.root().to_owned()], Timestamp::now());
        options.switch = self.switch;
        options.adopt = adopt;
        options.repair = repair;
        install(backend, &snapshot.dir, &snapshot.verified, &options, &Silent)
    }

    /// Installs `snapshot`, which must succeed with this subject's switch.
    fn install(&self, snapshot: &Snapshot) -> ImportReport {
        let report = self.import(self.backend(), snapshot).unwrap_or_else(|e| {
            panic!("import of sequence {} into {}: {e}", snapshot.verified.manifest().sequence, self.backend.location())
        });
        assert_eq!(report.switch, self.expect, "{}: switch used", self.backend.location());
        report
    }

    fn rollback(&self, backend: &dyn Backend) -> ferry::Result<ferry::ops::rollback::RollbackReport> {
        rollback(backend, false, Timestamp::now())
    }

    fn is_tree(&self) -> bool {
        self.expect == SwitchUsed::Tree
    }
}

// ---------------------------------------------------------------------------
// Observing a target through its back end
// ---------------------------------------------------------------------------

/// Reads whole files: test files are small.
const READ_LIMIT: u64 = 1 << 30;

/// What a target serves, read through its back end: path → `dir`, or
/// `file SIZE SHA256` hashed by `hash_file`.
fn served(backend: &dyn Backend) -> Tree {
    let entries = backend.list_tree().unwrap_or_else(|e| panic!("list {}: {e}", backend.location()));
    entries
        .into_iter()
        .map(|(path, is_dir)| {
            let what = if is_dir {
                "dir".to_owned()
            } else {
                let hashed = backend.hash_file(&path, READ_LIMIT).unwrap_or_else(|e| panic!("read {path}: {e}"));
                let hashed = hashed.unwrap_or_else(|| panic!("{path} is listed but cannot be read"));
                format!("file {} {}", hashed.size, hashed.digest)
            };
            (path.to_string(), what)
        })
        .collect()
}

/// The tree a snapshot's manifest describes, in the terms of [`served`].
fn manifest_tree(snapshot: &Snapshot) -> Tree {
    let manifest = snapshot.verified.manifest();
    manifest
        .entries
        .iter()
        .map(|entry| {
            let what = entry.file().map_or("dir".to_owned(), |file| format!("file {} {}", file.size, file.digest));
            (entry.path.to_string(), what)
        })
        .collect()
}

/// State files whose content a refused or repeated command must not change.
const STATE_FILES: [&str; 7] =
    ["state", "manifest", "manifest.sig", "journal", "previous/state", "previous/manifest", "incoming/state"];

/// [`served`] plus the digest of every state file, the kept previous tree's
/// included: equal observations mean nothing changed.
fn observe(backend: &dyn Backend) -> Tree {
    let mut seen = served(backend);
    let digest = |bytes: Option<Vec<u8>>| bytes.map(|b| Digest::of(&b).to_string());
    for name in STATE_FILES {
        if let Some(digest) = digest(backend.read_state(name).unwrap()) {
            seen.insert(format!("[state] {name}"), digest);
        }
    }
    if let Some(trees) = backend.tree_exchange() {
        for slot in [Slot::Next, Slot::Previous] {
            for name in ["state", "manifest", "audit"] {
                if let Some(digest) =
                    trees.exists(slot).then(|| digest(trees.read_state(slot, name).unwrap())).flatten()
                {
                    seen.insert(format!("[{slot:?} tree state] {name}"), digest);
                }
            }
        }
    }
    seen
}

/// The target serves exactly `snapshot` (every file's size and hash), its
/// state names it, and `verify` of the installed source passes.
fn assert_serves(backend: &dyn Backend, snapshot: &Snapshot, trust: &TrustStore, what: &str) {
    let what = format!("{}: {what}", backend.location());
    assert_tree_unchanged(&manifest_tree(snapshot), &served(backend), &format!("{what}: the manifest, as served,"));
    let (state, manifest) = ferry::install::installed(backend).unwrap().unwrap_or_else(|| panic!("{what}: no state"));
    assert_eq!(state.snapshot, snapshot.verified.id(), "{what}: snapshot in the state marker");
    assert_eq!(manifest.manifest(), snapshot.verified.manifest(), "{what}: installed manifest");
    // Sizes only: `served` hashed every file already.
    verify_installed(backend, Some(trust), false, &Silent).unwrap_or_else(|e| panic!("{what}: verify: {e}"));
}

/// Nothing of an unfinished switch is left.
fn assert_no_leftovers(backend: &dyn Backend, what: &str) {
    for name in [JOURNAL_FILE, "incoming/state", "incoming/manifest", "staging/000000", "rollback-intent"] {
        assert_eq!(backend.state_file_size(name).unwrap(), None, "{}: {what}: {name} is left", backend.location());
    }
    if let Some(trees) = backend.tree_exchange() {
        assert!(!trees.exists(Slot::Next), "{}: {what}: {} is left", backend.location(), trees.describe(Slot::Next));
    }
}

/// [`assert_serves`] and [`assert_no_leftovers`].
fn assert_installed(backend: &dyn Backend, snapshot: &Snapshot, trust: &TrustStore, what: &str) {
    assert_serves(backend, snapshot, trust, what);
    assert_no_leftovers(backend, what);
}

/// The target's audit journal, its chain checked.
fn journal(backend: &dyn Backend) -> ferry::audit::Journal {
    let bytes = backend.read_state("audit").unwrap();
    ferry::audit::Journal::decode(bytes.as_deref(), Utf8Path::new("audit"))
        .unwrap_or_else(|e| panic!("{}: broken journal: {e}", backend.location()))
}

/// The actions of the journal's entries, oldest first.
fn actions(backend: &dyn Backend) -> Vec<Action> {
    journal(backend).entries().iter().map(|entry| entry.record.action).collect()
}

fn path(text: &str) -> RelPath {
    RelPath::new(text).unwrap()
}

/// Puts a file ferry did not install into the tree, through the back end.
fn plant(backend: &dyn Backend, at: &str, bytes: &[u8]) {
    let mut file = backend.create_staged("planted", false).unwrap();
    file.write_all(bytes).unwrap();
    file.commit().unwrap();
    backend.put("planted", &path(at)).unwrap();
}

// ---------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------

/// A first import into an empty target serves exactly the manifest.
fn fresh_import_serves_the_manifest(s: Subject) {
    let f = Fixture::new();
    let report = s.install(&f.v1);
    let files = f.v1.verified.manifest().files().count();
    assert_eq!((report.added, report.changed, report.removed), (files, 0, 0), "counts of the first import");
    assert_eq!(report.previous_sequence, None);
    assert_installed(s.backend(), &f.v1, &f.trust, "after the first import");
    let state = ferry::install::installed_state(s.backend()).unwrap().unwrap();
    assert_eq!((state.sequence, state.previous, state.rolled_back_from), (1, None, None));
}

/// An update adds, changes and removes files and folders, turns a file
/// into a folder and a folder into a file, and keeps the old snapshot.
fn update_adds_changes_and_removes_files_and_folders(s: Subject) {
    let f = Fixture::new();
    s.install(&f.v1);
    let report = s.install(&f.v2);
    assert_eq!((report.added, report.changed, report.removed), (V2_ADDED, V2_CHANGED, V2_REMOVED), "counts");
    assert_eq!(report.previous_sequence, Some(1));
    assert_installed(s.backend(), &f.v2, &f.trust, "after the update");
    let state = ferry::install::installed_state(s.backend()).unwrap().unwrap();
    assert_eq!((state.sequence, state.previous), (2, Some(f.v1.verified.id())));
}

/// Importing the installed snapshot again changes nothing, state included.
fn importing_the_installed_snapshot_changes_nothing(s: Subject) {
    let f = Fixture::new();
    for snapshot in [&f.v1, &f.v2] {
        s.install(snapshot);
        let before = observe(s.backend());
        let again = s.import(s.backend(), snapshot).expect("import the installed snapshot again");
        assert_eq!((again.switch, again.added, again.changed, again.removed), (SwitchUsed::None, 0, 0, 0));
        assert_tree_unchanged(&before, &observe(s.backend()), "a target importing its installed snapshot");
    }
}

/// Rollback serves the previous snapshot exactly, once; importing the
/// newer one again returns to it.
fn rollback_returns_to_the_previous_snapshot_once(s: Subject) {
    let f = Fixture::new();
    s.install(&f.v1);
    s.install(&f.v2);
    let report = s.rollback(s.backend()).expect("rollback");
    assert_eq!((report.from_sequence, report.to_sequence), (2, 1));
    assert_installed(s.backend(), &f.v1, &f.trust, "after rollback");
    let state = ferry::install::installed_state(s.backend()).unwrap().unwrap();
    assert_eq!((state.sequence, state.rolled_back_from), (1, Some(2)));

    let before = observe(s.backend());
    let twice = s.rollback(s.backend()).expect_err("only one step back is kept");
    assert!(matches!(twice, Error::NoPrevious(_)), "second rollback: {twice}");
    assert_tree_unchanged(&before, &observe(s.backend()), "a target refusing a second rollback");

    s.install(&f.v2);
    assert_installed(s.backend(), &f.v2, &f.trust, "after importing sequence 2 again");
    let state = ferry::install::installed_state(s.backend()).unwrap().unwrap();
    assert_eq!(state.rolled_back_from, None);
}

/// Rollback without an installed snapshot, or with nothing kept, is
/// refused and changes nothing.
fn rollback_is_refused_when_nothing_is_kept(s: Subject) {
    let f = Fixture::new();
    s.backend().create().unwrap();
    let empty = s.rollback(s.backend()).expect_err("nothing installed");
    assert!(matches!(empty, Error::NotInstalled(_)), "rollback of an empty target: {empty}");
    assert_eq!(served(s.backend()), Tree::new(), "an empty target after a refused rollback");
    s.install(&f.v1);
    let before = observe(s.backend());
    let refused = s.rollback(s.backend()).expect_err("nothing kept");
    assert!(matches!(refused, Error::NoPrevious(_)), "rollback after one import: {refused}");
    assert_tree_unchanged(&before, &observe(s.backend()), "a target refusing rollback");
}

/// A switch that fails before its commit point (the journal, or the
/// exchange) leaves the old snapshot served; the next run cleans up.
fn interrupted_before_the_commit_keeps_the_old_snapshot(s: Subject) {
    let f = Fixture::new();
    s.install(&f.v1);
    let step = if s.is_tree() { "exchange" } else { "write_state journal" };
    let spy = Spy::failing(s.backend(), step, 0);
    let error = s.import(&spy, &f.v2).expect_err("the injected failure stops the import");
    assert!(error.to_string().contains("injected"), "failure at `{step}`: {error}");
    assert_serves(s.backend(), &f.v1, &f.trust, &format!("after a failure at `{step}`"));

    let report = s.install(&f.v2);
    assert!(!report.recovered.is_empty(), "the next import reports the cleanup");
    assert_installed(s.backend(), &f.v2, &f.trust, "after the next import");
    assert!(actions(s.backend()).contains(&Action::Recover), "journal: {:?}", actions(s.backend()));
}

/// A switch that fails after its commit point (mid-journal, or after the
/// exchange) is finished by the next run, which keeps the old snapshot for
/// rollback.
fn interrupted_after_the_commit_is_finished_by_the_next_run(s: Subject) {
    let f = Fixture::new();
    s.install(&f.v1);
    let (step, after) = if s.is_tree() { ("keep_next_as_previous", 0) } else { ("put ", 1) };
    let spy = Spy::failing(s.backend(), step, after);
    let error = s.import(&spy, &f.v2).expect_err("the injected failure stops the import");
    assert!(error.to_string().contains("injected"), "failure at `{step}`: {error}");

    let report = s.import(s.backend(), &f.v2).expect("the next import");
    assert_eq!(report.switch, SwitchUsed::None, "recovery finished the switch: {:?}", report.recovered);
    assert!(report.recovered.iter().any(|r| r.starts_with("finished an interrupted switch")), "{:?}", report.recovered);
    assert_installed(s.backend(), &f.v2, &f.trust, "after recovery");
    let recovered = journal(s.backend()).entries().iter().any(|entry| {
        entry.record.action == Action::Recover
            && entry.record.reason.as_deref().is_some_and(|r| r.starts_with("finished an interrupted switch"))
    });
    assert!(recovered, "journal: {:?}", journal(s.backend()).entries());
    // The switch's own import entry is in the journal exactly once.
    let imports = journal(s.backend())
        .entries()
        .iter()
        .filter(|entry| entry.record.snapshot == Some(f.v2.verified.id()) && entry.record.action == Action::Import)
        .count();
    assert_eq!(imports, 1, "journal: {:?}", journal(s.backend()).entries());
    s.rollback(s.backend()).expect("rollback after a recovered switch");
    assert_installed(s.backend(), &f.v1, &f.trust, "rolled back after recovery");
}

/// A journal without its `end` line was never completely written: recovery
/// discards it without running a step.
fn unfinished_journal_is_discarded(s: Subject) {
    let f = Fixture::new();
    s.install(&f.v1);
    let steps = vec![Step::Delete(path("bases/av-1.dat")), Step::RemoveDir(path("empty-folder"))];
    let journal = Journal { snapshot: f.v2.verified.id(), kind: JournalKind::Import, steps }.encode();
    let unfinished = &journal[..journal.len() - "end\n".len()];
    s.backend().write_state(JOURNAL_FILE, unfinished).unwrap();
    let lock = s.backend().lock(false).unwrap();
    let done = ferry::install::recover(s.backend()).expect("recover");
    drop(lock);
    let said: Vec<&str> = done.iter().map(|r| r.description.as_str()).collect();
    assert!(said.iter().any(|d| d.starts_with("discarded an incomplete journal")), "{said:?}");
    assert_installed(s.backend(), &f.v1, &f.trust, "after discarding an unfinished journal");
}

/// Each import and rollback appends one journal entry, chained to the one
/// before; a repeated import appends none; nothing earlier is rewritten.
fn journal_gains_one_entry_per_event(s: Subject) {
    let f = Fixture::new();
    let mut before: Vec<ferry::audit::Entry> = Vec::new();
    let mut step = |what: &str, run: &dyn Fn(), wanted: Option<(Action, u64)>| {
        run();
        let now = journal(s.backend()).entries().to_vec();
        assert_eq!(now[..before.len()], before[..], "{what}: earlier entries rewritten");
        let added = &now[before.len()..];
        match wanted {
            None => assert!(added.is_empty(), "{what} added {added:?}"),
            Some((action, sequence)) => assert!(
                added.len() == 1 && added[0].record.action == action && added[0].record.sequence == Some(sequence),
                "{what}: wanted {action:?} {sequence}: {added:?}"
            ),
        }
        before = now;
    };
    step("first import", &|| drop(s.install(&f.v1)), Some((Action::Import, 1)));
    step("repeated import", &|| drop(s.import(s.backend(), &f.v1).unwrap()), None);
    step("update", &|| drop(s.install(&f.v2)), Some((Action::Import, 2)));
    step("rollback", &|| drop(s.rollback(s.backend()).unwrap()), Some((Action::Rollback, 1)));
    let first = journal(s.backend()).entries()[0].clone();
    assert_eq!(first.record.signers, f.v1.verified.signers(), "the keys that signed are recorded");
}

/// The state marker is written once per switch, after every change to the
/// tree devices read; with the whole-tree switch only the exchange follows.
fn state_marker_is_written_last(s: Subject) {
    let f = Fixture::new();
    let spy = Spy::new(s.backend());
    s.import(&spy, &f.v1).unwrap();
    assert_marker_last(&spy.calls(), "first import", true);
    let spy = Spy::new(s.backend());
    s.import(&spy, &f.v2).unwrap();
    assert_marker_last(&spy.calls(), "update", true);
    let spy = Spy::new(s.backend());
    s.rollback(&spy).unwrap();
    // A whole-tree rollback changes no tree: it exchanges back the kept one.
    assert_marker_last(&spy.calls(), "rollback", !s.is_tree());
}

/// `changes_first`: the tree must have been changed before the marker.
fn assert_marker_last(calls: &[String], what: &str, changes_first: bool) {
    let is_marker = |call: &str| {
        let words: Vec<&str> = call.split(' ').collect();
        matches!(words[..], ["write_state", "state"] | ["slot_write_state", _, "state"])
    };
    let markers: Vec<usize> = (0..calls.len()).filter(|&n| is_marker(&calls[n])).collect();
    let [marker] = markers[..] else {
        panic!("{what}: the state marker is written {} times: {calls:#?}", markers.len())
    };
    let visible = ["put ", "delete_file ", "delete_dir ", "make_dir ", "slot_make_dir ", "slot_create_file "];
    let changes = |call: &String| visible.iter().any(|v| call.starts_with(v));
    if changes_first {
        assert!(calls[..marker].iter().any(changes), "{what}: nothing changed before the state marker: {calls:#?}");
    }
    if let Some(late) = calls[marker..].iter().find(|c| changes(c)) {
        panic!("{what}: `{late}` after the state marker: {calls:#?}");
    }
    if let Some(slot) = calls[marker].strip_prefix("slot_write_state ").and_then(|c| c.split(' ').next()) {
        let exchange = format!("exchange {slot}");
        let mut before_exchange = calls[marker + 1..].iter().take_while(|c| **c != exchange);
        assert!(before_exchange.all(|c| !c.starts_with("slot_")), "{what}: tree written after its marker: {calls:#?}");
        assert!(calls[marker..].contains(&exchange), "{what}: no `{exchange}` after the marker: {calls:#?}");
    }
}

/// The import lock is exclusive: a second holder and an import are
/// refused while it is held, and an import leaves no lock behind.
fn lock_is_exclusive(s: Subject) {
    let f = Fixture::new();
    s.backend().create().unwrap();
    let held = s.backend().lock(false).expect("take the lock");
    let second = s.backend().lock(false).map(drop).expect_err("a second lock while the first is held");
    assert!(matches!(second, Error::Locked { .. }), "second lock: {second}");
    let before = observe(s.backend());
    let import = s.import(s.backend(), &f.v1).map(drop).expect_err("an import while the lock is held");
    assert!(matches!(import, Error::Locked { .. }), "import: {import}");
    assert_tree_unchanged(&before, &observe(s.backend()), "a target whose lock is held");
    drop(held);
    s.install(&f.v1);
    s.install(&f.v2);
    drop(s.backend().lock(false).expect("the lock is free after the imports"));
}

/// What is offered, the snapshot, and the error that must refuse it.
type Refusal<'a> = (&'a str, &'a Snapshot, fn(&Error) -> bool);

/// An older sequence, another repository and a reused sequence are refused
/// and leave the target exactly as it was.
fn refused_snapshots_leave_the_target_unchanged(s: Subject) {
    let f = Fixture::new();
    s.install(&f.v1);
    s.install(&f.v2);
    let other_repository = f.other("other", 3, version_2);
    let reused_sequence = f.other("av", 2, version_1);
    let cases: [Refusal; 3] = [
        ("an older sequence", &f.v1, |e| matches!(e, Error::Rollback { .. })),
        ("another repository", &other_repository, |e| matches!(e, Error::WrongRepository { .. })),
        ("a reused sequence", &reused_sequence, |e| matches!(e, Error::SequenceReuse { .. })),
    ];
    for (what, snapshot, expected) in cases {
        let before = observe(s.backend());
        let entries = journal(s.backend()).entries().len();
        let error = s.import(s.backend(), snapshot).map(drop).expect_err(what);
        assert!(expected(&error), "{what}: {error}");
        assert_tree_unchanged(&before, &observe(s.backend()), &format!("a target refusing {what}"));
        // The refusal is journaled, on FTP as on folders, the chain intact.
        let after = journal(s.backend());
        assert_eq!(after.entries().len(), entries + 1, "{what}: one refusal entry");
        let last = &after.entries()[entries].record;
        assert_eq!(last.action, Action::Refusal, "{what}: {last:?}");
        assert_eq!(last.snapshot, Some(snapshot.verified.id()), "{what}: the refused snapshot is named");
    }
    assert_installed(s.backend(), &f.v2, &f.trust, "after the refusals");
}

/// Files ferry did not install are replaced only when adoption is asked for.
fn foreign_files_are_replaced_only_when_adopted(s: Subject) {
    let f = Fixture::new();
    s.backend().create().unwrap();
    s.backend().make_dir(&path("stray-folder")).unwrap();
    plant(s.backend(), "stray-folder/inner.txt", b"not ferry's\n");
    plant(s.backend(), "bases", b"a file where the snapshot has a folder\n");
    let before = observe(s.backend());
    let error = s.import(s.backend(), &f.v1).map(drop).expect_err("a target holding foreign files");
    assert!(matches!(&error, Error::InvalidArgument(m) if m.contains("--adopt")), "{error}");
    assert_tree_unchanged(&before, &observe(s.backend()), "a target refusing to adopt");
    let report = s.import_with(s.backend(), &f.v1, (true, false)).expect("import with adoption");
    assert_eq!(report.switch, s.expect);
    assert_installed(s.backend(), &f.v1, &f.trust, "after adoption");
}

/// A file damaged after the import is reported as drift where sizes are
/// cheap to ask, and `--repair` writes it again.
fn damaged_files_are_reported_and_repaired(s: Subject) {
    let f = Fixture::new();
    s.install(&f.v1);
    plant(s.backend(), "bases/av-1.dat", b"damaged by hand\n");
    if s.backend().capabilities().cheap_metadata {
        let before = observe(s.backend());
        let error = s.import(s.backend(), &f.v1).map(drop).expect_err("a damaged target");
        assert!(
            matches!(&error, Error::Drift { problems, .. } if problems.iter().any(|p| p.starts_with("bases/av-1.dat"))),
            "{error}"
        );
        assert_tree_unchanged(&before, &observe(s.backend()), "a target reporting drift");
    }
    let report = s.import_with(s.backend(), &f.v1, (false, true)).expect("import --repair");
    assert_eq!(report.repaired, 1, "files repaired");
    assert_installed(s.backend(), &f.v1, &f.trust, "after repair");
    let last = journal(s.backend()).entries().last().cloned().expect("a journal entry");
    assert_eq!(last.record.action, Action::Repair, "{last:?}");
    assert_eq!(last.record.reason.as_deref(), Some("1 file restored"), "{last:?}");
}

// ---------------------------------------------------------------------------
// The subjects
// ---------------------------------------------------------------------------

fn memory(switch: SwitchChoice, expect: SwitchUsed) -> Option<Subject> {
    let backend = Box::new(MemoryBackend::new(&ftp_support::unique("conformance")));
    Some(Subject { backend, switch, expect, _keep: Box::new(()) })
}

/// A folder alone in a scratch folder (the whole-tree switch puts its
/// trees beside it), with its state inside or in `state-dir` beside it.
fn folder(switch: SwitchChoice, expect: SwitchUsed, state_outside: bool) -> Option<Subject> {
    let scratch = Scratch::new();
    let root = scratch.path("site/target");
    std::fs::create_dir_all(&root).unwrap();
    let state_dir = state_outside.then(|| scratch.path("state-dir"));
    let backend = Box::new(ferry::backend::dir::DirBackend::new(&root, state_dir.as_deref()));
    Some(Subject { backend, switch, expect, _keep: Box::new(scratch) })
}

/// An FTP back end opened through the registry, as the CLI opens it.
fn ftp(url: &str, options: FtpOptions, keep: Box<dyn Any>) -> Option<Subject> {
    let backend = ferry::backend::open(url, &BackendOptions { ftp: options, ..BackendOptions::default() })
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    Some(Subject { backend, switch: SwitchChoice::Auto, expect: SwitchUsed::Ordered, _keep: keep })
}

/// The in-process libunftp server, configured by `config`.
fn in_process_ftp(config: ServerConfig) -> Option<Subject> {
    use ftp_support::{InProcess, PASSWORD};
    let server = InProcess::start(config);
    let url = server.url(&format!("srv/{}", ftp_support::unique("conformance")));
    let pin = server.pki.as_ref().map(|pki| {
        hex::decode(&pki.sha256).expect("hex fingerprint").try_into().expect("a SHA-256 fingerprint is 32 bytes")
    });
    let options = FtpOptions { password: Some(PASSWORD.to_owned().into()), pin_sha256: pin, ..FtpOptions::default() };
    ftp(&url, options, Box::new(server))
}

/// pure-ftpd or vsftpd as `.ci/ftp-servers.sh` started it: `var` holds
/// its `ftp://` URL.
fn ftp_real(var: &str, tls: bool, tls12_only: bool) -> Option<Subject> {
    if !support::require(support::Need::FtpServers) {
        return None;
    }
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set with the FTP servers"));
    let mut url = format!("{}/{}", env(var).trim_end_matches('/'), ftp_support::unique("conformance"));
    let mut options =
        FtpOptions { password: Some(env("FERRY_TEST_FTP_PASSWORD").into()), tls12_only, ..FtpOptions::default() };
    if tls {
        url = url.replacen("ftp://", "ftps://", 1);
        options.ca_file = Some(env("FERRY_TEST_FTP_CA").into());
    }
    ftp(&url, options, Box::new(()))
}

/// Every installed file reads back through `copy_file` into a file of
/// this host, and through `read_file` into memory, with its signed size
/// and SHA-256; an absent file reads as `None`, writing nothing.
fn files_copy_back_as_signed(s: Subject) {
    let f = Fixture::new();
    s.install(&f.v1);
    let folder = tempfile::tempdir().unwrap();
    for entry in &f.v1.verified.manifest().entries {
        let Some(file) = entry.file() else { continue };
        let copy_path = folder.path().join("copy");
        let mut copy = std::fs::File::create(&copy_path).unwrap();
        let hashed = s.backend().copy_file(&entry.path, file.size, &mut copy).unwrap();
        let hashed = hashed.unwrap_or_else(|| panic!("{} is installed but copy_file says absent", entry.path));
        assert_eq!((hashed.size, hashed.digest), (file.size, file.digest), "copy_file of {}", entry.path);
        let copied = std::fs::read(&copy_path).unwrap();
        assert_eq!(ferry::digest::Digest::of(&copied), file.digest, "bytes copy_file wrote for {}", entry.path);
        let (read, bytes) = s.backend().read_file(&entry.path, file.size).unwrap().unwrap();
        assert_eq!((read.digest, bytes), (file.digest, copied), "read_file of {}", entry.path);
    }
    let mut nothing = Vec::new();
    assert!(s.backend().copy_file(&path("not/installed"), READ_LIMIT, &mut nothing).unwrap().is_none());
    assert!(nothing.is_empty(), "copy_file of an absent file wrote {} bytes", nothing.len());
}

/// Every case, run against one subject: `mod SUBJECT { #[test] fn CASE }`.
macro_rules! cases {
    ($subject:expr) => {
        cases!($subject;
            fresh_import_serves_the_manifest,
            update_adds_changes_and_removes_files_and_folders,
            importing_the_installed_snapshot_changes_nothing,
            rollback_returns_to_the_previous_snapshot_once,
            rollback_is_refused_when_nothing_is_kept,
            interrupted_before_the_commit_keeps_the_old_snapshot,
            interrupted_after_the_commit_is_finished_by_the_next_run,
            unfinished_journal_is_discarded,
            journal_gains_one_entry_per_event,
            state_marker_is_written_last,
            lock_is_exclusive,
            refused_snapshots_leave_the_target_unchanged,
            foreign_files_are_replaced_only_when_adopted,
            damaged_files_are_reported_and_repaired,
            files_copy_back_as_signed,
        );
    };
    ($subject:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if let Some(subject) = $subject {
                    super::$case(subject);
                }
            }
        )*
    };
}

/// The table: one line per subject.
macro_rules! conformance {
    ($($name:ident => $subject:expr;)*) => {
        $(
            mod $name {
                use super::*;
                cases!($subject);
            }
        )*
    };
}

conformance! {
    memory_tree => memory(SwitchChoice::Tree, SwitchUsed::Tree);
    memory_ordered => memory(SwitchChoice::Ordered, SwitchUsed::Ordered);
    folder_tree => folder(SwitchChoice::Tree, SwitchUsed::Tree, false);
    folder_ordered => folder(SwitchChoice::Ordered, SwitchUsed::Ordered, false);
    folder_state_dir_outside => folder(SwitchChoice::Auto, SwitchUsed::Ordered, true);
    ftp_in_process => in_process_ftp(ServerConfig::default());
    ftps_in_process => in_process_ftp(ServerConfig { tls: true, ..ServerConfig::default() });
    // Refuses to rename over an existing file, as ProFTPD and IIS do by default.
    ftp_no_rename_over => in_process_ftp(ServerConfig { refuse_rename_over: true, ..ServerConfig::default() });
    pureftpd => ftp_real("FERRY_TEST_PUREFTPD", false, false);
    pureftpd_tls => ftp_real("FERRY_TEST_PUREFTPD", true, false);
    vsftpd => ftp_real("FERRY_TEST_VSFTPD", false, false);
    // vsftpd's TLS 1.3 session reuse fails on later data connections.
    vsftpd_tls => ftp_real("FERRY_TEST_VSFTPD", true, true);
}
