//! Hostile drives and hostile folders (issue 15): drives prepared by the
//! tests with symbolic links at every level of `ferry/REPO/SEQ/...`, FIFOs,
//! device nodes and entries of the wrong kind, prune beside folders ferry
//! did not write, and a source that changes while export reads it.
//!
//! Every case must end with a clear error (or the documented safe
//! behaviour, formats/threat-model.md §7) within a bound (a command that
//! runs past [`BOUND`] is killed and fails the test: a hang is a failure,
//! not a stuck suite), and a digest of everything outside the drive (a
//! scratch folder standing for the host) unchanged.
//!
//! Device nodes need root (`mknod`); without it the device test fails
//! saying so, unless `FERRY_TEST_SKIP=device-nodes` opts out
//! (docs/testing.md).

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::*;

/// Longest any command may run before it counts as hung.
const BOUND: Duration = Duration::from_secs(60);

/// Runs `ferry ARGS...`, killing it (and failing the test) if it runs
/// past [`BOUND`].
fn bounded(args: &[&str]) -> Run {
    let mut child = ferry()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ferry");
    let started = Instant::now();
    while child.try_wait().expect("wait for ferry").is_none() {
        if started.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`ferry {}` still ran after {BOUND:?}: it hangs", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run::from(child.wait_with_output().expect("collect ferry's output"))
}

/// A drive, a host folder beside it, a source and a key.
struct Bench {
    scratch: Scratch,
    secret: Utf8PathBuf,
    public: Utf8PathBuf,
    source: Utf8PathBuf,
    drive: Utf8PathBuf,
    /// Stands for the host's own folders (`/srv`): nothing may change in it.
    host: Utf8PathBuf,
    target: Utf8PathBuf,
}

impl Bench {
    fn new() -> Self {
        let scratch = Scratch::new();
        let (secret, public) = key_pair(&scratch);
        let source = scratch.path("source");
        small_repository(&source);
        let host = scratch.path("host");
        // What `/srv` might hold, named like what ferry would write there.
        write(&host.join("update-repository/bases/keep.dat"), b"host data");
        write(&host.join("update-repository/index/keep.xml"), b"<host/>");
        write(&host.join("av/7/manifest"), b"not ferry's");
        write(&host.join("notes.txt"), b"host notes");
        let drive = scratch.path("drive");
        std::fs::create_dir_all(&drive).unwrap();
        // An empty target folder: a refused import must leave it empty.
        let target = scratch.path("site/target");
        std::fs::create_dir_all(&target).unwrap();
        Bench { secret, public, source, drive, host, target, scratch }
    }

    fn export(&self, sequence: u64, layout: &str) -> Utf8PathBuf {
        export_with(&self.source, &self.drive, &self.secret, "av", sequence, &["--layout", layout])
    }

    fn export_args<'a>(&'a self, sequence: &'a str, layout: &'a str) -> Vec<&'a str> {
        vec![
            "export",
            self.source.as_str(),
            self.drive.as_str(),
            "--key",
            self.secret.as_str(),
            "--repository",
            "av",
            "--sequence",
            sequence,
            "--layout",
            layout,
        ]
    }

    fn verify(&self) -> Run {
        bounded(&["verify", self.drive.as_str(), "--trust", self.public.as_str()])
    }

    fn import(&self) -> Run {
        bounded(&["import", self.drive.as_str(), self.target.as_str(), "--trust", self.public.as_str()])
    }

    /// Everything outside the drive: host, source and the target's site.
    fn outside(&self) -> Tree {
        let mut all = Tree::new();
        for (name, root) in [("host", &self.host), ("source", &self.source), ("site", &self.scratch.path("site"))] {
            // A refusal appends its entry to the target's audit journal.
            all.extend(tree_state_but_journal(root).into_iter().map(|(path, state)| (format!("{name}/{path}"), state)));
        }
        all
    }
}

fn symlink(target: &Utf8Path, link: &Utf8Path) {
    std::os::unix::fs::symlink(target, link).unwrap_or_else(|e| panic!("link {link} -> {target}: {e}"));
}

