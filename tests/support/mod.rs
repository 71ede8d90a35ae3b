//! Shared helpers for the integration tests: a scratch folder per test, the
//! real `ferry` binary, and a hash of a whole tree (state folder included)
//! to prove that a refused command changed nothing.
#![allow(dead_code)] // each test binary uses a different subset

pub mod exporter;
mod need;
#[allow(unused_imports)] // not every test binary checks a need
pub use need::*;

use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

/// A scratch folder removed when the test ends.
pub struct Scratch {
    _dir: tempfile::TempDir,
    pub root: Utf8PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create scratch folder");
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).expect("UTF-8 temp path");
        Scratch { _dir: dir, root }
    }

    pub fn path(&self, name: &str) -> Utf8PathBuf {
        self.root.join(name)
    }
}

/// The `ferry` binary built for this test run.
pub fn ferry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command.env_remove("FERRY_TRUST").env_remove("FERRY_PASSPHRASE").env_remove("SOURCE_DATE_EPOCH");
    // Test drives are folders in a scratch directory on the system disk;
    // tests of the refusal itself remove this.
    command.env("FERRY_NOT_A_DRIVE", "1");
    // Never the trust store of whoever runs the tests.
    command.env_remove("FERRY_TRUST_STORE").env("XDG_CONFIG_HOME", "/nonexistent/ferry-tests/config");
    // Exports record themselves in a ledger: a fresh one per run, under
    // cargo's scratch folder, so that tests do not see each other's exports
    // and never write to the ledger in the home folder of whoever runs them.
    // Tests of the ledger itself pass --ledger.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if run == 0 {
        remove_ledgers_of_finished_runs();
    }
    let ledger = format!("{LEDGERS}/{}/{run}", std::process::id());
    let _ = std::fs::remove_dir_all(&ledger);
    command.env("FERRY_LEDGER", ledger);
    // What a killed delta import leaves in TMPDIR (formats/delta-v1.md DI4)
    // goes there too, not into the host's /tmp; tests of TMPDIR set their own.
    let temporary = format!("{LEDGERS}/{}/tmp", std::process::id());
    let _ = std::fs::create_dir_all(&temporary);
    command.env("TMPDIR", temporary);
    command
}

/// Where [`ferry`] puts each command's ledger: `PID/RUN` below it.
const LEDGERS: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/ledgers");

/// A test process cannot clean up after itself (the harness ends it without
/// running destructors), so each one removes the ledgers of test processes
/// that are gone; without this they pile up by gigabytes.
fn remove_ledgers_of_finished_runs() {
    let Ok(entries) = std::fs::read_dir(LEDGERS) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let alive = name.to_str().is_some_and(|pid| std::path::Path::new("/proc").join(pid).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// What a finished command returned, with readable accessors.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn ok(self) -> Self {
        self.expect_code(0)
    }
}

/// The bundled sample's TEST-ONLY secret key, its public key and the
/// sample repository, as absolute paths.
pub fn bundled_sample() -> (String, String, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    (
        format!("{root}/samples/keys/TEST-ONLY-DO-NOT-USE.key"),
        format!("{root}/samples/keys/TEST-ONLY-DO-NOT-USE.pub"),
        format!("{root}/samples/repository"),
    )
}

/// Runs `ferry ARGS...`.
pub fn run(args: &[&str]) -> Run {
    Run::from(ferry().args(args).output().expect("run ferry"))
}

/// Makes an unencrypted key pair at `prefix`.
pub fn keygen(prefix: &Utf8Path) {
    run(&["keygen", prefix.as_str(), "--no-passphrase", "-q"]).ok();
}

/// Exports `source` to `media` with a fixed sequence; returns the snapshot folder.
pub fn export(source: &Utf8Path, media: &Utf8Path, key: &Utf8Path, repository: &str, sequence: u64) -> Utf8PathBuf {
    export_with(source, media, key, repository, sequence, &[])
}

/// [`export`] with more options, such as `--layout tree`.
pub fn export_with(
    source: &Utf8Path,
    media: &Utf8Path,
    key: &Utf8Path,
    repository: &str,
    sequence: u64,
    options: &[&str],
) -> Utf8PathBuf {
    let sequence_text = sequence.to_string();
    let mut args = vec![
        "export",
        source.as_str(),
        media.as_str(),
        "--key",
        key.as_str(),
        "--repository",
        repository,
        "--sequence",
        &sequence_text,
        "-q",
    ];
    args.extend_from_slice(options);
    run(&args).ok();
    media.join("ferry").join(repository).join(&sequence_text)
}

