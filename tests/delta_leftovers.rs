//! Issue 10 leftovers, one test each, through the real binary: a delta
//! from a base exported before a key rotation (formats/delta-v1.md DE1a),
//! a full snapshot and a delta on two separate drives (DI6), the spill of
//! rebuilt files beyond the memory bound (DI4), and the old whole-tree
//! previous tree after a delta's ordered switch (DI5).

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use support::exporter::Exporter;
use support::*;

/// A source at day 0 or later: twelve databases of 120 KB, day `day`
/// changing 2 KB in every third one (patched, not carried whole), plus one
/// file only that day has.
fn version(root: &Utf8Path, day: u64) {
    for i in 0..12u64 {
        let mut bytes = pseudo_random_bytes(i, 120_000);
        if day > 0 && i % 3 == 0 {
            bytes[50_000..52_000].copy_from_slice(&pseudo_random_bytes(100 * day + i, 2000));
        }
        write(&root.join(format!("bases/db-{i:02}.cvd")), &bytes);
    }
    if day > 0 {
        let _ = std::fs::remove_file(root.join(format!("bases/only-{}.cvd", day - 1)));
    }
    write(&root.join(format!("bases/only-{day}.cvd")), &pseudo_random_bytes(50 + day, 3000));
    write(&root.join("index/master.xml"), format!("<day {day}/>").as_bytes());
}

/// The connected side with the source at day 0.
fn world() -> Exporter {
    let world = Exporter::new();
    version(&world.source, 0);
    world
}

/// `ferry export` of the world's source to `drive` with `sequence`, signed
/// by `key` (another than the world's), with `extra` arguments.
fn export_signed_by(world: &Exporter, key: &Utf8Path, drive: &Utf8Path, sequence: u64, extra: &[&str]) -> Run {
    let sequence = sequence.to_string();
    let mut args = vec!["export", world.source.as_str(), drive.as_str(), "--key", key.as_str()];
    args.extend(["--repository", "av", "--sequence", &sequence, "--ledger", world.ledger.as_str(), "-q"]);
    args.extend_from_slice(extra);
    run(&args)
}

/// Day 0 exported to drive `d0` (sequence 1) and installed at `site`, then
/// day 1 exported to drive `d1` as a delta from the site's receipt
/// (sequence 2): the two drives and the site.
fn day0_installed_and_delta(world: &Exporter) -> (Utf8PathBuf, Utf8PathBuf, Utf8PathBuf) {
    let full = world.export_to("d0", 1, &[]);
    let site = world.scratch.path("site");
    import_all(world, &[&full], &site, &["-q"]).ok();
    let receipt = world.receipt(&site, "receipt");
    version(&world.source, 1);
    let delta = world.export_to("d1", 2, &[&receipt]);
    (full, site, delta)
}

/// `ferry import MEDIA... TARGET` trusting the world's key, then `extra`.
fn import_all(world: &Exporter, media: &[&Utf8Path], target: &Utf8Path, extra: &[&str]) -> Run {
    let mut args = vec!["import"];
    args.extend(media.iter().map(|m| m.as_str()));
    args.extend([target.as_str(), "--trust", world.public.as_str()]);
    args.extend_from_slice(extra);
    run(&args)
}

fn key_id(public: &Utf8Path) -> String {
    ferry::signing::load_public(public).unwrap().id.to_string()
}