fn mkfifo(path: &Utf8Path) {
    rustix::fs::mknodat(rustix::fs::CWD, path.as_std_path(), rustix::fs::FileType::Fifo, 0o644.into(), 0)
        .unwrap_or_else(|e| panic!("mkfifo {path}: {e}"));
}

/// Makes `/dev/null`'s twin at `path`; `false` when the test opted out
/// (`FERRY_TEST_SKIP=device-nodes`) on a machine that cannot.
fn mknod_null(path: &Utf8Path) -> bool {
    let device = rustix::fs::makedev(1, 3);
    let kind = rustix::fs::FileType::CharacterDevice;
    match rustix::fs::mknodat(rustix::fs::CWD, path.as_std_path(), kind, 0o644.into(), device) {
        Ok(()) => true,
        Err(e) => {
            opt_out_or_fail(Need::DeviceNodes, &format!("mknod {path}: {e}"));
            false
        }
    }
}

/// Replaces whatever is at `path` (file or folder).
fn remove(path: &Utf8Path) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// Copies a tree (files and folders only), for links that point at a
/// faithful copy: then only the link itself can be what is refused.
fn copy_tree(from: &Utf8Path, to: &Utf8Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(from).unwrap();
        let destination = to.as_std_path().join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&destination).unwrap();
        } else {
            std::fs::copy(entry.path(), &destination).unwrap();
        }
    }
}

fn assert_refused(run: &Run, code: i32, words: &[&str], case: &str) {
    assert_eq!(run.code, code, "{case}: exit {} (expected {code})\nstderr: {}", run.code, run.stderr);
    for word in words {
        assert!(run.stderr.contains(word), "{case}: stderr lacks `{word}`:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{case}: {}", run.stderr);
}

// ---------------------------------------------------------------------------
// Export onto a drive prepared with links

#[test]
fn ferry_folder_linked_to_a_host_folder_is_refused_by_export_with_prune_and_nothing_outside_changes() {
    for layout in ["tar", "tree"] {
        let b = Bench::new();
        symlink(&b.host, &b.drive.join("ferry"));
        let before = b.outside();
        let run = bounded(&[
            "export",
            b.source.as_str(),
            b.drive.as_str(),
            "--key",
            b.secret.as_str(),
            "--repository",
            "update-repository",
            "--prune",
            "1",
            "--layout",
            layout,
        ]);
        assert_refused(&run, 3, &["symbolic link", b.host.as_str(), "hint:"], layout);
        assert_tree_unchanged(&before, &b.outside(), "outside the drive");
        // The drive holds only the link it was given.
        assert_eq!(tree_state(&b.drive).len(), 1, "{layout}: {:?}", tree_state(&b.drive));
        // Every other command refuses the link too instead of reading the host.
        assert_refused(&b.verify(), 3, &["symbolic link"], "verify");
        assert_refused(&b.import(), 3, &["symbolic link"], "import");
        assert_refused(&bounded(&["list", b.drive.as_str()]), 3, &["symbolic link"], "list");
        assert_tree_unchanged(&before, &b.outside(), "outside the drive");
    }
}

#[test]
fn links_at_every_level_below_the_drive_are_refused_by_export() {
    for layout in ["tar", "tree"] {
        for level in ["ferry", "ferry/av", "ferry/av/5"] {
            let b = Bench::new();
            let link = b.drive.join(level);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            symlink(&b.host, &link);
            let before = b.outside();
            let run = bounded(&b.export_args("5", layout));
            assert_refused(&run, 3, &["symbolic link", level, b.host.as_str()], &format!("{layout} {level}"));
            assert_tree_unchanged(&before, &b.outside(), "outside the drive");
        }
    }
}

#[test]
fn a_link_inside_an_unfinished_export_is_removed_with_it_never_followed() {
    for (layout, inner) in [("tar", "volumes"), ("tree", "payload"), ("tar", "manifest.sig"), ("tree", "SHA256SUMS")] {
        let b = Bench::new();
        let folder = b.drive.join("ferry/av/5");
        write(&folder.join("unfinished"), b"ferry unfinished export v1\n");
        symlink(&b.host, &folder.join(inner));
        let before = b.outside();
        // The folder is ferry's (its note says so): the documented safe
        // behaviour is to remove it, the link as a link, and export anew.
        bounded(&b.export_args("5", layout)).ok();
        assert_tree_unchanged(&before, &b.outside(), "outside the drive");
        assert!(folder.join("manifest.sig").is_file() && !folder.join(inner).is_symlink(), "{layout} {inner}");
        b.verify().ok();
    }
}

#[test]
fn a_drive_root_given_as_a_link_is_followed_like_any_folder_the_operator_names() {
    let b = Bench::new();
    let named = b.scratch.path("media-usb");
    symlink(&b.drive, &named);
    export(&b.source, &named, &b.secret, "av", 1);
    bounded(&["verify", named.as_str(), "--trust", b.public.as_str()]).ok();
    assert!(b.drive.join("ferry/av/1/manifest.sig").is_file());
}

// ---------------------------------------------------------------------------
// Reading a drive prepared with links, FIFOs, devices and wrong kinds

/// What replaces an entry of a good snapshot.
#[derive(Clone, Copy, Debug)]
enum Plant {
    /// A link to a faithful copy of the entry, outside the drive.
    LinkToCopy,
    Fifo,
    Device,
    /// A folder where a file is, or a file where a folder is.
    OtherKind,
}

/// Exports a good snapshot, replaces `entry` (relative to the snapshot
/// folder) as `plant` says, and returns the bench; `None` if skipped.
fn planted(layout: &str, entry: &str, plant: Plant) -> Option<(Bench, Tree)> {
    let b = Bench::new();
    let folder = b.export(1, layout);
    let path = folder.join(entry);
    let was_dir = path.is_dir();
    match plant {
        Plant::LinkToCopy => {
            let copy = b.host.join("copy").join(path.file_name().unwrap());
            if was_dir {
                copy_tree(&path, &copy);
            } else {
                write(&copy, &std::fs::read(&path).unwrap());
            }
            remove(&path);
            symlink(&copy, &path);
        }
        Plant::Fifo => {
            remove(&path);
            mkfifo(&path);
        }
        Plant::Device => {
            remove(&path);
            if !mknod_null(&path) {
                return None;
            }
        }
        Plant::OtherKind => {
            remove(&path);
            if was_dir {
                write(&path, b"a file where a folder was");
            } else {
                std::fs::create_dir_all(path.join("inside")).unwrap();
            }
        }
    }
    let before = b.outside();
    Some((b, before))
}

/// The words the error must hold for a plant.
fn words(plant: Plant) -> &'static [&'static str] {
    match plant {
        Plant::LinkToCopy => &["symbolic link"],
        Plant::Fifo => &["FIFO"],
        Plant::Device => &["character device"],
        Plant::OtherKind => &[],
    }
}