/// Every entry below `root` (nothing skipped) mapped to a description of
/// its type, mode and content hash: equal maps mean equal trees.
pub fn tree_state(root: &Utf8Path) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    if !root.exists() {
        return map;
    }
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.expect("walk");
        let relative = entry.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let meta = entry.path().symlink_metadata().expect("stat");
        let description = if meta.is_dir() {
            "dir".to_owned()
        } else if meta.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(entry.path()).unwrap().display())
        } else {
            let bytes = std::fs::read(entry.path()).expect("read");
            format!("file {:o} {}", meta.permissions().mode() & 0o777, hex::encode(Sha256::digest(&bytes)))
        };
        map.insert(relative, description);
    }
    map
}

/// `tree_state` without ferry's state folder: what devices see.
pub fn served_tree(root: &Utf8Path) -> BTreeMap<String, String> {
    tree_state(root).into_iter().filter(|(path, _)| path != ".ferry" && !path.starts_with(".ferry/")).collect()
}

/// Writes a file, creating parent folders.
pub fn write(path: &Utf8Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A small repository: nested folders, an empty file, a non-ASCII name,
/// an executable, an index file.
pub fn small_repository(root: &Utf8Path) {
    write(&root.join("bases/av-1.dat"), b"antivirus database one\n");
    write(&root.join("bases/av-2.dat"), &vec![0xA5; 70_000]);
    write(&root.join("bases/empty.dat"), b"");
    write(&root.join("bases/sub/ünïcødé naïve.bin"), "ü".as_bytes());
    write(&root.join("index/master.xml"), b"<index><file name=\"bases/av-1.dat\"/></index>\n");
    write(&root.join("modules/tool.sh"), b"#!/bin/sh\necho tool\n");
    std::fs::set_permissions(root.join("modules/tool.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(root.join("empty-folder")).unwrap();
}

/// `len` deterministic pseudo-random bytes, different for each seed
/// (xorshift64*): fast filler for large test files.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A tree as [`tree_state`] describes it: path to type, mode and digest.
pub type Tree = BTreeMap<String, String>;

/// Writes a file with an explicit mode.
pub fn put(path: &Utf8Path, bytes: &[u8], executable: bool) {
    write(path, bytes);
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What a target serves, compared with the two snapshots of a switch.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    Old,
    New,
    /// Neither: the description lists entries that match neither version
    /// (`torn`) or mix old and new entries.
    Mixed {
        torn: Vec<String>,
        old_only: usize,
        new_only: usize,
    },
}

/// Says whether `served` is exactly the old tree, exactly the new one, or
/// something else. In a mix, `torn` lists entries equal to neither version
/// (a partly written file, a file that exists in neither).
pub fn classify(served: &Tree, old: &Tree, new: &Tree) -> Served {
    if served == old {
        return Served::Old;
    }
    if served == new {
        return Served::New;
    }
    let mut torn = Vec::new();
    let (mut old_only, mut new_only) = (0, 0);
    let paths: BTreeSet<&String> = served.keys().chain(old.keys()).chain(new.keys()).collect();
    for path in paths {
        let (s, o, n) = (served.get(path), old.get(path), new.get(path));
        if s != o && s != n && !(s.is_none() && changes_kind(o, n)) {
            torn.push(format!("{path}: served {s:?}, old {o:?}, new {n:?}"));
        } else if o != n {
            if s == o {
                old_only += 1;
            } else {
                new_only += 1;
            }
        }
    }
    Served::Mixed { torn, old_only, new_only }
}

/// Whether an entry is a folder in one version and a file in the other:
/// the ordered switch cannot replace one by the other in one step, so the
/// path is briefly absent; `classify` does not call that torn.
pub fn changes_kind(old: Option<&String>, new: Option<&String>) -> bool {
    match (old, new) {
        (Some(o), Some(n)) => (o == "dir") != (n == "dir"),
        _ => false,
    }
}

/// Makes a key pair under `scratch`; returns (secret `.key`, public `.pub`).
pub fn key_pair(scratch: &Scratch) -> (Utf8PathBuf, Utf8PathBuf) {
    let prefix = scratch.path("key");
    keygen(&prefix);
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// `tree_state` without any audit journal (`.ferry/audit`): a refusal
/// changes nothing else, and appends its entry there.
pub fn tree_state_but_journal(root: &Utf8Path) -> BTreeMap<String, String> {
    tree_state(root).into_iter().filter(|(path, _)| !path.ends_with(".ferry/audit")).collect()
}

/// The action of the newest entry of the audit journal in `state_dir`.
pub fn last_journal_action(state_dir: &Utf8Path) -> String {
    let journal = std::fs::read_to_string(state_dir.join("audit")).expect("an audit journal");
    let last = journal.lines().last().expect("an entry");
    last.split(' ').nth(3).expect("an action field").to_owned()
}

/// Fails naming every entry removed, changed or added between two
/// [`tree_state`]s of `what`.
pub fn assert_tree_unchanged(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>, what: &str) {
    if before == after {
        return;
    }
    let mut lines = Vec::new();
    for (path, value) in before {
        match after.get(path) {
            None => lines.push(format!("removed: {path}")),
            Some(now) if now != value => lines.push(format!("changed: {path} ({value} -> {now})")),
            Some(_) => {}
        }
    }
    for (path, value) in after {
        if !before.contains_key(path) {
            lines.push(format!("added: {path} ({value})"));
        }
    }
    panic!("{what} changed:\n  {}", lines.join("\n  "));
}

/// The small repository with `index/master.xml` and twenty data files
/// under `data/` that name `version`: what differs between versions.
pub fn versioned_repository(root: &Utf8Path, version: u64) {
    small_repository(root);
    write(&root.join("index/master.xml"), format!("<index version=\"{version}\"/>\n").as_bytes());
    for i in 0..20 {
        write(
            &root.join(format!("data/d{}/f{i:02}.dat", i % 4)),
            format!("file {i} of version {version}\n").as_bytes(),
        );
    }
}

/// Two snapshots of one source folder, signed with a fresh key pair.
pub struct TwoSnapshots {
    pub scratch: Scratch,
    /// The secret key (`key.key`) and the public one (`key.pub`).
    pub secret: Utf8PathBuf,
    pub public: Utf8PathBuf,
    /// The source folder, as the second version left it.
    pub source: Utf8PathBuf,
    /// Sequence 1 on `media1`, sequence 2 on `media2` (repository `av`).
    pub media1: Utf8PathBuf,
    pub media2: Utf8PathBuf,
    /// [`tree_state`] of the source at each export.
    pub old: Tree,
    pub new: Tree,
}

/// Builds version 1 of a source with `first` and exports it to `media1` as
/// sequence 1, then turns it into version 2 with `second` and exports that
/// to `media2` as sequence 2.
pub fn two_snapshots(first: impl FnOnce(&Utf8Path), second: impl FnOnce(&Utf8Path)) -> TwoSnapshots {
    let scratch = Scratch::new();
    let key = scratch.path("key");
    keygen(&key);
    let secret = key.with_extension("key");
    let source = scratch.path("source");
    let (media1, media2) = (scratch.path("media1"), scratch.path("media2"));
    first(&source);
    let old = tree_state(&source);
    export(&source, &media1, &secret, "av", 1);
    second(&source);
    let new = tree_state(&source);
    export(&source, &media2, &secret, "av", 2);
    TwoSnapshots { public: key.with_extension("pub"), secret, source, media1, media2, old, new, scratch }
}

/// What an unfinished switch leaves in the state folder `state_dir`: the
/// journal, staging and incoming entries, a rollback intent, and any entry
/// `also` picks.
pub fn switch_leftovers(state_dir: &Utf8Path, also: impl Fn(&str) -> bool) -> Vec<String> {
    tree_state(state_dir)
        .into_keys()
        .filter(|p| {
            p == "journal" || p.starts_with("staging") || p.starts_with("incoming") || p == "rollback-intent" || also(p)
        })
        .collect()
}

/// The names in `site` other than the target (`target`) and the previous
/// tree a whole-tree switch keeps (`.target.ferry-previous`).
pub fn target_siblings(site: &Utf8Path) -> Vec<String> {
    std::fs::read_dir(site)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "target" && name != ".target.ferry-previous")
        .collect()
}

/// The files of a `--layout tree` snapshot folder, relative to its payload.
pub fn exported_files(snapshot: &Utf8Path) -> BTreeSet<String> {
    let payload = snapshot.join("payload");
    walkdir::WalkDir::new(&payload)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(&payload).unwrap().to_str().unwrap().to_owned())
        .collect()
}

/// A set of owned strings, for comparisons.
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
