//! Never write to the wrong place (issue 13): a drive that is not mounted,
//! a mistyped path, a file where a folder is meant. Each case checks the
//! message, the exit code, and that nothing was written anywhere in the
//! scratch folder that stands for the host.

mod support;

use camino::Utf8Path;
use support::{Run, Scratch, assert_tree_unchanged, export, ferry, key_pair, small_repository, tree_state};

/// Runs `ferry ARGS...` with the `--not-a-drive` default of the test
/// helpers removed, as an operator's shell would.
fn run_as_operator(args: &[&str]) -> Run {
    Run::from(ferry().env_remove("FERRY_NOT_A_DRIVE").args(args).output().expect("run ferry"))
}

fn refused(run: Run, code: i32, needles: &[&str]) {
    let run = run.expect_code(code);
    for needle in needles {
        assert!(run.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", run.stderr);
    }
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", run.stderr);
}

#[test]
fn export_to_a_folder_on_the_system_disk_is_refused_without_not_a_drive() {
    let scratch = Scratch::new();
    let (key, _) = key_pair(&scratch);
    small_repository(&scratch.path("repo"));
    let media = scratch.path("usbstick");
    std::fs::create_dir(&media).unwrap();
    let before = tree_state(&scratch.root);
    refused(
        run_as_operator(&["export", scratch.path("repo").as_str(), media.as_str(), "--key", key.as_str()]),
        2,
        &["same filesystem as", "not on a removable drive", "hint:", "--not-a-drive"],
    );
    assert_tree_unchanged(&before, &tree_state(&scratch.root), "scratch");
    run_as_operator(&["export", scratch.path("repo").as_str(), media.as_str(), "--key", key.as_str(), "--not-a-drive"])
        .ok();
}

#[test]
fn export_creates_only_the_last_missing_folder_unless_mkpath() {
    let scratch = Scratch::new();
    let (key, _) = key_pair(&scratch);
    small_repository(&scratch.path("repo"));
    let before = tree_state(&scratch.root);
    let deep = scratch.path("media/usb/updates");
    refused(
        support::run(&["export", scratch.path("repo").as_str(), deep.as_str(), "--key", key.as_str()]),
        2,
        &["does not exist, and neither does its parent", "--mkpath"],
    );
    assert_tree_unchanged(&before, &tree_state(&scratch.root), "scratch");
    support::run(&["export", scratch.path("repo").as_str(), deep.as_str(), "--key", key.as_str(), "--mkpath", "-q"])
        .ok();
    support::run(&["export", scratch.path("repo").as_str(), scratch.path("new").as_str(), "--key", key.as_str(), "-q"])
        .ok();
}

#[test]
fn export_with_a_missing_source_says_so_before_asking_for_a_passphrase() {
    let scratch = Scratch::new();
    support::keygen(&scratch.path("unused"));
    let protected = scratch.path("protected");
    support::write(&scratch.path("pass"), b"correct horse\n");
    support::run(&["keygen", protected.as_str(), "--passphrase-file", scratch.path("pass").as_str(), "-q"]).ok();
    let before = tree_state(&scratch.root);
    // No terminal and no passphrase: the source is named, not the passphrase.
    refused(
        support::run(&[
            "export",
            scratch.path("no-such-repo").as_str(),
            scratch.path("media").as_str(),
            "--key",
            protected.with_extension("key").as_str(),
        ]),
        2,
        &["source", "no-such-repo", "is not a folder"],
    );
    assert_tree_unchanged(&before, &tree_state(&scratch.root), "scratch");
}

#[test]
fn import_into_a_missing_parent_or_a_file_is_refused_and_mkpath_creates_it() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    small_repository(&scratch.path("repo"));
    let snapshot = export(&scratch.path("repo"), &scratch.path("media"), &key, "repo", 1);
    support::write(&scratch.path("a-file"), b"not a folder");
    let before = tree_state(&scratch.root);
    let deep = scratch.path("srv/site/updates");
    refused(
        support::run(&["import", snapshot.as_str(), deep.as_str(), "--trust", public.as_str()]),
        2,
        &["TARGET", "does not exist, and neither does its parent", "hint:"],
    );
    refused(
        support::run(&["import", snapshot.as_str(), scratch.path("a-file").as_str(), "--trust", public.as_str()]),
        2,
        &["is a file, not a folder"],
    );
    assert_tree_unchanged(&before, &tree_state(&scratch.root), "scratch");
    support::run(&["import", snapshot.as_str(), deep.as_str(), "--trust", public.as_str(), "--mkpath", "-q"]).ok();
    assert!(deep.join(".ferry/state").is_file());
}