/// Verify and import must refuse (exit 3) within the bound, naming the
/// entry, and change nothing outside the drive.
fn check_refused(layout: &str, entry: &str, plant: Plant) {
    let Some((b, before)) = planted(layout, entry, plant) else { return };
    let case = format!("{layout} {entry} {plant:?}");
    let name = Utf8Path::new(entry).file_name().unwrap();
    for (command, run) in [("verify", b.verify()), ("import", b.import())] {
        assert_refused(&run, 3, words(plant), &format!("{command} {case}"));
        assert!(run.stderr.contains(name), "{command} {case}: the error does not name `{name}`: {}", run.stderr);
    }
    assert_tree_unchanged(&before, &b.outside(), "outside the drive and the target");
}

const METADATA: [&str; 2] = ["manifest", "manifest.sig"];
const TAR_ENTRIES: [&str; 2] = ["volumes", "volumes/0001.tar"];
const TREE_ENTRIES: [&str; 3] = ["payload", "payload/bases/av-2.dat", "payload/bases/sub"];

#[test]
fn links_in_place_of_the_manifest_signature_volumes_and_payload_are_refused() {
    for entry in METADATA.iter().chain(&TAR_ENTRIES) {
        check_refused("tar", entry, Plant::LinkToCopy);
    }
    for entry in METADATA.iter().chain(&TREE_ENTRIES) {
        check_refused("tree", entry, Plant::LinkToCopy);
    }
}

