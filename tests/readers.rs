//! Readers during imports (issue 5): reader threads read the served tree in
//! a loop while `ferry import` installs one new snapshot after another.
//!
//! * Whole-tree switch (`--switch tree`): a reader opens the target folder
//!   once and hashes everything below it (not `.ferry`), relative to that
//!   descriptor, as a device that opened the tree would. A read that
//!   completes while the folder it opened is still the target must equal
//!   exactly one snapshot. A read whose tree was exchanged away while it ran
//!   (the descriptor no longer names the target at the end) or that failed
//!   with "not found" (the old tree being removed under it) is retried and
//!   counted.
//! * Ordered switch (`--switch ordered`): readers read by path, as devices
//!   do. Every file read must be one of the versions the snapshots have at
//!   that path (never a half-written or foreign file), and no index file may
//!   be newer than the data it lists: the index files name their data files
//!   with SHA-256 digests, and each data file named must be present with the
//!   named content or, while the next import's data files are being renamed
//!   into place under the old index, the next version's content.
//!
//! The snapshots cycle 0, 1, 2, 0, ... (sequence numbers keep rising), so
//! "the next version" of data named by index version j is j + 1 mod 3, and
//! an index seen with data older than itself (j - 1 = j + 2 mod 3) is a
//! violation. A check whose index changed while its data was being read is
//! inconclusive and only counted.
//!
//! `FERRY_READERS_IMPORTS=N` sets the number of imports per switch (default
//! 24). No assertion depends on timing; the figures printed say how many
//! reads overlapped an import.

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use support::*;

/// Path → `dir` or `file HEX`.
type Tree = BTreeMap<String, String>;

const VERSIONS: usize = 3;
const LARGE: usize = 4 * 1024 * 1024;
const INDEX_FILES: [&str; 3] = ["index/master.xml", "index/gen.xml", "catalog.xml"];

fn imports() -> usize {
    match std::env::var("FERRY_READERS_IMPORTS") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("FERRY_READERS_IMPORTS={text:?} is not a number")),
        Err(_) => 24,
    }
}

// ---------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------

fn hex_digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Version `v`: 100 unchanged files, 150 data files changed in place, 30
/// files only this version has (`gen{v}/`), three large files changed in
/// place, and three index files naming data files with their digests:
/// `index/master.xml` the changed data files, `index/gen.xml` the
/// version's own files, `catalog.xml` the large files.
fn version(root: &Utf8Path, v: usize) {
    let v64 = v as u64;
    for i in 0..100u64 {
        write(&root.join(format!("common/c{i:03}.dat")), &pseudo_random_bytes(i, 100 + 37 * i as usize));
    }
    let mut master = String::new();
    for i in 0..150u64 {
        let path = format!("data/d{}/f{i:03}.dat", i % 5);
        let bytes = pseudo_random_bytes(10_000 + i + 1000 * v64, 500 + 60 * i as usize + 16 * v);
        master += &format!("<file name=\"{path}\" sha256=\"{}\"/>\n", hex_digest(&bytes));
        write(&root.join(&path), &bytes);
    }
    let mut gen_index = String::new();
    for i in 0..30u64 {
        let path = format!("gen{v}/g{i:02}.dat");
        let bytes = pseudo_random_bytes(50_000 + i + 1000 * v64, 2000 + 100 * i as usize);
        gen_index += &format!("<file name=\"{path}\" sha256=\"{}\"/>\n", hex_digest(&bytes));
        write(&root.join(&path), &bytes);
    }
    let mut catalog = String::new();
    for i in 0..3u64 {
        let path = format!("big/large{i}.bin");
        let bytes = pseudo_random_bytes(90_000 + i + 1000 * v64, LARGE);
        catalog += &format!("<file name=\"{path}\" sha256=\"{}\"/>\n", hex_digest(&bytes));
        write(&root.join(&path), &bytes);
    }
    write(&root.join("index/master.xml"), format!("<index version=\"{v}\">\n{master}</index>\n").as_bytes());
    write(&root.join("index/gen.xml"), format!("<gen version=\"{v}\">\n{gen_index}</gen>\n").as_bytes());
    write(&root.join("catalog.xml"), format!("<catalog version=\"{v}\">\n{catalog}</catalog>\n").as_bytes());
}

