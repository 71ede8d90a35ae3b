//! A target damaged by hand (issue 13): a re-import of the installed
//! snapshot names what differs instead of saying "nothing changed", and
//! `--repair` restores exactly the signed bytes, under both switches.

mod support;

use support::{TwoSnapshots, assert_tree_unchanged, run, served_tree, tree_state, two_snapshots, versioned_repository};

const SWITCHES: [&str; 2] = ["tree", "ordered"];

fn import(
    snapshots: &TwoSnapshots,
    media: &camino::Utf8Path,
    target: &camino::Utf8Path,
    extra: &[&str],
) -> support::Run {
    let mut args = vec!["import", media.as_str(), target.as_str(), "--trust", snapshots.public.as_str()];
    args.extend_from_slice(extra);
    run(&args)
}

/// Damages an installed target: one file removed, one replaced by a
/// shorter one. (Replaced, not truncated in place: after a whole-tree
/// switch an unchanged file shares its inode with the kept previous tree,
/// so an edit in place reaches that tree too; docs/guide/air-gap.md.)
fn damage(target: &camino::Utf8Path) {
    std::fs::remove_file(target.join("data/d1/f01.dat")).unwrap();
    std::fs::remove_file(target.join("bases/av-2.dat")).unwrap();
    std::fs::write(target.join("bases/av-2.dat"), b"short").unwrap();
}

#[test]
fn a_reimport_names_missing_and_truncated_files_and_changes_nothing() {
    let snapshots = two_snapshots(|s| versioned_repository(s, 1), |s| versioned_repository(s, 2));
    for switch in SWITCHES {
        let target = snapshots.scratch.path(&format!("site-{switch}"));
        import(&snapshots, &snapshots.media1, &target, &["--switch", switch, "-q"]).ok();
        damage(&target);
        let before = tree_state(&target);
        let refused = import(&snapshots, &snapshots.media1, &target, &["--switch", switch]).expect_code(1);
        for needle in [
            "differs from its installed manifest",
            "data/d1/f01.dat: missing",
            "bases/av-2.dat: 5 bytes",
            "hint:",
            "--repair",
        ] {
            assert!(refused.stderr.contains(needle), "{switch}: stderr lacks {needle:?}:\n{}", refused.stderr);
        }
        assert_tree_unchanged(&before, &tree_state(&target), switch);
    }
}

#[test]
fn repair_restores_the_installed_snapshot_and_keeps_rollback() {
    let snapshots = two_snapshots(|s| versioned_repository(s, 1), |s| versioned_repository(s, 2));
    for switch in SWITCHES {
        let target = snapshots.scratch.path(&format!("site-{switch}"));
        import(&snapshots, &snapshots.media1, &target, &["--switch", switch, "-q"]).ok();
        import(&snapshots, &snapshots.media2, &target, &["--switch", switch, "-q"]).ok();
        damage(&target);
        // Same size, other bytes: only hashing finds it.
        std::fs::write(target.join("index/master.xml"), b"<index version=\"X\"/>\n").unwrap();
        let repaired = import(&snapshots, &snapshots.media2, &target, &["--switch", switch, "--repair"]).ok();
        assert!(repaired.stdout.contains("repaired 3 files"), "{switch}: {}", repaired.stdout);
        assert_eq!(served_tree(&target), snapshots.new, "{switch}: the target serves the signed snapshot again");
        let journal = std::fs::read_to_string(target.join(".ferry/audit")).unwrap();
        let last = journal.lines().last().unwrap();
        assert!(last.contains(" repair ") && last.ends_with(" 3%20files%20restored"), "{switch}: {journal}");
        import(&snapshots, &snapshots.media2, &target, &["--switch", switch]).ok();
        run(&["rollback", target.as_str(), "-q"]).ok();
        assert_eq!(served_tree(&target), snapshots.old, "{switch}: rollback after a repair");
    }
}

#[test]
fn repair_during_an_update_rewrites_kept_files_that_differ() {
    let snapshots = two_snapshots(|s| versioned_repository(s, 1), |s| versioned_repository(s, 2));
    for switch in SWITCHES {
        let target = snapshots.scratch.path(&format!("site-{switch}"));
        import(&snapshots, &snapshots.media1, &target, &["--switch", switch, "-q"]).ok();
        // A file both snapshots share, edited in place with the same size.
        let shared = target.join("bases/av-1.dat");
        let size = std::fs::metadata(&shared).unwrap().len() as usize;
        std::fs::write(&shared, vec![b'x'; size]).unwrap();
        import(&snapshots, &snapshots.media2, &target, &["--switch", switch, "--repair", "-q"]).ok();
        assert_eq!(served_tree(&target), snapshots.new, "{switch}");
    }
}