#[test]
fn links_in_place_of_the_repository_or_sequence_folder_are_not_followed() {
    for level in ["ferry/av", "ferry/av/1"] {
        let b = Bench::new();
        b.export(1, "tar");
        let path = b.drive.join(level);
        let copy = b.host.join("copy");
        copy_tree(&path, &copy);
        remove(&path);
        symlink(&copy, &path);
        let before = b.outside();
        // Such a link is not a folder where snapshots are searched (L2):
        // nothing is found, nothing is read through it.
        for run in [b.verify(), b.import()] {
            assert_refused(&run, 3, &["no complete snapshot"], level);
        }
        assert_tree_unchanged(&before, &b.outside(), "outside the drive");
    }
}

#[test]
fn fifos_in_place_of_the_manifest_signature_a_volume_and_a_payload_file_never_block() {
    for entry in METADATA.iter().chain(&["volumes/0001.tar"]) {
        check_refused("tar", entry, Plant::Fifo);
    }
    for entry in METADATA.iter().chain(&["payload/bases/av-2.dat", "payload/bases/empty.dat"]) {
        check_refused("tree", entry, Plant::Fifo);
    }
}

#[test]
fn device_nodes_in_place_of_a_volume_and_a_payload_file_are_refused_unopened() {
    check_refused("tar", "volumes/0001.tar", Plant::Device);
    check_refused("tree", "payload/bases/av-2.dat", Plant::Device);
    check_refused("tree", "manifest.sig", Plant::Device);
}

#[test]
fn folders_where_files_belong_and_files_where_folders_belong_are_refused() {
    for entry in METADATA.iter().chain(&TAR_ENTRIES) {
        check_refused("tar", entry, Plant::OtherKind);
    }
    for entry in METADATA.iter().chain(&TREE_ENTRIES) {
        check_refused("tree", entry, Plant::OtherKind);
    }
}

#[test]
fn sha256sums_is_never_read_so_a_fifo_or_link_there_changes_nothing() {
    for layout in ["tar", "tree"] {
        for plant in [Plant::Fifo, Plant::LinkToCopy] {
            let (b, before) = planted(layout, "SHA256SUMS", plant).unwrap();
            b.verify().ok();
            assert_tree_unchanged(&before, &b.outside(), "outside the drive");
            b.import().ok();
        }
    }
}

// ---------------------------------------------------------------------------
// Prune and the clean-up of unfinished exports

#[test]
fn prune_removes_only_snapshot_folders_ferry_wrote_and_reports_the_rest() {
    let b = Bench::new();
    b.export(1, "tar");
    b.export(2, "tree");
    let repository = b.drive.join("ferry/av");
    // Beside them: what ferry did not write.
    write(&repository.join("bases/keep.dat"), b"not ferry's");
    write(&repository.join("77/readme.txt"), b"a numbered folder ferry did not write");
    write(&repository.join("78/manifest"), b"ferry manifest v1\nrepository: other\nsequence: 78\n");
    write(&repository.join("notes.txt"), b"a file");
    symlink(&b.host, &repository.join("79"));
    // An export killed early, and one killed before its signature.
    write(&repository.join("80/unfinished"), b"ferry unfinished export v1\n");
    write(&repository.join("80/volumes/0001.tar"), b"partial");
    b.export(81, "tar");
    remove(&repository.join("81/manifest.sig"));
    let before = b.outside();
    let run = bounded(&[&b.export_args("90", "tar")[..], &["--prune", "1", "--json"]].concat()).ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let pruned: Vec<String> =
        report["pruned"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect();
    let names = |list: &[String]| -> Vec<String> {
        list.iter().map(|p| Utf8Path::new(p.split(':').next().unwrap()).file_name().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&pruned), ["1", "2", "80", "81"], "{pruned:?}");
    let left: Vec<String> =
        report["left_alone"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect();
    assert_eq!(names(&left), ["77", "78", "79", "bases", "notes.txt"], "{left:?}");
    for kept in ["bases/keep.dat", "77/readme.txt", "78/manifest", "notes.txt", "90/manifest.sig"] {
        assert!(repository.join(kept).is_file(), "{kept} is gone");
    }
    assert!(repository.join("79").is_symlink());
    assert_tree_unchanged(&before, &b.outside(), "outside the drive");
}

#[test]
fn an_unfinished_export_is_removed_only_when_ferry_wrote_it() {
    let b = Bench::new();
    let folder = b.drive.join("ferry/av/5");
    write(&folder.join("volumes/0001.tar"), b"someone else's");
    let before = tree_state(&b.drive);
    let run = bounded(&b.export_args("5", "tar"));
    assert_refused(&run, 1, &["already exists"], "foreign folder at the snapshot's path");
    assert_tree_unchanged(&before, &tree_state(&b.drive), "the drive");
    // With ferry's note it is an export that did not finish: replaced.
    write(&folder.join("unfinished"), b"ferry unfinished export v1\n");
    bounded(&b.export_args("5", "tar")).ok();
    b.verify().ok();
    assert!(!folder.join("unfinished").exists(), "the note outlives the signature");
}

// ---------------------------------------------------------------------------
// A source that changes while export reads it

/// Keeps rewriting 4 KiB of `file` at changing offsets until stopped.
fn rewriter(file: Utf8PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        let length = handle.metadata().unwrap().len();
        let mut writes = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let offset = (writes * 7919 * 4096) % (length - 4096);
            handle.write_all_at(&pseudo_random_bytes(writes, 4096), offset).unwrap();
            writes += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        writes
    })
}

