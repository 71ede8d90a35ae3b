//! Delta import through the real binary (formats/delta-v1.md §6): a delta
//! touches only what it carries (DI5), `--deep` checks the files it keeps
//! (DI3), a drive with several snapshots gives the one that applies (DI6),
//! and `publish` of a delta to several folder targets.

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use std::os::unix::fs::MetadataExt;
use support::exporter::Exporter;
use support::*;

/// An [`Exporter`] whose day-0 source is installed at `site`.
struct World {
    repository: Exporter,
    site: Utf8PathBuf,
    /// The full day-0 snapshot's drive.
    full: Utf8PathBuf,
}

impl std::ops::Deref for World {
    type Target = Exporter;
    fn deref(&self) -> &Exporter {
        &self.repository
    }
}

impl World {
    fn new() -> World {
        let repository = Exporter::new();
        for i in 0..20u64 {
            write(&repository.source.join(format!("bases/db-{i:02}.cvd")), &pseudo_random_bytes(i, 30_000));
        }
        write(&repository.source.join("index/master.xml"), b"<day 0/>");
        let (site, full) = (repository.scratch.path("site"), repository.scratch.path("d0"));
        repository.export(&full, 1, &[], &["-q"]).ok();
        repository.import(&full, &site, &[]).ok();
        World { repository, site, full }
    }

    /// Day 1: two databases edited in place, one added, one removed, the
    /// index rewritten; exported as a delta from the site's receipt to `drive`.
    fn day_one(&self, drive: &Utf8Path) {
        let receipt = self.receipt(&self.site, "receipt-site");
        for i in [3u64, 11] {
            let path = self.source.join(format!("bases/db-{i:02}.cvd"));
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[10_000..12_000].copy_from_slice(&pseudo_random_bytes(100 + i, 2000));
            write(&path, &bytes);
        }
        write(&self.source.join("bases/new.cvd"), &pseudo_random_bytes(77, 9000));
        std::fs::remove_file(self.source.join("bases/db-19.cvd")).unwrap();
        write(&self.source.join("index/master.xml"), b"<day 1/>");
        self.export(drive, 2, &[&receipt], &["-q"]).ok();
    }
}

fn inode(path: &Utf8Path) -> u64 {
    std::fs::symlink_metadata(path).unwrap().ino()
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// DI5: with `--switch auto` a delta renames only the files it changes
/// into place; the files it keeps are the same inodes, untouched. Rollback
/// then restores day 0 exactly, and `--switch tree` still exchanges trees.
#[test]
fn a_delta_touches_only_what_it_carries_and_rolls_back() {
    let world = World::new();
    let day0 = served_tree(&world.source);
    let kept = world.site.join("bases/db-05.cvd");
    let kept_inode = inode(&kept);
    let delta = world.scratch.path("d1");
    world.day_one(&delta);
    let report = json(&world.import(&delta, &world.site, &["--json"]).ok());
    assert_eq!(report["switch"], "ordered", "{report}");
    assert_eq!(
        (report["added"].as_u64(), report["changed"].as_u64(), report["removed"].as_u64()),
        (Some(1), Some(3), Some(1))
    );
    assert_eq!(inode(&kept), kept_inode, "an unchanged file was replaced");
    assert_eq!(served_tree(&world.site), served_tree(&world.source));

    run(&["rollback", world.site.as_str(), "-q"]).ok();
    assert_eq!(served_tree(&world.site), day0, "rollback after a delta");
    assert_eq!(inode(&kept), kept_inode, "rollback replaced an unchanged file");

    // The whole-tree switch on request: every file is in a new tree.
    let report = json(&world.import(&delta, &world.site, &["--json", "--switch", "tree"]).ok());
    assert_eq!(report["switch"], "tree", "{report}");
    assert_eq!(served_tree(&world.site), served_tree(&world.source));
    run(&["rollback", world.site.as_str(), "-q"]).ok();
    world.import(&delta, &world.site, &[]).ok();
    assert_eq!(served_tree(&world.site), served_tree(&world.source));
}

/// DI3: a file the delta does not carry, edited by hand at the same size,
/// passes the size check; `--deep` hashes it and refuses before anything
/// changes, naming the file. A size change is refused without `--deep`.
#[test]
fn deep_refuses_a_kept_file_changed_by_hand() {
    let world = World::new();
    let delta = world.scratch.path("d1");
    world.day_one(&delta);
    let edited = world.site.join("bases/db-07.cvd");
    let mut bytes = std::fs::read(&edited).unwrap();
    bytes[500] ^= 0x20;
    write(&edited, &bytes);
    let before = tree_state_but_journal(&world.site);
    for extra in [&["--deep"][..], &["--deep", "--dry-run"]] {
        let refused = world.import(&delta, &world.site, extra).expect_code(3);
        assert!(refused.stderr.contains("bases/db-07.cvd"), "{}", refused.stderr);
        assert!(refused.stderr.contains("hint:") && refused.stderr.contains("--repair"), "{}", refused.stderr);
        assert_tree_unchanged(&before, &tree_state_but_journal(&world.site), "--deep refusal");
    }
    bytes.push(b'!');
    write(&edited, &bytes);
    let before = tree_state_but_journal(&world.site);
    let refused = world.import(&delta, &world.site, &[]).expect_code(3);
    assert!(refused.stderr.contains("bases/db-07.cvd"), "{}", refused.stderr);
    assert_tree_unchanged(&before, &tree_state_but_journal(&world.site), "size refusal");
    // Restored by hand: the delta applies.
    write(&edited, &pseudo_random_bytes(7, 30_000));
    world.import(&delta, &world.site, &["--deep"]).ok();
    assert_eq!(served_tree(&world.site), served_tree(&world.source));
}

/// DI6: one drive holds the full day-0 snapshot and deltas to days 1 and
/// 2 (each from day 0). A site at day 0 gets the newest delta; an empty
/// site gets the full snapshot; each import says which it picked.
#[test]
fn a_drive_with_full_and_deltas_gives_each_site_the_newest_that_applies() {
    let world = World::new();
    let drive = world.full.clone();
    let receipt = world.receipt(&world.site, "receipt-site");
    world.day_one(&drive);
    write(&world.source.join("index/master.xml"), b"<day 2/>");
    world.export(&drive, 3, &[&receipt], &["-q"]).ok();
    let listed = run(&["list", drive.as_str(), "--trust", world.public.as_str()]).ok();
    assert_eq!(listed.stdout.matches("delta from snapshot").count(), 2, "{}", listed.stdout);

    let empty = world.scratch.path("empty");
    let picked = world.import(&drive, &empty, &[]).ok();
    assert!(picked.stderr.contains("sequence 1"), "{}", picked.stderr);
    let full = json(&run(&["status", empty.as_str(), "--json"]));
    assert_eq!(full["sequence"].as_u64(), Some(1), "{full}");

    let picked = world.import(&drive, &world.site, &[]).ok();
    assert!(picked.stderr.contains("sequence 3"), "{}", picked.stderr);
    assert_eq!(served_tree(&world.site), served_tree(&world.source));
    // The empty site now holds day 0: the newest delta applies there too.
    world.import(&drive, &empty, &[]).ok();
    assert_eq!(served_tree(&empty), served_tree(&world.source));
}

/// `publish` of a delta drive: two folder targets holding its base are
/// updated, one holding nothing refuses it (exit 3, reported), the others
/// are done anyway.
#[test]
fn publish_of_a_delta_updates_the_targets_holding_its_base() {
    let world = World::new();
    let second = world.scratch.path("second");
    world.import(&world.full, &second, &[]).ok();
    let delta = world.scratch.path("d1");
    world.day_one(&delta);
    let empty = world.scratch.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let published = run(&[
        "publish",
        delta.as_str(),
        world.site.as_str(),
        second.as_str(),
        empty.as_str(),
        "--trust",
        world.public.as_str(),
        "--json",
    ])
    .expect_code(3);
    let report = json(&published);
    let outcomes = report["targets"].as_array().unwrap_or_else(|| panic!("{report}"));
    let status: Vec<&str> = outcomes.iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["updated", "updated", "refused"], "{report}");
    assert!(outcomes[2]["error"].as_str().unwrap().contains("no snapshot installed by ferry"), "{report}");
    for target in [&world.site, &second] {
        assert_eq!(served_tree(target), served_tree(&world.source), "{target}");
    }
    assert!(std::fs::read_dir(&empty).unwrap().next().is_none(), "the refusing target was written");
}