/// `(path, sha256)` pairs an index file names.
fn index_entries(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("<file name=\"")?;
            let (name, rest) = rest.split_once("\" sha256=\"")?;
            let (digest, _) = rest.split_once('"')?;
            Some((name.to_owned(), digest.to_owned()))
        })
        .collect()
}

/// What the readers know about the snapshots.
#[derive(Clone)]
struct Known {
    trees: Vec<Tree>,
    /// Path → digest → the versions that have that content there.
    versions: HashMap<String, HashMap<String, BTreeSet<usize>>>,
    /// Index path → digest of that index file → its version.
    index_version: HashMap<String, HashMap<String, usize>>,
}

impl Known {
    fn new(trees: Vec<Tree>) -> Self {
        let mut versions: HashMap<String, HashMap<String, BTreeSet<usize>>> = HashMap::new();
        let mut index_version: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for (v, tree) in trees.iter().enumerate() {
            for (path, what) in tree {
                versions.entry(path.clone()).or_default().entry(what.clone()).or_default().insert(v);
                if INDEX_FILES.contains(&path.as_str()) {
                    let previous = index_version.entry(path.clone()).or_default().insert(what.clone(), v);
                    assert!(previous.is_none(), "index file {path} is the same in two versions");
                }
            }
        }
        Known { trees, versions, index_version }
    }

    /// `file HEX` of `path` in version `v`, if it has that file.
    fn content(&self, v: usize, path: &str) -> Option<&String> {
        self.trees[v].get(path)
    }
}

// ---------------------------------------------------------------------------
// Reading trees
// ---------------------------------------------------------------------------

/// Reads a whole tree by path, as `support::tree_state` does but without
/// modes, skipping `.ferry` at the top.
fn content_of(root: &Utf8Path) -> Tree {
    let mut map = Tree::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if relative == ".ferry" || relative.starts_with(".ferry/") {
            continue;
        }
        if entry.file_type().is_dir() {
            map.insert(relative, "dir".into());
        } else {
            map.insert(relative, format!("file {}", hex_digest(&std::fs::read(entry.path()).unwrap())));
        }
    }
    map
}

fn hash_reader(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok(format!("file {}", hex::encode(hasher.finalize())));
        }
        hasher.update(&buffer[..n]);
    }
}

/// Everything below the directory `dir`, read relative to its descriptor.
fn walk_at(dir: &OwnedFd, prefix: &str, out: &mut Tree) -> std::io::Result<()> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." && !(prefix.is_empty() && name == ".ferry") {
            names.push(name);
        }
    }
    names.sort();
    for name in names {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let stat = rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                out.insert(path.clone(), "dir".into());
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let sub = rustix::fs::openat(dir, name.as_str(), flags, Mode::empty())?;
                walk_at(&sub, &path, out)?;
            }
            FileType::RegularFile => {
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(dir, name.as_str(), flags, Mode::empty())?;
                out.insert(path, hash_reader(std::fs::File::from(fd))?);
            }
            other => {
                out.insert(path, format!("{other:?}"));
            }
        }
    }
    Ok(())
}

/// Counters shared between the main thread and the readers.
#[derive(Default)]
struct Figures {
    /// Whole-tree reads that completed and were checked.
    reads_checked: AtomicUsize,
    /// Of those, reads that began while an import was running.
    reads_during_imports: AtomicUsize,
    /// Whole-tree switch: reads retried because the tree was exchanged
    /// away while they ran.
    retried_swapped: AtomicUsize,
    /// Reads retried because an entry vanished ("not found") under them.
    retried_not_found: AtomicUsize,
    /// Ordered switch: files read and checked against the known versions.
    files_checked: AtomicUsize,
    /// Ordered switch: files listed, then gone when opened (deleted by the switch).
    files_vanished: AtomicUsize,
    /// Index checks (an index file and every data file it names).
    index_checks: AtomicUsize,
    /// Of those, checks that saw the next version's data under the old index.
    index_checks_newer_data: AtomicUsize,
    /// Index checks skipped because the index changed while its data was read.
    index_checks_inconclusive: AtomicUsize,
    /// Distinct served states seen (by snapshot or "mix").
    mixes_seen: AtomicUsize,
}

