//! Delta snapshots through the real binary (formats/delta-v1.md): a
//! repository evolving over ten days, exported each day as a delta from the
//! receipt the isolated site carried back, sites left at different days,
//! one medium for several sites, and deltas that must be refused.

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeMap;
use support::exporter::Exporter;
use support::*;

/// The repository of an [`Exporter`], evolving day by day from [`day_zero`].
struct World(Exporter);

impl std::ops::Deref for World {
    type Target = Exporter;
    fn deref(&self) -> &Exporter {
        &self.0
    }
}

impl World {
    fn new() -> World {
        let repository = Exporter::new();
        day_zero(&repository.source);
        World(repository)
    }

    /// Exports the source for `day` to a fresh drive, as a delta from
    /// `since` (receipts or ids) when given; returns the drive and the JSON report.
    fn export_day(&self, day: u32, since: &[&Utf8Path], layout: &str) -> (Utf8PathBuf, serde_json::Value) {
        let drive = self.scratch.path(&format!("drive-{day}-{}", since.len()));
        let extra = ["--expires", "never", "--layout", layout, "--json"];
        let report = self.export(&drive, 100 + u64::from(day), since, &extra).ok();
        (drive, serde_json::from_str(&report.stdout).unwrap())
    }

    fn assert_serves_source(&self, target: &Utf8Path, what: &str) {
        assert_eq!(contents(target), contents(&self.source), "{what}: the target differs from the source");
    }
}

/// Path and SHA-256 of every file and folder served (modes left to the
/// import tests: sources here are written with the default mode).
fn contents(root: &Utf8Path) -> BTreeMap<String, String> {
    served_tree(root)
        .into_iter()
        .map(|(path, state)| (path, state.split(' ').next_back().unwrap().to_owned()))
        .collect()
}

fn day_zero(source: &Utf8Path) {
    for i in 0..24u64 {
        write(&source.join(format!("bases/db-{i:02}.cvd")), &pseudo_random_bytes(i, 40_000 + 7_000 * i as usize));
    }
    write(&source.join("engine/module.bin"), &pseudo_random_bytes(99, 3 << 20));
    write(&source.join("records.log"), &b"record 0\n".repeat(2000));
    write(&source.join("index.xml"), b"<index day=\"0\"/>\n");
}

/// Day `day`'s change: a few KiB changed in place in three databases,
/// records appended, a file added and one removed, the large module patched.
fn evolve(source: &Utf8Path, day: u32) {
    let seed = u64::from(day) * 1000;
    for (n, i) in [(day * 5) % 24, (day * 7 + 3) % 24, (day * 11 + 1) % 24].into_iter().enumerate() {
        let path = source.join(format!("bases/db-{i:02}.cvd"));
        let Ok(mut bytes) = std::fs::read(&path) else { continue };
        let at = (bytes.len() / 3 + n * 977) % bytes.len().saturating_sub(3000).max(1);
        let end = (at + 2500).min(bytes.len());
        bytes[at..end].copy_from_slice(&pseudo_random_bytes(seed + n as u64, end - at));
        write(&path, &bytes);
    }
    let mut log = std::fs::read(source.join("records.log")).unwrap();
    log.extend(format!("record {day}\n").repeat(300).as_bytes());
    write(&source.join("records.log"), &log);
    write(&source.join(format!("bases/new-{day:02}.cvd")), &pseudo_random_bytes(seed + 7, 5000));
    let _ = std::fs::remove_file(source.join(format!("bases/db-{:02}.cvd", 23 - day)));
    let mut module = std::fs::read(source.join("engine/module.bin")).unwrap();
    let at = (day as usize * 200_003) % (module.len() - 5000);
    module[at..at + 4096].copy_from_slice(&pseudo_random_bytes(seed + 9, 4096));
    write(&source.join("engine/module.bin"), &module);
    write(&source.join("index.xml"), format!("<index day=\"{day}\"/>\n").as_bytes());
}

