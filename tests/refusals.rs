//! Refusals through the real binary: every bad input is refused with the
//! right exit code, an error naming the offending file or key, and not a
//! single byte changed at the target (state folder and the whole-tree
//! switch's sibling folders included) or on the media.

mod support;
use camino::{Utf8Path, Utf8PathBuf};
use ferry::signing::SecretKey;
use sha2::{Digest, Sha256};
use support::*;

/// Both ways of switching a snapshot in; every refusal must hold for each.
const SWITCHES: [&str; 2] = ["tree", "ordered"];

/// A target with snapshot 1 of repository `av` installed, and the sources
/// and keys to make more snapshots.
struct Fixture {
    scratch: Scratch,
    switch: &'static str,
    /// Holds only the target, so that `tree_state(site)` also covers the
    /// whole-tree switch's `.target.ferry-*` siblings.
    site: Utf8PathBuf,
    target: Utf8PathBuf,
    source1: Utf8PathBuf,
    source2: Utf8PathBuf,
    media1: Utf8PathBuf,
    secret: Utf8PathBuf,
    public: Utf8PathBuf,
    key_id: String,
}

fn key_id_of(public: &Utf8Path) -> String {
    let text = std::fs::read_to_string(public).unwrap();
    text.lines().find_map(|line| line.strip_prefix("id: ")).expect("id line").to_owned()
}

impl Fixture {
    fn new(switch: &'static str) -> Self {
        let scratch = Scratch::new();
        let prefix = scratch.path("key");
        keygen(&prefix);
        let (secret, public) = (prefix.with_extension("key"), prefix.with_extension("pub"));
        let key_id = key_id_of(&public);
        let source1 = scratch.path("source1");
        small_repository(&source1);
        // Snapshot 2: a changed file, a new file, a removed file.
        let source2 = scratch.path("source2");
        small_repository(&source2);
        write(&source2.join("bases/av-2.dat"), &vec![0x5A; 70_000]);
        write(&source2.join("bases/new.dat"), b"a file new in snapshot 2\n");
        std::fs::remove_file(source2.join("bases/av-1.dat")).unwrap();
        let site = scratch.path("site");
        std::fs::create_dir_all(&site).unwrap();
        let target = site.join("target");
        let media1 = scratch.path("media1");
        export(&source1, &media1, &secret, "av", 1);
        let fixture = Fixture { scratch, switch, site, target, source1, source2, media1, secret, public, key_id };
        fixture.import(&fixture.media1).ok();
        assert_eq!(served_tree(&fixture.target), tree_state(&fixture.source1));
        fixture
    }

    /// A fresh media folder holding snapshot `sequence` of `source`, exported with `extra` arguments.
    fn export_to(&self, name: &str, source: &Utf8Path, sequence: u64, extra: &[&str]) -> (Utf8PathBuf, Utf8PathBuf) {
        let media = self.scratch.path(name);
        let sequence_text = sequence.to_string();
        let mut args = vec![
            "export",
            source.as_str(),
            media.as_str(),
            "--key",
            self.secret.as_str(),
            "--repository",
            "av",
            "--sequence",
            &sequence_text,
            "-q",
        ];
        args.extend_from_slice(extra);
        run(&args).ok();
        let snapshot = media.join("ferry/av").join(&sequence_text);
        (media, snapshot)
    }

    /// Snapshot 2 on its own media folder.
    fn snapshot2(&self, name: &str) -> (Utf8PathBuf, Utf8PathBuf) {
        self.export_to(name, &self.source2.clone(), 2, &[])
    }

    /// Snapshot 2 as a plain tree, for tests that damage single payload
    /// files (tests/tar_volumes.rs damages volumes).
    fn snapshot2_tree(&self, name: &str) -> (Utf8PathBuf, Utf8PathBuf) {
        self.export_to(name, &self.source2.clone(), 2, &["--layout", "tree"])
    }