struct Shared {
    known: Known,
    target: Utf8PathBuf,
    stop: AtomicBool,
    importing: AtomicBool,
    figures: Figures,
    violations: std::sync::Mutex<Vec<String>>,
}

impl Shared {
    /// Nothing counted or reported yet, no import running.
    fn new(known: Known, target: Utf8PathBuf) -> Self {
        Shared {
            known,
            target,
            stop: AtomicBool::new(false),
            importing: AtomicBool::new(false),
            figures: Figures::default(),
            violations: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn violation(&self, text: String) {
        let mut violations = self.violations.lock().unwrap();
        if violations.len() < 20 {
            violations.push(text);
        }
    }

    fn add(counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whole-tree switch reader: open the target, read all of it through that
/// descriptor, and judge the read only if the descriptor still names the
/// target at the end.
fn tree_reader(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        let during = shared.importing.load(Ordering::Relaxed);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = match rustix::fs::open(shared.target.as_str(), flags, Mode::empty()) {
            Ok(root) => root,
            Err(error) => {
                shared.violation(format!("the target could not be opened: {error}"));
                continue;
            }
        };
        let mut tree = Tree::new();
        let result = walk_at(&root, "", &mut tree);
        let opened = rustix::fs::fstat(root.as_fd()).unwrap();
        let still_target = std::fs::metadata(&shared.target)
            .map(|now| now.dev() == opened.st_dev as u64 && now.ino() == opened.st_ino as u64)
            .unwrap_or(false);
        match result {
            Err(error) if error.kind() == ErrorKind::NotFound => {
                Shared::add(&shared.figures.retried_not_found);
                continue;
            }
            Err(error) => {
                shared.violation(format!("a read failed: {error}"));
                continue;
            }
            Ok(()) => {}
        }
        if !still_target {
            Shared::add(&shared.figures.retried_swapped);
            continue;
        }
        Shared::add(&shared.figures.reads_checked);
        if during {
            Shared::add(&shared.figures.reads_during_imports);
        }
        if !shared.known.trees.contains(&tree) {
            let closest = describe_difference(&tree, &shared.known.trees);
            shared.violation(format!("a whole read of the target is none of the snapshots: {closest}"));
        }
    }
}

fn describe_difference(tree: &Tree, trees: &[Tree]) -> String {
    let mut parts = Vec::new();
    for (v, known) in trees.iter().enumerate() {
        let differ: Vec<&String> = tree
            .keys()
            .chain(known.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|p| tree.get(*p) != known.get(*p))
            .collect();
        parts.push(format!(
            "vs version {v}: {} entries differ, e.g. {:?}",
            differ.len(),
            &differ[..differ.len().min(5)]
        ));
    }
    parts.join("; ")
}

/// Reads an index file by path: its bytes' digest and its version, or `None`.
fn read_index(shared: &Shared, path: &str) -> Option<(String, usize, Vec<u8>)> {
    let bytes = match std::fs::read(shared.target.join(path)) {
        Ok(bytes) => bytes,
        Err(error) => {
            shared.violation(format!("index file {path} could not be read: {error}"));
            return None;
        }
    };
    let what = format!("file {}", hex_digest(&bytes));
    match shared.known.index_version[path].get(&what) {
        Some(&v) => Some((what, v, bytes)),
        None => {
            shared.violation(format!("index file {path} is none of its versions (half-written?)"));
            None
        }
    }
}

/// Checks data read after an index file of version `v`: present, with the
/// named content or the next version's.
fn check_index(shared: &Shared, index: &str, v: usize, bytes: &[u8], served: &Tree) -> Option<String> {
    let next = (v + 1) % VERSIONS;
    let mut newer = false;
    for (name, digest) in index_entries(bytes) {
        let named = format!("file {digest}");
        match served.get(&name) {
            Some(what) if *what == named => {}
            Some(what) if shared.known.content(next, &name) == Some(what) => newer = true,
            other => {
                let old = shared
                    .known
                    .versions
                    .get(&name)
                    .and_then(|m| other.and_then(|w| m.get(w)))
                    .map(|vs| format!("version(s) {vs:?}"))
                    .unwrap_or_else(|| "unknown".into());
                return Some(format!(
                    "index {index} of version {v} is served but {name} is {} ({old})",
                    if other.is_none() { "absent".to_owned() } else { "older data".to_owned() }
                ));
            }
        }
    }
    if newer {
        Shared::add(&shared.figures.index_checks_newer_data);
    }
    None
}

/// Reads the index file `index` again: if it is still `what` (version `v`,
/// `bytes`), checks the data `served` after it against it ([`check_index`])
/// and reports a problem; if it changed meanwhile, the check is only counted
/// as inconclusive.
fn check_index_if_unchanged(shared: &Shared, index: &str, what: &str, v: usize, bytes: &[u8], served: &Tree) {
    let again = std::fs::read(shared.target.join(index)).ok().map(|b| format!("file {}", hex_digest(&b)));
    if again.as_deref() != Some(what) {
        Shared::add(&shared.figures.index_checks_inconclusive);
        return;
    }
    Shared::add(&shared.figures.index_checks);
    if let Some(problem) = check_index(shared, index, v, bytes, served) {
        shared.violation(problem);
    }
}

/// Ordered switch reader: read the index files, then the whole tree by
/// path (every file one of its versions), then the index files again; if
/// an index did not change meanwhile, the data it names must not be older.
fn path_reader(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        let during = shared.importing.load(Ordering::Relaxed);
        let before: Vec<_> = INDEX_FILES.iter().map(|p| read_index(shared, p)).collect();
        let mut served = Tree::new();
        let mut ok = true;
        for entry in walkdir::WalkDir::new(&shared.target).min_depth(1).sort_by_file_name() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) if error.io_error().is_some_and(|e| e.kind() == ErrorKind::NotFound) => {
                    Shared::add(&shared.figures.files_vanished);
                    continue;
                }
                Err(error) => {
                    shared.violation(format!("walking the target failed: {error}"));
                    ok = false;
                    break;
                }
            };
            let relative = entry.path().strip_prefix(&shared.target).unwrap().to_string_lossy().into_owned();
            if relative == ".ferry" || relative.starts_with(".ferry/") {
                continue;
            }
            let what = if entry.file_type().is_dir() {
                "dir".to_owned()
            } else {
                match std::fs::File::open(entry.path()).and_then(hash_reader) {
                    Ok(what) => what,
                    Err(error) if error.kind() == ErrorKind::NotFound => {
                        Shared::add(&shared.figures.files_vanished);
                        continue;
                    }
                    Err(error) => {
                        shared.violation(format!("reading {relative} failed: {error}"));
                        continue;
                    }
                }
            };
            match shared.known.versions.get(&relative) {
                Some(contents) if contents.contains_key(&what) => {}
                Some(_) => shared.violation(format!("{relative} is none of its versions (half-written?)")),
                None => shared.violation(format!("{relative} is in no snapshot")),
            }
            Shared::add(&shared.figures.files_checked);
            served.insert(relative, what);
        }
        if !ok {
            continue;
        }
        Shared::add(&shared.figures.reads_checked);
        if during {
            Shared::add(&shared.figures.reads_during_imports);
        }
        if !shared.known.trees.contains(&served) {
            Shared::add(&shared.figures.mixes_seen);
        }
        for (index, first) in INDEX_FILES.iter().zip(before) {
            let Some((what, v, bytes)) = first else { continue };
            check_index_if_unchanged(shared, index, &what, v, &bytes, &served);
        }
    }
}