#[test]
fn a_file_rewritten_while_export_reads_it_is_refused_never_signed() {
    for layout in ["tar", "tree"] {
        let b = Bench::new();
        let big = b.source.join("bases/big.dat");
        write(&big, &pseudo_random_bytes(7, 48 * 1024 * 1024));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = rewriter(big.clone(), stop.clone());
        // The race is retried until it is seen; a run that saw no write at
        // all may succeed, but none may sign bytes that changed under it.
        let mut refused = None;
        for attempt in 0..5 {
            let sequence = (attempt + 1).to_string();
            let run = bounded(&b.export_args(&sequence, layout));
            if run.code != 0 {
                refused = Some(run);
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        assert!(writer.join().unwrap() > 0);
        let run = refused.expect("the rewrite was never noticed in five exports");
        assert_refused(
            &run,
            1,
            &["big.dat", "changed while export read it", "hint: run the export when the download task is idle"],
            layout,
        );
    }
}

#[test]
fn a_folder_whose_entries_change_while_export_reads_it_is_refused() {
    let b = Bench::new();
    write(&b.source.join("bases/big.dat"), &pseudo_random_bytes(3, 16 * 1024 * 1024));
    let stop = Arc::new(AtomicBool::new(false));
    let folder = b.source.join("incoming");
    std::fs::create_dir_all(&folder).unwrap();
    let adder = {
        let stop = stop.clone();
        let folder = folder.clone();
        std::thread::spawn(move || {
            let mut added = 0u32;
            while !stop.load(Ordering::Relaxed) && added < 20_000 {
                std::fs::write(folder.join(format!("new-{added}.dat")), b"x").unwrap();
                added += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let run = bounded(&b.export_args("1", "tar"));
    stop.store(true, Ordering::Relaxed);
    adder.join().unwrap();
    assert_refused(&run, 1, &["changed while export read it", "hint:"], "folder");
    assert!(!b.drive.join("ferry/av/1").exists(), "the refused export left its folder");
}

// ---------------------------------------------------------------------------
// The target side: links planted in the state folder, beside TARGET, in
// the served tree (formats/threat-model.md §7 T1 to T3)

/// A bench with sequence 1 (version 1) on `drive`, sequence 2 (version 2)
/// on `drive2`, and version 1 imported into the target with `switch`.
fn installed(switch: &str) -> (Bench, Utf8PathBuf) {
    let b = Bench::new();
    versioned_repository(&b.source, 1);
    export(&b.source, &b.drive, &b.secret, "av", 1);
    versioned_repository(&b.source, 2);
    let drive2 = b.scratch.path("drive2");
    export(&b.source, &drive2, &b.secret, "av", 2);
    import_with(&b, &b.drive, switch).ok();
    (b, drive2)
}

fn import_with(b: &Bench, drive: &Utf8Path, switch: &str) -> Run {
    bounded(&["import", drive.as_str(), b.target.as_str(), "--trust", b.public.as_str(), "--switch", switch])
}

/// Everything outside the target's own folders: the host, the source.
fn host_and_source(b: &Bench) -> Tree {
    let mut all = tree_state(&b.host);
    all.extend(tree_state(&b.source).into_iter().map(|(path, state)| (format!("source/{path}"), state)));
    all
}

#[test]
fn a_state_folder_that_is_a_link_is_refused_by_import_status_and_rollback() {
    for switch in ["tree", "ordered"] {
        let (b, drive2) = installed(switch);
        let state = b.target.join(".ferry");
        copy_tree(&state, &b.host.join("state-copy"));
        remove(&state);
        symlink(&b.host.join("state-copy"), &state);
        let before = host_and_source(&b);
        assert_refused(&import_with(&b, &drive2, switch), 3, &["symbolic link", ".ferry"], switch);
        assert_refused(&bounded(&["rollback", b.target.as_str()]), 3, &["symbolic link"], switch);
        assert_tree_unchanged(&before, &host_and_source(&b), "outside the target");
    }
}

#[test]
fn links_in_the_state_folder_are_replaced_or_refused_never_written_through() {
    for (name, switch) in [("journal", "ordered"), ("staging", "ordered"), ("audit", "tree"), ("manifest", "tree")] {
        let (b, drive2) = installed(switch);
        let path = b.target.join(".ferry").join(name);
        let is_dir = path.is_dir();
        remove(&path);
        let aim = if is_dir || name == "staging" { b.host.join("update-repository") } else { b.host.join("notes.txt") };
        symlink(&aim, &path);
        let before = host_and_source(&b);
        let run = import_with(&b, &drive2, switch);
        assert!(run.code == 0 || run.code == 3, "{name} {switch}: exit {}\n{}", run.code, run.stderr);
        if run.code == 3 {
            assert!(run.stderr.contains("symbolic link"), "{name} {switch}: {}", run.stderr);
        }
        assert_tree_unchanged(&before, &host_and_source(&b), &format!("outside the target ({name}, {switch})"));
    }
}

#[test]
fn trees_beside_the_target_that_are_links_are_never_followed() {
    let (b, drive2) = installed("tree");
    let site = b.target.parent().unwrap().to_owned();
    // A planted `next` is cleared as a link; the import goes ahead.
    symlink(&b.host, &site.join(".target.ferry-next"));
    let before = host_and_source(&b);
    import_with(&b, &drive2, "tree").ok();
    assert_tree_unchanged(&before, &host_and_source(&b), "outside the target (next)");
    // A planted `previous` never becomes TARGET.
    let previous = site.join(".target.ferry-previous");
    copy_tree(&previous, &b.host.join("previous-copy"));
    remove(&previous);
    symlink(&b.host.join("previous-copy"), &previous);
    let before = host_and_source(&b);
    let run = bounded(&["rollback", b.target.as_str()]);
    assert_refused(&run, 3, &["symbolic link", ".target.ferry-previous"], "rollback");
    assert!(!b.target.is_symlink(), "TARGET became the planted link");
    assert_tree_unchanged(&before, &host_and_source(&b), "outside the target (previous)");
}

#[test]
fn a_link_planted_in_the_served_tree_is_never_written_or_deleted_through() {
    for switch in ["tree", "ordered"] {
        let (b, drive2) = installed(switch);
        // `data/d0` holds files both versions list: the new version's
        // files must not land in (nor the old ones be deleted from) the host.
        let folder = b.target.join("data/d0");
        remove(&folder);
        copy_tree(&b.source.join("data/d0"), &b.host.join("d0"));
        symlink(&b.host.join("d0"), &folder);
        let before = host_and_source(&b);
        let run = import_with(&b, &drive2, switch);
        assert!(run.code == 0 || run.code == 3, "{switch}: exit {}\n{}", run.code, run.stderr);
        if run.code == 3 {
            assert!(run.stderr.contains("symbolic link"), "{switch}: {}", run.stderr);
        }
        assert_tree_unchanged(&before, &host_and_source(&b), &format!("outside the target ({switch})"));
    }
}
