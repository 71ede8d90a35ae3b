//! `verify` judges each snapshot on a drive (issue 13): an old snapshot
//! that expired or never finished does not fail a drive whose newest
//! snapshot imports; `--all` makes any bad one fail; `list` marks expired
//! snapshots.

mod support;

use support::{Scratch, export_with, key_pair, run, small_repository};

/// A drive with sequence 1 (created long ago, expired) and sequence 2.
fn drive_with_an_expired_snapshot(scratch: &Scratch) -> (camino::Utf8PathBuf, camino::Utf8PathBuf) {
    let (key, public) = key_pair(scratch);
    let source = scratch.path("repo");
    small_repository(&source);
    let media = scratch.path("media");
    export_with(&source, &media, &key, "av", 1, &["--created", "2020-01-01T00:00:00Z", "--expires", "1d"]);
    export_with(&source, &media, &key, "av", 2, &[]);
    (media, public)
}

#[test]
fn an_expired_old_snapshot_is_reported_without_failing_the_drive() {
    let scratch = Scratch::new();
    let (media, public) = drive_with_an_expired_snapshot(&scratch);
    let verified = run(&["verify", media.as_str(), "--trust", public.as_str()]).ok();
    assert!(verified.stdout.contains("OK av sequence 2"), "{}", verified.stdout);
    assert!(verified.stdout.contains("EXPIRED ") && verified.stdout.contains("/av/1: "), "{}", verified.stdout);
    let all = run(&["verify", media.as_str(), "--trust", public.as_str(), "--all"]).expect_code(3);
    assert!(all.stderr.contains("expired"), "{}", all.stderr);
    let json = run(&["--json", "verify", media.as_str(), "--trust", public.as_str()]).ok();
    assert!(
        json.stdout.contains("\"status\": \"EXPIRED\"") && json.stdout.contains("\"failure\": null"),
        "{}",
        json.stdout
    );
}

#[test]
fn an_unfinished_newer_export_does_not_fail_the_drive_but_a_damaged_newest_does() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("repo");
    small_repository(&source);
    let media = scratch.path("media");
    export_with(&source, &media, &key, "av", 1, &["--layout", "tree"]);
    let second = export_with(&source, &media, &key, "av", 2, &["--layout", "tree"]);
    std::fs::remove_file(second.join("manifest.sig")).unwrap();
    let verified = run(&["verify", media.as_str(), "--trust", public.as_str()]).ok();
    assert!(
        verified.stdout.contains("INCOMPLETE ") && verified.stdout.contains("OK av sequence 1"),
        "{}",
        verified.stdout
    );
    run(&["verify", media.as_str(), "--trust", public.as_str(), "--all"]).expect_code(3);

    let third = export_with(&source, &media, &key, "av", 3, &["--layout", "tree"]);
    std::fs::write(third.join("payload/bases/av-1.dat"), b"antivirus database ONE\n").unwrap();
    let failed = run(&["verify", media.as_str(), "--trust", public.as_str()]).expect_code(3);
    assert!(
        failed.stdout.contains("DAMAGED ") && failed.stderr.contains("av-1.dat"),
        "{}\n{}",
        failed.stdout,
        failed.stderr
    );
}

#[test]
fn list_marks_an_expired_snapshot() {
    let scratch = Scratch::new();
    let (media, public) = drive_with_an_expired_snapshot(&scratch);
    let listed = run(&["list", media.as_str(), "--trust", public.as_str()]).ok();
    assert!(listed.stdout.contains("av 1 [expired]") && listed.stdout.contains("av 2 [trusted]"), "{}", listed.stdout);
    let json = run(&["--json", "list", media.as_str(), "--trust", public.as_str()]).ok();
    assert!(json.stdout.contains("\"status\": \"expired\""), "{}", json.stdout);
}

/// A snapshot folder copied in part (signature, no manifest) is named as
/// such, with what to do, instead of "missing: manifest".
#[test]
fn a_folder_copied_in_part_says_so_with_a_hint() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("repo");
    small_repository(&source);
    let media = scratch.path("media");
    let snapshot = export_with(&source, &media, &key, "av", 1, &["--layout", "tree"]);
    std::fs::remove_file(snapshot.join("manifest")).unwrap();
    let refused = run(&["verify", media.as_str(), "--trust", public.as_str()]).expect_code(3);
    assert!(refused.stdout.contains("INCOMPLETE "), "{}", refused.stdout);
    assert!(
        refused.stderr.contains("has a signature file but no manifest") && refused.stderr.contains("\nhint: "),
        "{}",
        refused.stderr
    );
    let target = scratch.path("site");
    let import = run(&["import", media.as_str(), target.as_str(), "--trust", public.as_str()]).expect_code(3);
    assert!(import.stderr.contains("copied only in part"), "{}", import.stderr);
    assert!(!target.exists(), "a refused import writes nothing");
}