/// DE1a: day 0 is exported with key A and installed at a site that trusts
/// A through its trust store; the site writes a receipt signed with its
/// site key. The connected side rotates to key B (a rotation statement on
/// the next drive, signed by A, adding B and removing A) and exports a
/// delta signed by B from that receipt: the base, whose ledger copy only A
/// signed, is authenticated by the signed receipt naming its snapshot id.
/// The site applies the rotation and the delta: the target equals the
/// source. An unsigned receipt or a bare snapshot id vouches for nothing:
/// refused (exit 2), nothing written; with the old public key given as
/// `--base-trust` the unsigned receipt serves.
#[test]
fn a_delta_from_a_base_signed_before_a_key_rotation() {
    let world = world();
    let new_prefix = world.scratch.path("new");
    keygen(&new_prefix);
    let (new_key, new_public) = (new_prefix.with_extension("key"), new_prefix.with_extension("pub"));
    let site_prefix = world.scratch.path("site-key");
    keygen(&site_prefix);
    let (site_key, site_public) = (site_prefix.with_extension("key"), site_prefix.with_extension("pub"));

    let store = world.scratch.path("trust-store");
    run(&["trust", "add", world.public.as_str(), "--repository", "av", "--trust-store", store.as_str()]).ok();
    let full = world.export_to("d0", 1, &[]);
    let site = world.scratch.path("site");
    run(&["import", full.as_str(), site.as_str(), "--trust-store", store.as_str(), "-q"]).ok();
    let signed = world.scratch.path("signed-receipt");
    run(&["receipt", site.as_str(), signed.as_str(), "--key", site_key.as_str(), "-q"]).ok();
    let unsigned = world.scratch.path("unsigned-receipt");
    run(&["receipt", site.as_str(), unsigned.as_str(), "-q"]).ok();

    let delta = world.scratch.path("d1");
    let old_id = key_id(&world.public);
    let rotate = ["rotate", delta.as_str(), "--repository", "av", "--number", "1", "--threshold", "1"];
    run(&[&rotate[..], &["--add", new_public.as_str(), "--remove", &old_id, "--key", world.key.as_str()]].concat())
        .ok();
    version(&world.source, 1);

    // Nothing vouches for the base: refused before anything is written.
    let status = json(&run(&["status", site.as_str(), "--json"]).ok());
    let snapshot = status["snapshot_id"].as_str().unwrap_or_else(|| panic!("{status}")).to_owned();
    let refused_drive = world.scratch.path("refused");
    for since in [unsigned.as_str(), snapshot.as_str()] {
        let refused = export_signed_by(&world, &new_key, &refused_drive, 2, &["--since", since]).expect_code(2);
        assert!(refused.stderr.contains(&old_id) && refused.stderr.contains("hint:"), "{}", refused.stderr);
        assert!(!refused_drive.join("ferry/av/2").exists(), "a refused export wrote to the drive");
    }

    // The old public key, given as --base-trust, authenticates the copy too.
    let by_key = world.scratch.path("by-old-key");
    export_signed_by(
        &world,
        &new_key,
        &by_key,
        2,
        &["--since", unsigned.as_str(), "--base-trust", world.public.as_str()],
    )
    .ok();
    let listed = run(&["list", by_key.as_str(), "--trust", new_public.as_str()]).ok();
    assert!(listed.stdout.contains("delta from snapshot"), "{}", listed.stdout);

    export_signed_by(&world, &new_key, &delta, 2, &["--since", signed.as_str(), "--site-trust", site_public.as_str()])
        .ok();
    let listed = run(&["list", delta.as_str(), "--trust", new_public.as_str()]).ok();
    assert!(listed.stdout.contains("delta from snapshot"), "{}", listed.stdout);
    let imported = run(&["import", delta.as_str(), site.as_str(), "--trust-store", store.as_str(), "--json"]).ok();
    let report = json(&imported);
    assert_eq!(report["rotations"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(report["switch"], "ordered", "{report}");
    assert_eq!(served_tree(&site), served_tree(&world.source));
    // The old key no longer counts at the site.
    let stale = world.export_to("stale", 3, &[]);
    run(&["import", stale.as_str(), site.as_str(), "--trust-store", store.as_str()]).expect_code(3);
}

/// DI6 over several drives: a full snapshot and a delta given as two
/// separate drives (each a folder of its own, not parts of one snapshot)
/// are chosen among as on one drive, in either order; verify checks both.
/// A drive holding only another repository is still refused.
#[test]
fn a_full_snapshot_and_a_delta_on_two_drives() {
    let world = world();
    let (full, site, delta) = day0_installed_and_delta(&world);

    run(&["verify", full.as_str(), delta.as_str(), "--trust", world.public.as_str()]).ok();
    let empty = world.scratch.path("empty");
    let picked = import_all(&world, &[&delta, &full], &empty, &[]).ok();
    assert!(picked.stderr.contains("chose sequence 1 of the 2"), "{}", picked.stderr);
    let picked = import_all(&world, &[&full, &delta], &empty, &[]).ok();
    assert!(picked.stderr.contains("chose sequence 2 of the 2"), "{}", picked.stderr);
    assert_eq!(served_tree(&empty), served_tree(&world.source));
    import_all(&world, &[&full, &delta], &site, &["-q"]).ok();
    assert_eq!(served_tree(&site), served_tree(&world.source));

    let other = world.scratch.path("other-repository");
    run(&["export", world.source.as_str(), other.as_str(), "--key", world.key.as_str(), "--repository", "docs", "-q"])
        .ok();
    let before = tree_state_but_journal(&site);
    let refused = import_all(&world, &[&full, &delta, &other], &site, &["--repository", "av"]).expect_code(3);
    assert!(refused.stderr.contains(other.as_str()) && refused.stderr.contains("no part of"), "{}", refused.stderr);
    assert_tree_unchanged(&before, &tree_state_but_journal(&site), "a refused import");
}

/// The entries of `dir`, recursively, relative to it.
fn entries_below(dir: &Utf8Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().path().strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect()
}

/// DI4: with `--rebuild-memory` (here `FERRY_REBUILD_MEMORY`) below the
/// patched files' total, the files beyond it wait for the switch in a
/// temporary folder of TMPDIR: killed just after the rebuild, that folder
/// holds them; the import run again installs the source exactly, leaves
/// nothing in TMPDIR, and rollback returns to day 0 exactly.
#[test]
fn rebuilt_files_beyond_the_memory_bound_spill_to_a_temporary_folder() {
    let world = world();
    let day0 = tree_state(&world.source);
    let (_, site, delta) = day0_installed_and_delta(&world);

    let tmp = world.scratch.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let import = |crash_at: Option<&str>, memory: &str| {
        let mut command = ferry();
        command.args(["import", delta.as_str(), site.as_str(), "--trust", world.public.as_str(), "-q"]);
        command.env("TMPDIR", &tmp).env("FERRY_REBUILD_MEMORY", memory);
        if let Some(point) = crash_at {
            command.env("FERRY_CRASH_POINT", point);
        }
        command.output().unwrap()
    };
    // Four files of 120 KB are patched; 200 KB in memory holds one.
    let killed = import(Some("delta-rebuilt"), "200K");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&killed.status), Some(9), "{killed:?}");
    let spilled = entries_below(&tmp);
    assert_eq!(spilled.iter().filter(|e| e.contains('/')).count(), 3, "{spilled:?}");
    assert_eq!(served_tree(&site), day0, "the kill changed the target");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    // The default bound holds them all in memory: nothing spills.
    let killed = import(Some("delta-rebuilt"), "256M");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&killed.status), Some(9), "{killed:?}");
    assert!(entries_below(&tmp).iter().all(|e| !e.contains('/')), "{:?}", entries_below(&tmp));
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::create_dir(&tmp).unwrap();

    Run::from(import(None, "200K")).ok();
    assert_eq!(served_tree(&site), served_tree(&world.source));
    assert_eq!(entries_below(&tmp), Vec::<String>::new(), "the temporary folder was left behind");
    run(&["rollback", site.as_str(), "-q"]).ok();
    assert_eq!(served_tree(&site), day0, "rollback after a spilled delta");
    // A bound that is not a size is a usage error.
    let bad = Run::from(import(None, "lots"));
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