/// A tight loop on the index files alone: read an index, then the data it
/// names, then the index again. Cheaper than a whole read, so it samples
/// the rename phase far more often.
fn index_reader(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        for index in INDEX_FILES {
            let Some((what, v, bytes)) = read_index(shared, index) else { continue };
            let mut served = Tree::new();
            for (name, _) in index_entries(&bytes) {
                match std::fs::File::open(shared.target.join(&name)).and_then(hash_reader) {
                    Ok(content) => {
                        served.insert(name, content);
                    }
                    Err(error) if error.kind() == ErrorKind::NotFound => {}
                    Err(error) => shared.violation(format!("reading {name} failed: {error}")),
                }
            }
            check_index_if_unchanged(shared, index, &what, v, &bytes, &served);
        }
    }
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

fn readers_during_imports(switch: &str) {
    let scratch = Scratch::new();
    let key = scratch.path("key");
    keygen(&key);
    let (secret, public) = (key.with_extension("key"), key.with_extension("pub"));
    let mut trees = Vec::new();
    let mut sources = Vec::new();
    for v in 0..VERSIONS {
        let source = scratch.path(&format!("source{v}"));
        version(&source, v);
        trees.push(content_of(&source));
        sources.push(source);
    }
    let count = imports();
    // Every snapshot exported before the readers start: sequence n holds
    // version (n - 1) mod 3.
    let media: Vec<Utf8PathBuf> = (1..=count as u64 + 1)
        .map(|n| {
            let media = scratch.path(&format!("media{n}"));
            export(&sources[(n as usize - 1) % VERSIONS], &media, &secret, "av", n);
            media
        })
        .collect();
    let site = scratch.path("site");
    std::fs::create_dir_all(&site).unwrap();
    let target = site.join("target");
    let import = |n: usize| {
        let run =
            run(&["import", media[n].as_str(), target.as_str(), "--trust", public.as_str(), "--switch", switch, "-q"]);
        assert_eq!(run.code, 0, "import of sequence {}: {}", n + 1, run.stderr);
    };
    import(0);
    assert_eq!(content_of(&target), trees[0]);

    let shared = Arc::new(Shared::new(Known::new(trees), target.clone()));
    let mut readers = Vec::new();
    let whole: fn(&Shared) = if switch == "tree" { tree_reader } else { path_reader };
    for reader in [whole, index_reader] {
        let shared = shared.clone();
        readers.push(std::thread::spawn(move || reader(&shared)));
    }
    // Let the readers see the first snapshot once before the imports start.
    while shared.figures.reads_checked.load(Ordering::Relaxed) == 0 && shared.violations.lock().unwrap().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for n in 1..=count {
        shared.importing.store(true, Ordering::Relaxed);
        import(n);
        shared.importing.store(false, Ordering::Relaxed);
        assert_eq!(content_of(&target), shared.known.trees[n % VERSIONS], "after importing sequence {}", n + 1);
    }
    shared.stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().expect("a reader panicked");
    }
    let f = &shared.figures;
    let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    let line = if switch == "tree" {
        format!(
            "readers during {count} imports, --switch tree: {} whole-tree reads checked ({} begun during an \
             import), {} retried because the tree was exchanged under them, {} because an entry vanished; \
             {} index checks ({} inconclusive)",
            get(&f.reads_checked),
            get(&f.reads_during_imports),
            get(&f.retried_swapped),
            get(&f.retried_not_found),
            get(&f.index_checks),
            get(&f.index_checks_inconclusive),
        )
    } else {
        format!(
            "readers during {count} imports, --switch ordered: {} whole-tree reads checked ({} begun during an \
             import, {} saw a mix of snapshots), {} files checked, {} vanished while listed; {} index checks ({} \
             with the next version's data under the old index, {} inconclusive)",
            get(&f.reads_checked),
            get(&f.reads_during_imports),
            get(&f.mixes_seen),
            get(&f.files_checked),
            get(&f.files_vanished),
            get(&f.index_checks),
            get(&f.index_checks_newer_data),
            get(&f.index_checks_inconclusive),
        )
    };
    println!("{line}");
    let violations = shared.violations.lock().unwrap();
    assert!(violations.is_empty(), "{line}\nreaders saw violations:\n{}", violations.join("\n"));
    assert!(get(&f.reads_checked) > 0 && get(&f.index_checks) > 0, "{line}: the readers checked nothing");
}