    fn import_args<'a>(&'a self, media: &'a Utf8Path, globals: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        let mut args: Vec<&str> = globals.to_vec();
        args.extend([
            "import",
            media.as_str(),
            self.target.as_str(),
            "--trust",
            self.public.as_str(),
            "--switch",
            self.switch,
        ]);
        args.extend_from_slice(extra);
        args
    }

    fn import(&self, media: &Utf8Path) -> Run {
        run(&self.import_args(media, &[], &[]))
    }

    /// Runs `args`, asserts the exit code, that stderr is an `error:` line
    /// naming every string in `names`, and that nothing changed at the
    /// target (but for the refusal's journal entry, exit 3) or on `media`.
    fn assert_refused(&self, args: &[&str], media: &Utf8Path, code: i32, names: &[&str]) -> Run {
        let site_before = tree_state_but_journal(&self.site);
        let media_before = tree_state(media);
        assert!(site_before.contains_key("target/.ferry/state"), "the fixture has a snapshot installed");
        let result = run(args).expect_code(code);
        assert!(
            result.stderr.starts_with("error: "),
            "stderr is not an error line ({} switch):\n{}",
            self.switch,
            result.stderr
        );
        for name in names {
            assert!(
                result.stderr.contains(name),
                "stderr does not name `{name}` ({} switch):\n{}",
                self.switch,
                result.stderr
            );
        }
        assert_tree_unchanged(
            &site_before,
            &tree_state_but_journal(&self.site),
            &format!("the target site ({} switch)", self.switch),
        );
        if code == 3 {
            assert_eq!(last_journal_action(&self.target.join(".ferry")), "refusal", "the refusal is journaled");
        }
        assert_tree_unchanged(&media_before, &tree_state(media), "the media");
        result
    }

    /// `ferry verify` of damaged media exits 3, names `names`, and writes nothing there.
    fn assert_verify_refused(&self, media: &Utf8Path, globals: &[&str], names: &[&str]) {
        let before = tree_state(media);
        let mut args: Vec<&str> = globals.to_vec();
        args.extend(["verify", media.as_str(), "--trust", self.public.as_str()]);
        let result = run(&args).expect_code(3);
        assert!(result.stderr.starts_with("error: "), "{}", result.stderr);
        for name in names {
            assert!(result.stderr.contains(name), "verify stderr does not name `{name}`:\n{}", result.stderr);
        }
        assert_tree_unchanged(&before, &tree_state(media), "the media after verify");
    }

    /// After a refusal, a good snapshot still installs: the refusal was about the damage.
    fn assert_good_snapshot2_installs(&self) {
        let (media, _) = self.snapshot2("media-good");
        self.import(&media).ok();
        assert_eq!(served_tree(&self.target), tree_state(&self.source2));
    }
}

fn flip_byte(path: &Utf8Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

// ---------------------------------------------------------------------------
// Damaged media
// ---------------------------------------------------------------------------

#[test]
fn flipped_byte_in_a_payload_file_is_refused_and_changes_nothing() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let (media, snapshot) = f.snapshot2_tree("media2");
        // bases/av-2.dat changed in snapshot 2, so the import must read it.
        flip_byte(&snapshot.join("payload/bases/av-2.dat"), 35_000);
        f.assert_refused(&f.import_args(&media, &[], &[]), &media, 3, &["bases/av-2.dat"]);
        f.assert_verify_refused(&media, &[], &["bases/av-2.dat"]);
        f.assert_good_snapshot2_installs();
    }
}

#[test]
fn flipped_byte_in_the_manifest_is_refused_naming_the_signature_and_key() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let (media, snapshot) = f.snapshot2("media2");
        let manifest = snapshot.join("manifest");
        let text = std::fs::read_to_string(&manifest).unwrap();
        // Flip a byte in the middle of the entry for bases/new.dat (still a valid manifest shape).
        let offset = text.find(" - bases/new.dat").unwrap() - 10;
        flip_byte(&manifest, offset);
        f.assert_refused(
            &f.import_args(&media, &[], &[]),
            &media,
            3,
            &[snapshot.join("manifest.sig").as_str(), &f.key_id],
        );
        f.assert_verify_refused(&media, &[], &[snapshot.join("manifest.sig").as_str(), &f.key_id]);
        f.assert_good_snapshot2_installs();
    }
}

#[test]
fn extra_file_in_the_payload_is_refused_and_changes_nothing() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let (media, snapshot) = f.snapshot2_tree("media2");
        write(&snapshot.join("payload/bases/smuggled.dat"), b"not in the manifest\n");
        f.assert_verify_refused(&media, &[], &["bases/smuggled.dat"]);
        f.assert_refused(&f.import_args(&media, &[], &[]), &media, 3, &["bases/smuggled.dat"]);
        assert!(!f.target.join("bases/smuggled.dat").exists());
    }
}