/// DI5: day 1 installed by a whole-tree switch keeps day 0 as the tree
/// `.site.ferry-previous`; a delta to day 2 (an ordered switch) removes it,
/// since rollback now returns to day 1 through what the ordered switch
/// kept. Rollback is exact, one step only, and the delta applies again.
#[test]
fn a_delta_after_a_whole_tree_import_removes_the_old_previous_tree() {
    let world = world();
    let root = world.scratch.path("site");
    std::fs::create_dir(&root).unwrap();
    let target = root.join("target");
    let d0 = world.export_to("d0", 1, &[]);
    import_all(&world, &[&d0], &target, &["-q"]).ok();
    version(&world.source, 1);
    let day1 = tree_state(&world.source);
    let d1 = world.export_to("d1", 2, &[]);
    let imported = import_all(&world, &[&d1], &target, &["--json", "--switch", "tree"]).ok();
    assert_eq!(json(&imported)["switch"], "tree", "{}", imported.stdout);
    let previous = root.join(".target.ferry-previous");
    assert!(previous.is_dir(), "a whole-tree switch keeps the old tree");

    let receipt = world.receipt(&target, "receipt");
    version(&world.source, 2);
    let d2 = world.export_to("d2", 3, &[&receipt]);
    let imported = import_all(&world, &[&d2], &target, &["--json"]).ok();
    assert_eq!(json(&imported)["switch"], "ordered", "{}", imported.stdout);
    assert_eq!(served_tree(&target), served_tree(&world.source));
    assert!(!previous.exists(), "the old tree of day 0 is still beside the target");
    assert_eq!(target_siblings(&root), Vec::<String>::new());

    run(&["rollback", target.as_str(), "-q"]).ok();
    assert_eq!(served_tree(&target), day1, "rollback after the delta");
    run(&["rollback", target.as_str()]).expect_code(NO_PREVIOUS);
    import_all(&world, &[&d2], &target, &["-q"]).ok();
    assert_eq!(served_tree(&target), served_tree(&world.source));
    assert!(!previous.exists());
}

/// `ferry rollback` with nothing to return to (docs/reference/exit-codes.md).
const NO_PREVIOUS: i32 = 1;

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}