#[test]
fn readers_during_imports_tree_switch() {
    readers_during_imports("tree");
}

#[test]
fn readers_during_imports_ordered_switch() {
    readers_during_imports("ordered");
}

// ---------------------------------------------------------------------------
// Controls: the checks catch what they are meant to catch
// ---------------------------------------------------------------------------

fn known_for_control(scratch: &Scratch) -> Shared {
    let mut trees = Vec::new();
    for v in 0..VERSIONS {
        let source = scratch.path(&format!("v{v}"));
        version(&source, v);
        trees.push(content_of(&source));
    }
    Shared::new(Known::new(trees), scratch.path("none"))
}

#[test]
fn control_an_index_newer_than_its_data_is_caught() {
    let scratch = Scratch::new();
    let shared = known_for_control(&scratch);
    let trees = &shared.known.trees;
    let index_bytes = |v: usize| std::fs::read(scratch.path(&format!("v{v}/index/master.xml"))).unwrap();
    // Version 1's index over version 1's data: fine.
    assert_eq!(check_index(&shared, "index/master.xml", 1, &index_bytes(1), &trees[1]), None);
    // Version 1's index over version 2's data (the next import's data phase): fine.
    assert_eq!(check_index(&shared, "index/master.xml", 1, &index_bytes(1), &trees[2]), None);
    // Version 1's index over version 0's data: the index is newer.
    assert!(check_index(&shared, "index/master.xml", 1, &index_bytes(1), &trees[0]).is_some());
    // One data file still old is enough.
    let mut one_old = trees[1].clone();
    one_old.insert("data/d3/f003.dat".into(), trees[0]["data/d3/f003.dat"].clone());
    assert!(check_index(&shared, "index/master.xml", 1, &index_bytes(1), &one_old).is_some());
    // A file the index names that is absent.
    let gen_bytes = std::fs::read(scratch.path("v1/index/gen.xml")).unwrap();
    let mut missing = trees[1].clone();
    missing.remove("gen1/g05.dat");
    assert!(check_index(&shared, "index/gen.xml", 1, &gen_bytes, &missing).is_some());
    assert_eq!(index_entries(&gen_bytes).len(), 30);
}