/// Day by day with receipts carried back (tree and tar media in turn);
/// sites left at days 0, 2, 5 and 8; on day 10 one medium for the three
/// sites at 2, 5 and 8, and one delta from day 0 straight to day 10.
#[test]
fn ten_days_of_deltas_keep_every_site_equal_to_the_source() {
    let world = World::new();
    let (drive, full) = world.export_day(0, &[], "tar");
    let site = |name: &str| world.scratch.path(name);
    for name in ["daily", "day0", "day2", "day5", "day8"] {
        world.import(&drive, &site(name), &[]).ok();
    }
    let full_bytes = full["bytes"].as_u64().unwrap();
    for day in 1..=10u32 {
        evolve(&world.source, day);
        let receipt = world.receipt(&site("daily"), &format!("receipt-{day}"));
        let layout = if day % 2 == 0 { "tree" } else { "tar" };
        let (drive, report) = world.export_day(day, &[&receipt], layout);
        assert_eq!(report["bases"].as_array().unwrap().len(), 1, "{report}");
        let carried = report["carried_bytes"].as_u64().unwrap();
        assert!(carried * 20 < full_bytes, "day {day}: {carried} bytes carried of {full_bytes}");
        world.import(&drive, &site("daily"), &[]).ok();
        world.assert_serves_source(&site("daily"), &format!("day {day}"));
        for (name, until) in [("day2", 2), ("day5", 5), ("day8", 8)] {
            if day <= until {
                world.import(&drive, &site(name), &[]).ok();
            }
        }
        run(&["verify", drive.as_str(), "--trust", world.public.as_str()]).ok();
    }
    // One medium serves the sites at days 2, 5 and 8.
    let receipts: Vec<Utf8PathBuf> =
        ["day2", "day5", "day8"].iter().map(|name| world.receipt(&site(name), &format!("r-{name}"))).collect();
    let refs: Vec<&Utf8Path> = receipts.iter().map(Utf8PathBuf::as_path).collect();
    let (shared, report) = world.export_day(11, &refs, "tar");
    assert_eq!(report["bases"].as_array().unwrap().len(), 3);
    let listed = run(&["list", shared.as_str(), "--trust", world.public.as_str()]).ok();
    assert!(listed.stdout.contains("delta from snapshot"), "{}", listed.stdout);
    // The site at day 0 holds none of its bases: refused, nothing changed.
    let before = tree_state_but_journal(&site("day0"));
    let refused = world.import(&shared, &site("day0"), &[]).expect_code(3);
    assert!(
        refused.stderr.contains("it applies to snapshot") && refused.stderr.contains("hint:"),
        "{}",
        refused.stderr
    );
    assert_tree_unchanged(&before, &tree_state_but_journal(&site("day0")), "a delta for other bases");
    for name in ["day2", "day5", "day8"] {
        world.import(&shared, &site(name), &[]).ok();
        world.assert_serves_source(&site(name), name);
    }
    // Day 0 straight to day 10: one delta, no chain.
    let receipt = world.receipt(&site("day0"), "r-day0");
    let (straight, _) = world.export_day(12, &[&receipt], "tree");
    world.import(&straight, &site("day0"), &[]).ok();
    world.assert_serves_source(&site("day0"), "day 0 to day 10");
    // An empty target: refused before anything is created.
    let empty = site("empty");
    let refused = world.import(&straight, &empty, &[]).expect_code(3);
    assert!(refused.stderr.contains("no snapshot installed by ferry"), "{}", refused.stderr);
    assert!(!empty.exists());
}

/// A target changed by hand since the base was installed: the patched
/// file no longer has the base's bytes, so the import is refused.
#[test]
fn a_delta_onto_a_file_changed_by_hand_is_refused() {
    let world = World::new();
    let (drive, _) = world.export_day(0, &[], "tree");
    let target = world.scratch.path("site");
    world.import(&drive, &target, &[]).ok();
    let receipt = world.receipt(&target, "r0");
    evolve(&world.source, 1);
    let (delta, _) = world.export_day(1, &[&receipt], "tree");
    let changed = target.join("engine/module.bin");
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes[10] ^= 1;
    write(&changed, &bytes);
    let before = tree_state_but_journal(&target);
    let refused = world.import(&delta, &target, &[]).expect_code(3);
    assert!(refused.stderr.contains("engine/module.bin"), "{}", refused.stderr);
    assert_tree_unchanged(&before, &tree_state_but_journal(&target), "a drifted target");
}

#[test]
fn unknown_since_is_refused_before_anything_is_written() {
    let world = World::new();
    world.export_day(0, &[], "tar");
    let drive = world.scratch.path("drive-x");
    let index = world.ledger.join("av/index");
    let before = std::fs::read(&index).unwrap();
    for since in ["0123456789abcdef", "not-a-thing"] {
        let refused = run(&[
            "export",
            world.source.as_str(),
            drive.as_str(),
            "--key",
            world.key.as_str(),
            "--repository",
            "av",
            "--ledger",
            world.ledger.as_str(),
            "--since",
            since,
        ])
        .expect_code(2);
        assert!(refused.stderr.contains("hint:"), "{}", refused.stderr);
    }
    assert!(!drive.exists());
    assert_eq!(std::fs::read(&index).unwrap(), before, "the ledger was written");
}

/// A tar delta spanning two drives imports from both.
#[test]
fn a_delta_spans_drives() {
    let world = World::new();
    let (drive, _) = world.export_day(0, &[], "tar");
    let target = world.scratch.path("site");
    world.import(&drive, &target, &[]).ok();
    let receipt = world.receipt(&target, "r0");
    for i in 0..8u64 {
        write(&world.source.join(format!("added/{i}.bin")), &pseudo_random_bytes(500 + i, 300_000));
    }
    let (one, two) = (world.scratch.path("span-1"), world.scratch.path("span-2"));
    let mut args = vec!["export", world.source.as_str(), one.as_str(), two.as_str(), "--key", world.key.as_str()];
    args.extend(["--repository", "av", "--sequence", "200", "--ledger", world.ledger.as_str(), "-q"]);
    args.extend(["--since", receipt.as_str(), "--volume-size", "1MB", "--drive-size", "2MB"]);
    run(&args).ok();
    assert!(two.join("ferry/av/200/volumes").is_dir(), "the delta did not reach the second drive");
    run(&["import", one.as_str(), two.as_str(), target.as_str(), "--trust", world.public.as_str()]).ok();
    world.assert_serves_source(&target, "a spanned delta");
}