#[test]
fn missing_payload_file_is_refused_and_changes_nothing() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let (media, snapshot) = f.snapshot2_tree("media2");
        // New in snapshot 2, so the import cannot take it from the installed tree.
        std::fs::remove_file(snapshot.join("payload/bases/new.dat")).unwrap();
        f.assert_refused(&f.import_args(&media, &[], &[]), &media, 3, &["bases/new.dat"]);
        f.assert_verify_refused(&media, &[], &["bases/new.dat"]);
        f.assert_good_snapshot2_installs();
    }
}

#[test]
fn missing_folder_and_a_file_in_place_of_a_folder_are_named_by_verify() {
    // Verify learns what each listed folder is from its one walk of the
    // payload (not from a lookup per folder): both kinds of damage are named.
    let f = Fixture::new(SWITCHES[0]);
    let (media, snapshot) = f.snapshot2_tree("media2");
    std::fs::remove_dir(snapshot.join("payload/empty-folder")).unwrap();
    std::fs::remove_dir_all(snapshot.join("payload/bases/sub")).unwrap();
    write(&snapshot.join("payload/bases/sub"), b"a file where a folder was\n");
    f.assert_verify_refused(&media, &[], &["missing: empty-folder/", "not a folder: bases/sub/ (a regular file)"]);
}

#[test]
fn unlisted_folders_nested_deeper_than_the_open_file_limit_are_named_by_verify() {
    // A hostile drive nests folders far deeper than the handles a process
    // may hold open: verify names them instead of failing with "too many
    // open files" (it keeps at most 64 folders open on its way down).
    let f = Fixture::new(SWITCHES[0]);
    let (media, snapshot) = f.snapshot2_tree("media2");
    let deep: Utf8PathBuf = std::iter::repeat_n("d", 300).collect::<Vec<_>>().join("/").into();
    std::fs::create_dir_all(snapshot.join("payload").join(&deep)).unwrap();
    let before = tree_state(&media);
    let mut verify = ferry();
    verify.args(["verify", media.as_str(), "--trust", f.public.as_str()]);
    let limit = rustix::process::Rlimit { current: Some(128), maximum: Some(128) };
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut verify, move || {
            rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).map_err(std::io::Error::from)
        });
    }
    let output = verify.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    // One `extra:` per folder, the deepest included.
    assert!(stderr.contains("300 problems:"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("too many open files"), "{stderr}");
    assert_tree_unchanged(&before, &tree_state(&media), "the media after verify");
}

#[test]
fn missing_signature_file_is_refused_and_changes_nothing() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let (media, snapshot) = f.snapshot2("media2");
        std::fs::remove_file(snapshot.join("manifest.sig")).unwrap();
        f.assert_refused(&f.import_args(&media, &[], &[]), &media, 3, &["manifest.sig", snapshot.as_str()]);
        f.assert_verify_refused(&media, &[], &["manifest.sig", snapshot.as_str()]);
    }
}

// ---------------------------------------------------------------------------
// Trust and policy
// ---------------------------------------------------------------------------

#[test]
fn snapshot_signed_by_an_untrusted_key_is_refused_naming_the_key() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let other = f.scratch.path("other");
        keygen(&other);
        let other_id = key_id_of(&other.with_extension("pub"));
        assert_ne!(other_id, f.key_id);
        let media = f.scratch.path("media-other");
        run(&[
            "export",
            f.source2.as_str(),
            media.as_str(),
            "--key",
            other.with_extension("key").as_str(),
            "--repository",
            "av",
            "--sequence",
            "2",
            "-q",
        ])
        .ok();
        let result = f.assert_refused(&f.import_args(&media, &[], &[]), &media, 3, &[&other_id, "manifest.sig"]);
        assert!(result.stderr.contains("trusted"), "{}", result.stderr);
        f.assert_verify_refused(&media, &[], &[&other_id]);
    }
}

#[test]
fn older_sequence_than_installed_is_refused_as_rollback() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let (media2, _) = f.snapshot2("media2");
        f.import(&media2).ok();
        assert_eq!(served_tree(&f.target), tree_state(&f.source2));
        let manifest1 = f.media1.join("ferry/av/1/manifest");
        let result = f.assert_refused(&f.import_args(&f.media1, &[], &[]), &f.media1, 3, &[manifest1.as_str()]);
        assert!(result.stderr.contains("sequence 1") && result.stderr.contains("sequence 2"), "{}", result.stderr);
        // The media itself is fine: verify accepts it.
        run(&["verify", f.media1.as_str(), "--trust", f.public.as_str()]).ok();
    }
}

