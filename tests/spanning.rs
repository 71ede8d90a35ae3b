//! One snapshot over several drives: export fills each drive in turn, and
//! import and verify assemble the drives, naming a missing or foreign one.

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use support::*;

struct Span {
    scratch: Scratch,
    key: Utf8PathBuf,
    public: Utf8PathBuf,
    source: Utf8PathBuf,
}

impl Span {
    fn new() -> Self {
        let scratch = Scratch::new();
        let (key, public) = key_pair(&scratch);
        let source = scratch.path("av");
        small_repository(&source);
        // 1.5 MB that does not compress: spread over three 700K drives.
        write(&source.join("bases/large.bin"), &pseudo_random_bytes(7, 1_500_000));
        Span { key, public, source, scratch }
    }

    fn drives(&self, prefix: &str, count: usize) -> Vec<Utf8PathBuf> {
        (1..=count).map(|n| self.scratch.path(&format!("{prefix}{n}"))).collect()
    }

    fn export(&self, drives: &[Utf8PathBuf], sequence: &str, extra: &[&str]) -> Run {
        let mut args = vec!["export", self.source.as_str()];
        args.extend(drives.iter().map(|d| d.as_str()));
        args.extend(["--key", self.key.as_str(), "--repository", "av", "--sequence", sequence]);
        args.extend(["--volume-size", "256K", "--drive-size", "700K"]);
        args.extend_from_slice(extra);
        run(&args)
    }

    fn import(&self, drives: &[&Utf8PathBuf], target: &Utf8Path) -> Run {
        let mut args = vec!["import"];
        args.extend(drives.iter().map(|d| d.as_str()));
        args.extend([target.as_str(), "--trust", self.public.as_str()]);
        run(&args)
    }
}

fn volumes_on(drive: &Utf8Path, sequence: &str) -> Vec<String> {
    let dir = drive.join("ferry/av").join(sequence).join("volumes");
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn a_snapshot_spans_three_drives_and_imports_from_all_three_in_any_order() {
    let s = Span::new();
    let drives = s.drives("drive", 3);
    let exported = s.export(&drives, "5", &[]).ok();
    assert!(exported.stdout.contains("read back"), "{}", exported.stdout);
    // Every drive holds volumes, the signed manifest and a note of its part.
    let mut all = Vec::new();
    for (n, drive) in drives.iter().enumerate() {
        let folder = drive.join("ferry/av/5");
        assert!(folder.join("manifest.sig").is_file());
        let part = std::fs::read_to_string(folder.join("part")).unwrap();
        assert!(part.contains(&format!("part: {} of 3", n + 1)), "{part}");
        let held = volumes_on(drive, "5");
        assert!(!held.is_empty(), "drive {n} holds no volume");
        for name in &held {
            assert!(std::fs::metadata(folder.join("volumes").join(name)).unwrap().len() <= 256 * 1024);
        }
        all.extend(held);
    }
    let total: u64 = drives
        .iter()
        .flat_map(|d| volumes_on(d, "5").into_iter().map(move |v| d.join("ferry/av/5/volumes").join(v)))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total > 1_500_000, "{total}");
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, all, "a volume is on two drives");

    let verify: Vec<&str> =
        ["verify"].into_iter().chain(drives.iter().map(|d| d.as_str())).chain(["--trust", s.public.as_str()]).collect();
    run(&verify).ok();
    let target = s.scratch.path("target");
    s.import(&[&drives[2], &drives[0], &drives[1]], &target).ok();
    assert_eq!(served_tree(&target), tree_state(&s.source));
}

#[test]
fn drives_copied_one_after_another_into_one_folder_import_as_one() {
    let s = Span::new();
    let drives = s.drives("drive", 3);
    s.export(&drives, "5", &[]).ok();
    let incoming = s.scratch.path("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    for drive in &drives {
        let copied = std::process::Command::new("cp")
            .args(["-r", drive.join("ferry").as_str(), incoming.as_str()])
            .status()
            .unwrap();
        assert!(copied.success());
    }
    let target = s.scratch.path("target");
    s.import(&[&incoming], &target).ok();
    assert_eq!(served_tree(&target), tree_state(&s.source));
}

#[test]
fn a_missing_drive_is_named_and_nothing_changes() {
    let s = Span::new();
    let drives = s.drives("drive", 3);
    s.export(&drives, "5", &[]).ok();
    let target = s.scratch.path("target");
    let missing = s.import(&[&drives[0], &drives[2]], &target).expect_code(3);
    assert!(missing.stderr.contains("missing: volume"), "{}", missing.stderr);
    assert!(missing.stderr.contains("give the drive with part 2 too"), "{}", missing.stderr);
    assert!(served_tree(&target).is_empty(), "a partial snapshot was installed");
    let verify = run(&["verify", drives[0].as_str(), "--trust", s.public.as_str()]).expect_code(3);
    assert!(verify.stderr.contains("parts 2, 3"), "{}", verify.stderr);
}

#[test]
fn a_drive_from_another_export_is_named() {
    let s = Span::new();
    let drives = s.drives("drive", 3);
    s.export(&drives, "5", &[]).ok();
    // The same repository exported again (sequence 6) onto other drives.
    write(&s.source.join("bases/counter.txt"), b"6\n");
    let others = s.drives("other", 3);
    s.export(&others, "6", &[]).ok();
    let target = s.scratch.path("target");
    // Part 2 of the newer export among the older one's drives: the newest
    // snapshot is chosen and the two drives of the older one are foreign.
    let mixed = s.import(&[&drives[0], &others[1], &drives[2]], &target).expect_code(3);
    assert!(mixed.stderr.contains("a drive from another export"), "{}", mixed.stderr);
    assert!(mixed.stderr.contains(drives[0].as_str()), "{}", mixed.stderr);
    assert!(served_tree(&target).is_empty());
}

#[test]
fn drives_too_small_together_are_refused_before_writing() {
    let s = Span::new();
    let drives = s.drives("drive", 2);
    let refused = s.export(&drives, "5", &[]).expect_code(1);
    assert!(refused.stderr.contains("more:"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--drive-size"), "{}", refused.stderr);
    for drive in &drives {
        assert!(!drive.join("ferry/av/5").exists(), "{drive} was written to");
    }
    // A tree cannot span drives.
    let tree = s.export(&s.drives("tree", 3), "5", &["--layout", "tree"]).expect_code(2);
    assert!(tree.stderr.contains("only tar volumes can span"), "{}", tree.stderr);
}

#[test]
fn a_snapshot_that_fits_on_the_first_drive_leaves_the_others_untouched() {
    let s = Span::new();
    std::fs::remove_file(s.source.join("bases/large.bin")).unwrap();
    let drives = s.drives("drive", 2);
    s.export(&drives, "5", &[]).ok();
    assert!(drives[0].join("ferry/av/5/manifest.sig").is_file());
    assert!(!drives[0].join("ferry/av/5/part").exists(), "a single-drive snapshot has no part note");
    assert!(!drives[1].join("ferry/av/5").exists(), "the second drive got a folder it does not need");
}