#[test]
fn control_a_torn_or_mixed_tree_is_caught() {
    let scratch = Scratch::new();
    let shared = known_for_control(&scratch);
    let trees = &shared.known.trees;
    let mut mixed = trees[0].clone();
    mixed.insert("data/d0/f000.dat".into(), trees[1]["data/d0/f000.dat"].clone());
    assert!(!trees.contains(&mixed), "a mix passes for a snapshot");
    let path = "data/d0/f000.dat";
    let torn = format!("file {}", hex_digest(b"half"));
    assert!(!shared.known.versions[path].contains_key(&torn));
    for tree in trees {
        assert!(shared.known.versions[path].contains_key(&tree[path]));
    }
}

/// Runs `reader` over a static folder until it has completed one whole
/// read, and returns what it reported.
fn run_reader_once(shared: Shared, reader: fn(&Shared)) -> Vec<String> {
    let shared = Arc::new(shared);
    let thread = {
        let shared = shared.clone();
        std::thread::spawn(move || reader(&shared))
    };
    while shared.figures.reads_checked.load(Ordering::Relaxed) + shared.figures.index_checks.load(Ordering::Relaxed) < 3
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    shared.stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    shared.violations.lock().unwrap().clone()
}

fn copy_tree(from: &Utf8Path, to: &Utf8Path) {
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(from).unwrap();
        let dest = to.as_std_path().join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(dest).unwrap();
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

#[test]
fn control_the_readers_report_what_they_must() {
    let scratch = Scratch::new();
    let target = scratch.path("served");
    let known = known_for_control(&scratch).known;
    let with_target = || Shared::new(known.clone(), target.clone());
    std::fs::create_dir_all(&target).unwrap();
    copy_tree(&scratch.path("v1"), &target);
    write(&target.join(".ferry/state"), b"ignored\n");

    // A clean snapshot: no report from any reader.
    for reader in [tree_reader as fn(&Shared), path_reader, index_reader] {
        assert_eq!(run_reader_once(with_target(), reader), Vec::<String>::new());
    }
    // Version 2's master index over version 1's data: both path readers object.
    std::fs::copy(scratch.path("v2/index/master.xml"), target.join("index/master.xml")).unwrap();
    for reader in [path_reader as fn(&Shared), index_reader] {
        let found = run_reader_once(with_target(), reader);
        assert!(found.iter().any(|v| v.contains("older data")), "{found:?}");
    }
    assert!(!run_reader_once(with_target(), tree_reader).is_empty(), "the tree reader accepted a mix");
    // A half-written data file.
    std::fs::copy(scratch.path("v1/index/master.xml"), target.join("index/master.xml")).unwrap();
    write(&target.join("data/d0/f000.dat"), b"half");
    let found = run_reader_once(with_target(), path_reader);
    assert!(found.iter().any(|v| v.contains("none of its versions")), "{found:?}");
    assert!(!run_reader_once(with_target(), tree_reader).is_empty(), "the tree reader accepted a torn file");
}