#[test]
fn same_sequence_with_other_content_is_refused() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        // Sequence 1 again, but of the second source.
        let (media, snapshot) = f.export_to("media-reuse", &f.source2.clone(), 1, &[]);
        f.assert_refused(
            &f.import_args(&media, &[], &[]),
            &media,
            3,
            &[snapshot.join("manifest").as_str(), "sequence 1"],
        );
    }
}

#[test]
fn snapshot_of_another_repository_is_refused() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let media = f.scratch.path("media-other-repo");
        run(&[
            "export",
            f.source2.as_str(),
            media.as_str(),
            "--key",
            f.secret.as_str(),
            "--repository",
            "other",
            "--sequence",
            "5",
            "-q",
        ])
        .ok();
        let manifest = media.join("ferry/other/5/manifest");
        f.assert_refused(&f.import_args(&media, &[], &[]), &media, 3, &[manifest.as_str(), "`other`", "`av`"]);
    }
}

#[test]
fn expired_snapshot_is_refused_by_import_and_verify() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let (media, snapshot) = f.export_to(
            "media-expiring",
            &f.source2.clone(),
            2,
            &["--created", "2099-03-01T00:00:00Z", "--expires", "1s"],
        );
        let later = ["--now", "2099-03-01T01:00:00Z"];
        let manifest = snapshot.join("manifest");
        let result = f.assert_refused(
            &f.import_args(&media, &later, &[]),
            &media,
            3,
            &[manifest.as_str(), "2099-03-01T00:00:01Z"],
        );
        assert!(result.stderr.contains("expired"), "{}", result.stderr);
        f.assert_verify_refused(&media, &later, &[manifest.as_str()]);
        // Before it expired the same snapshot was fine.
        run(&f.import_args(&media, &["--now", "2099-03-01T00:00:00Z"], &[])).ok();
        assert_eq!(served_tree(&f.target), tree_state(&f.source2));
    }
}

#[test]
fn snapshot_created_long_ago_with_default_expiry_is_refused() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        // Created 60 days ago with the default 30-day expiry: expired now.
        let (media, snapshot) = f.export_to("media-old", &f.source2.clone(), 2, &["--created", "2020-01-01T00:00:00Z"]);
        let result = f.assert_refused(
            &f.import_args(&media, &[], &[]),
            &media,
            3,
            &[snapshot.join("manifest").as_str(), "2020-01-31T00:00:00Z"],
        );
        assert!(result.stderr.contains("expired"), "{}", result.stderr);
        f.assert_verify_refused(&media, &[], &["expired"]);
    }
}

// ---------------------------------------------------------------------------
// Hostile manifests, validly signed
// ---------------------------------------------------------------------------

/// Writes a signed snapshot folder whose manifest lists one file at `path`
/// (the payload file written where a careless importer would put it).
fn forged_snapshot(f: &Fixture, media_name: &str, path: &str) -> (Utf8PathBuf, Utf8PathBuf) {
    let media = f.scratch.path(media_name);
    let snapshot = media.join("ferry/av/2");
    let content = b"escaped the target\n";
    let digest = hex::encode(Sha256::digest(content));
    let manifest = format!(
        "ferry manifest v1\nrepository: av\nsequence: 2\ncreated: 2099-11-24T13:00:00Z\nexpires: never\nlayout: tree\nbase: none\nentries: 1\nfile {} {digest} - {path}\n",
        content.len()
    );
    std::fs::create_dir_all(snapshot.join("payload")).unwrap();
    if !path.starts_with('/') {
        write(&snapshot.join("payload").join(path), content);
    }
    std::fs::write(snapshot.join("manifest"), &manifest).unwrap();
    let key = SecretKey::load(&f.secret, &mut |_| unreachable!("the test key is not encrypted")).unwrap();
    std::fs::write(snapshot.join("manifest.sig"), key.sign_manifest(manifest.as_bytes())).unwrap();
    (media, snapshot)
}

#[test]
fn signed_manifest_with_dot_dot_path_is_refused() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let (media, snapshot) = forged_snapshot(&f, "media-dotdot", "../escaped.dat");
        let result = f.assert_refused(
            &f.import_args(&media, &[], &[]),
            &media,
            3,
            &[snapshot.join("manifest").as_str(), "`..`"],
        );
        assert!(result.stderr.contains("line 9"), "{}", result.stderr);
        assert!(!f.site.join("escaped.dat").exists());
        f.assert_verify_refused(&media, &[], &[snapshot.join("manifest").as_str(), "`..`"]);
    }
}