/// A text file of `lines` XML lines, the kind of file that compresses.
fn xml(lines: usize, day: u32) -> Vec<u8> {
    (0..lines)
        .flat_map(|i| format!("  <entry id=\"{i}\" day=\"{day}\" size=\"{}\"/>\n", i * 7919 % 100_003).into_bytes())
        .collect()
}

/// D2a, DW3: a text file changed in place under the ledger's contents
/// floor (no old version to patch from) and an added one travel
/// compressed, as patches from no bytes: the medium holds neither whole,
/// and the site gets them byte for byte.
#[test]
fn files_no_patch_serves_travel_compressed() {
    let world = World::new();
    write(&world.source.join("index/catalog.xml"), &xml(400, 0));
    let day0 = world.scratch.path("d0b");
    world.export(&day0, 2, &[], &["-q"]).ok();
    world.import(&day0, &world.site, &[]).ok();
    let receipt = world.receipt(&world.site, "receipt-site");
    let (catalog, added) = (xml(420, 1), xml(300, 1));
    write(&world.source.join("index/catalog.xml"), &catalog);
    write(&world.source.join("index/added.xml"), &added);
    let delta = world.scratch.path("d1");
    world.export(&delta, 3, &[&receipt], &["-q"]).ok();

    let zst =
        walkdir::WalkDir::new(&delta).into_iter().map(|e| e.unwrap().into_path()).find(|p| p.ends_with("manifest.zst"));
    let manifest = String::from_utf8(zstd::decode_all(&std::fs::read(zst.unwrap()).unwrap()[..]).unwrap()).unwrap();
    let from_nothing = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    for path in ["index/added.xml", "index/catalog.xml"] {
        let line = manifest
            .lines()
            .find(|l| l.starts_with("patch ") && l.ends_with(path))
            .unwrap_or_else(|| panic!("{manifest}"));
        assert!(line.contains(from_nothing), "{line}");
        let size: usize = line.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(size * 3 < catalog.len().min(added.len()), "{line}");
    }
    let volumes: usize = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("volume "))
        .map(|l| l.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert!(volumes * 2 < catalog.len() + added.len(), "{volumes} bytes of volumes\n{manifest}");

    run(&["verify", delta.as_str(), "--trust", world.public.as_str()]).ok();
    world.import(&delta, &world.site, &[]).ok();
    assert_eq!(served_tree(&world.site), served_tree(&world.source));
    assert_eq!(std::fs::read(world.site.join("index/added.xml")).unwrap(), added);
}
