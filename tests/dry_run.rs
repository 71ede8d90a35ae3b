//! `--dry-run` (`-n`) on export, import, publish and rollback (issue 13):
//! the same checks as the real run, the same figures as the real run then
//! reports, and nothing written anywhere: not on the drive, not at the
//! target, not in its state folder, not in the ledger.

mod support;

use camino::Utf8Path;
use serde_json::Value;
use support::*;

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// Two exports of a small repository on one drive (sequences 1 and 2, the
/// second with one file changed, one added and one removed).
fn two_snapshots(scratch: &Scratch) -> (camino::Utf8PathBuf, camino::Utf8PathBuf) {
    let (key, public) = key_pair(scratch);
    let source = scratch.path("repo");
    small_repository(&source);
    let media = scratch.path("usb");
    export_with(&source, &media, &key, "av", 1, &[]);
    write(&source.join("bases/av-1.dat"), b"antivirus database one, updated\n");
    write(&source.join("bases/av-9.dat"), b"a new database\n");
    std::fs::remove_file(source.join("bases/empty.dat")).unwrap();
    export_with(&source, &media, &key, "av", 2, &[]);
    (media, public)
}

#[test]
fn export_dry_run_checks_without_the_key_and_writes_nothing() {
    let scratch = Scratch::new();
    let (key, _) = key_pair(&scratch);
    let source = scratch.path("repo");
    small_repository(&source);
    let (media, ledger) = (scratch.path("usb"), scratch.path("ledger"));
    // A key file that does not exist: a dry run never opens it.
    let missing_key = scratch.path("no-such.key");
    let planned = run(&[
        "--json",
        "export",
        source.as_str(),
        media.as_str(),
        "--key",
        missing_key.as_str(),
        "--repository",
        "av",
        "--ledger",
        ledger.as_str(),
        "--dry-run",
    ])
    .ok();
    assert!(!media.exists() && !ledger.exists(), "a dry run created the drive folder or the ledger");
    let plan = json(&planned);
    assert_eq!(plan["dry_run"], true);
    assert_eq!((plan["files"].as_u64(), plan["layout"].as_str()), (Some(6), Some("tar")), "{plan}");

    let exported =
        run(&["--json", "export", source.as_str(), media.as_str(), "--key", key.as_str(), "--repository", "av"]);
    let exported = json(&exported.ok());
    for field in ["files", "folders", "bytes", "repository"] {
        assert_eq!(plan[field], exported[field], "{field}: the dry run said otherwise than the export did");
    }

    // Too little room is found by a dry run as by the real export.
    let small = run(&[
        "export",
        source.as_str(),
        scratch.path("small").as_str(),
        "--key",
        key.as_str(),
        "-n",
        "--drive-size",
        "10K",
    ]);
    let small = small.expect_code(1);
    assert!(small.stderr.contains("more"), "{}", small.stderr);
    assert!(!scratch.path("small").exists());
}