#[test]
fn a_refused_first_import_leaves_no_folder_behind() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    small_repository(&scratch.path("repo"));
    let snapshot =
        support::export_with(&scratch.path("repo"), &scratch.path("media"), &key, "repo", 1, &["--layout", "tree"]);
    // Same size, other bytes: found only while the payload streams in,
    // after the target folder was made.
    let payload_file = first_payload_file(&snapshot.join("payload"));
    let mut bytes = std::fs::read(&payload_file).unwrap();
    bytes[0] ^= 0x55;
    std::fs::write(&payload_file, bytes).unwrap();
    let before = tree_state(&scratch.root);
    for switch in ["tree", "ordered"] {
        let target = scratch.path(&format!("new-target-{switch}"));
        let run = support::run(&[
            "import",
            snapshot.as_str(),
            target.as_str(),
            "--trust",
            public.as_str(),
            "--switch",
            switch,
        ]);
        assert_eq!(run.code, 3, "{switch}: {}", run.stderr);
        assert!(!target.exists(), "{switch}: the refused import left {target}");
    }
    assert_tree_unchanged(&before, &tree_state(&scratch.root), "scratch");
}

fn first_payload_file(payload: &Utf8Path) -> camino::Utf8PathBuf {
    walkdir::WalkDir::new(payload)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_type().is_file() && e.metadata().map_or(0, |m| m.len()) > 0)
        .map(|e| camino::Utf8PathBuf::from_path_buf(e.into_path()).unwrap())
        .expect("a non-empty payload file")
}

#[test]
fn an_unknown_repository_names_the_ones_on_the_drive() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    small_repository(&scratch.path("repo"));
    export(&scratch.path("repo"), &scratch.path("media"), &key, "av-bases", 1);
    export(&scratch.path("repo"), &scratch.path("media"), &key, "modules", 1);
    let before = tree_state(&scratch.root);
    refused(
        support::run(&[
            "import",
            scratch.path("media").as_str(),
            scratch.path("site").as_str(),
            "--trust",
            public.as_str(),
            "--repository",
            "nonexist",
        ]),
        2,
        &["no trusted snapshot of repository `nonexist`", "it holds: av-bases, modules", "hint:"],
    );
    assert_tree_unchanged(&before, &tree_state(&scratch.root), "scratch");
}

#[test]
fn operators_mistakes_get_one_line_and_a_hint() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    small_repository(&scratch.path("repo"));
    let media = scratch.path("media");
    export(&scratch.path("repo"), &media, &key, "repo", 1);
    let site = scratch.path("site");
    support::run(&["import", media.as_str(), site.as_str(), "--trust", public.as_str(), "-q"]).ok();
    std::fs::create_dir(scratch.path("only-secret-keys")).unwrap();
    std::fs::copy(&key, scratch.path("only-secret-keys/key.key")).unwrap();
    let (only_secret, no_drive) = (scratch.path("only-secret-keys"), scratch.path("no-such-drive"));
    let before = tree_state(&scratch.root);
    let cases: [(&[&str], &[&str]); 4] = [
        (&["verify", media.as_str(), "--trust", key.as_str()], &["is a secret key", "hint: give", "key.pub"]),
        (&["verify", media.as_str(), "--trust", only_secret.as_str()], &["no public key (*.pub) in", "hint:"]),
        (
            &["verify", no_drive.as_str(), "--trust", public.as_str()],
            &["does not exist", "hint: is the drive plugged in"],
        ),
        (
            &["import", site.as_str(), media.as_str(), "--trust", public.as_str()],
            &["is an update source ferry installed, not a drive", "hint: MEDIA comes first"],
        ),
    ];
    for (args, needles) in cases {
        refused(support::run(args), 2, needles);
    }
    assert_tree_unchanged(&before, &tree_state(&scratch.root), "scratch");
}