#[test]
fn signed_manifest_with_absolute_path_is_refused() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let victim = f.site.join("escaped-absolute.dat");
        let (media, snapshot) = forged_snapshot(&f, "media-absolute", victim.as_str());
        let result = f.assert_refused(
            &f.import_args(&media, &[], &[]),
            &media,
            3,
            &[snapshot.join("manifest").as_str(), "absolute"],
        );
        assert!(result.stderr.contains("line 9"), "{}", result.stderr);
        assert!(!victim.exists());
        f.assert_verify_refused(&media, &[], &[snapshot.join("manifest").as_str(), "absolute"]);
    }
}

#[test]
fn forged_manifest_helper_makes_an_importable_snapshot_with_a_good_path() {
    // The forging helper itself is right: with an ordinary path its snapshot
    // installs, so the two refusals above are about the path alone.
    let f = Fixture::new("tree");
    let (media, _) = forged_snapshot(&f, "media-forged-ok", "ok.dat");
    run(&["verify", media.as_str(), "--trust", f.public.as_str()]).ok();
    f.import(&media).ok();
    assert_eq!(std::fs::read(f.target.join("ok.dat")).unwrap(), b"escaped the target\n");
}

// ---------------------------------------------------------------------------
// Usage errors
// ---------------------------------------------------------------------------

#[test]
fn import_and_verify_without_trusted_key_are_usage_errors() {
    let f = Fixture::new("tree");
    let (media, _) = f.snapshot2("media2");
    let args = ["import", media.as_str(), f.target.as_str()];
    let result = f.assert_refused(&args, &media, 2, &["--trust"]);
    assert!(result.stderr.contains("FERRY_TRUST"), "{}", result.stderr);
    let verify = run(&["verify", media.as_str()]).expect_code(2);
    assert!(verify.stderr.contains("--trust"), "{}", verify.stderr);
}

#[test]
fn nonexistent_media_path_is_an_error_naming_it_and_creates_nothing() {
    let f = Fixture::new("tree");
    let missing = f.scratch.path("no-such-drive");
    // Into the installed target: nothing changes.
    // A usage error (exit 2), with a hint to check the drive is mounted.
    let result = f.assert_refused(&f.import_args(&missing, &[], &[]), &missing, 2, &[missing.as_str()]);
    assert!(result.stderr.contains("MEDIA") && result.stderr.contains("hint:"), "{}", result.stderr);
    // Into a target that does not exist yet: it is not created.
    let fresh = f.scratch.path("fresh-target");
    let result = run(&["import", missing.as_str(), fresh.as_str(), "--trust", f.public.as_str()]).expect_code(2);
    assert!(result.stderr.contains(missing.as_str()), "{}", result.stderr);
    assert!(!fresh.exists(), "a failed import created the target");
    let verify = run(&["verify", missing.as_str(), "--trust", f.public.as_str()]).expect_code(2);
    assert!(verify.stderr.contains(missing.as_str()), "{}", verify.stderr);
}

#[test]
fn first_import_into_a_non_empty_folder_needs_adopt() {
    for switch in SWITCHES {
        let f = Fixture::new(switch);
        let site = f.scratch.path("other-site");
        let target = site.join("existing");
        write(&target.join("README.txt"), b"someone else's files\n");
        write(&target.join("bases/av-1.dat"), b"an old hand-copied database\n");
        std::fs::create_dir_all(target.join("empty")).unwrap();
        let before = tree_state(&site);
        let args = ["import", f.media1.as_str(), target.as_str(), "--trust", f.public.as_str(), "--switch", switch];
        let result = run(&args).expect_code(2);
        assert!(
            result.stderr.starts_with("error: ")
                && result.stderr.contains(target.as_str())
                && result.stderr.contains("--adopt"),
            "{}",
            result.stderr
        );
        assert_tree_unchanged(&before, &tree_state(&site), &format!("the unadopted folder ({switch} switch)"));

        let mut adopt = args.to_vec();
        adopt.push("--adopt");
        run(&adopt).ok();
        assert_eq!(served_tree(&target), tree_state(&f.source1), "after --adopt ({switch} switch)");
        assert!(target.join(".ferry/state").is_file());
    }
}