#[test]
fn export_prune_dry_run_names_what_it_would_remove_and_removes_nothing() {
    let scratch = Scratch::new();
    let (media, _) = two_snapshots(&scratch);
    let key = scratch.path("key.key");
    let before = tree_state(&media);
    let source = scratch.path("repo");
    let planned =
        run(&["--json", "export", source.as_str(), media.as_str(), "--key", key.as_str(), "--repository", "av"]
            .iter()
            .copied()
            .chain(["--sequence", "3", "--prune", "1", "--dry-run"])
            .collect::<Vec<_>>())
        .ok();
    let plan = json(&planned);
    let doomed: Vec<&str> = plan["would_prune"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(doomed.len() == 2 && doomed[0].ends_with("/av/1") && doomed[1].ends_with("/av/2"), "{doomed:?}");
    assert_eq!(tree_state(&media), before, "a dry run changed the drive");
    let text = run(&[
        "export",
        source.as_str(),
        media.as_str(),
        "--key",
        key.as_str(),
        "--repository",
        "av",
        "--sequence",
        "3",
        "--prune",
        "1",
        "-n",
    ])
    .ok();
    assert!(text.stdout.contains("would prune ") && text.stdout.contains("nothing was written"), "{}", text.stdout);
}

#[test]
fn import_dry_run_reports_what_the_import_then_does() {
    let scratch = Scratch::new();
    let (media, public) = two_snapshots(&scratch);
    let target = scratch.path("site/updates");
    let import = |extra: &[&str]| {
        run(&[&["--json", "import", media.as_str(), target.as_str(), "--trust", public.as_str()], extra].concat())
    };

    // Into a target that does not exist yet: everything would be added,
    // and the target is not created.
    let planned = json(&import(&["--sequence", "1", "--dry-run", "--mkpath"]).ok());
    assert!(!scratch.path("site").exists(), "a dry run created the target or its parent");
    let done = json(&import(&["--sequence", "1", "--mkpath"]).ok());
    assert_eq!((planned["added"].as_u64(), planned["dry_run"].as_bool()), (Some(6), Some(true)));
    assert_eq!(done["dry_run"], false);

    // Over the installed snapshot: the same counts as the import then has,
    // and neither the served tree nor the state folder changes.
    let before = tree_state(&target);
    let planned = json(&import(&["-n"]).ok());
    assert_eq!(tree_state(&target), before, "a dry run changed the target or its state");
    let done = json(&import(&[]).ok());
    for field in ["added", "changed", "removed", "bytes_transferred", "previous_sequence"] {
        assert_eq!(planned[field], done[field], "{field}: the dry run said otherwise than the import did");
    }
    assert_eq!(
        (done["added"].as_u64(), done["changed"].as_u64(), done["removed"].as_u64()),
        (Some(1), Some(1), Some(1))
    );

    // Nothing left to do, said as such.
    let text = run(&["import", media.as_str(), target.as_str(), "--trust", public.as_str(), "-n"]).ok();
    assert!(text.stdout.contains("dry run: av sequence 2 is already installed"), "{}", text.stdout);
}

#[test]
fn import_dry_run_refuses_what_the_import_refuses() {
    let scratch = Scratch::new();
    let (media, public) = two_snapshots(&scratch);
    let target = scratch.path("site");
    run(&["import", media.as_str(), target.as_str(), "--trust", public.as_str(), "-q"]).ok();
    // An older sequence: refused (exit 3) by both.
    let older = ["import", media.as_str(), target.as_str(), "--trust", public.as_str(), "--sequence", "1"];
    let real = run(&older).expect_code(3);
    let dry = run(&[&older[..], &["-n"]].concat()).expect_code(3);
    assert_eq!(real.stderr, dry.stderr);
    // A damaged file of the installed snapshot: named by both.
    let before = tree_state(&target);
    std::fs::write(target.join("bases/av-1.dat"), b"tampered").unwrap();
    let damaged = run(&["import", media.as_str(), target.as_str(), "--trust", public.as_str(), "-n"]);
    let damaged = damaged.expect_code(1);
    assert!(damaged.stderr.contains("bases/av-1.dat"), "{}", damaged.stderr);
    let repaired = run(&["import", media.as_str(), target.as_str(), "--trust", public.as_str(), "-n", "--repair"]).ok();
    assert!(repaired.stdout.contains("dry run: would repair av sequence 2"), "{}", repaired.stdout);
    assert_ne!(tree_state(&target), before, "the test's damage is still there: the dry run repaired nothing");
}

#[test]
fn publish_and_rollback_dry_runs_change_nothing() {
    let scratch = Scratch::new();
    let (media, public) = two_snapshots(&scratch);
    let site = scratch.path("site");
    run(&["import", media.as_str(), site.as_str(), "--trust", public.as_str(), "--sequence", "1", "-q"]).ok();
    run(&["import", media.as_str(), site.as_str(), "--trust", public.as_str(), "-q"]).ok();

    let mirrors = [scratch.path("mirror-1"), scratch.path("mirror-2")];
    let publish = run(&[
        "--json",
        "publish",
        site.as_str(),
        mirrors[0].as_str(),
        mirrors[1].as_str(),
        "--trust",
        public.as_str(),
        "-n",
    ]);
    let report = json(&publish.ok());
    assert_eq!(report["dry_run"], true);
    for outcome in report["targets"].as_array().unwrap() {
        assert_eq!(outcome["status"], "would update", "{outcome}");
    }
    assert!(mirrors.iter().all(|m| !m.exists()), "a dry run created a distribution point");

    let before = tree_state(&site);
    let planned = json(&run(&["--json", "rollback", site.as_str(), "--dry-run"]).ok());
    assert_eq!(tree_state(&site), before, "a dry run rolled back");
    let done = json(&run(&["--json", "rollback", site.as_str()]).ok());
    for field in ["from_sequence", "to_sequence", "snapshot_id"] {
        assert_eq!(planned[field], done[field], "{field}");
    }
    // Nothing left to roll back to: the same refusal.
    let none = run(&["rollback", site.as_str(), "-n"]);
    assert_ne!(none.code, 0, "{}", none.stdout);
    assert!(Utf8Path::new(site.as_str()).exists());
}
