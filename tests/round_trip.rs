//! The round trip through the real binary: export, verify, import, a
//! second snapshot over the first, re-import, rollback, and reproducible
//! exports.

mod support;
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use support::*;

#[test]
fn small_repository_round_trip_is_byte_identical() {
    let scratch = Scratch::new();
    let (source, media, target, key) =
        (scratch.path("source"), scratch.path("media"), scratch.path("target"), scratch.path("key"));
    small_repository(&source);
    keygen(&key);
    export(&source, &media, &key.with_extension("key"), "av", 1);
    run(&["verify", media.as_str(), "--trust", key.with_extension("pub").as_str()]).ok();
    run(&["import", media.as_str(), target.as_str(), "--trust", key.with_extension("pub").as_str()]).ok();
    assert_eq!(served_tree(&target), tree_state(&source));
    let status = run(&["status", target.as_str(), "--json"]).ok();
    assert!(status.stdout.contains("\"freshness\": \"fresh\""), "{}", status.stdout);
}

// ---------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so every run builds the
/// same repository without depending on a random-number crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, limit: u64) -> u64 {
        self.next() % limit
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Writes a file with an explicit mode (0644 or 0755), creating parents.
fn put(path: &Utf8Path, bytes: &[u8], executable: bool) {
    write(path, bytes);
    chmod(path, executable);
}

fn chmod(path: &Utf8Path, executable: bool) {
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Number of small files in the generated repository.
const SMALL_FILES: usize = 3000;
/// Size of the one large file.
const LARGE_SIZE: usize = 20 * 1024 * 1024 + 17;

/// Where small file `i` lives: nested folders of depth 1 to 4.
fn small_path(i: usize) -> String {
    let depth = 1 + i % 4;
    let mut parts = vec![format!("d{}", (i / 7) % 5), format!("e{}", (i / 11) % 4), format!("f{}", (i / 13) % 3)];
    parts.truncate(depth - 1);
    let extension = if i.is_multiple_of(50) { "xml" } else { "dat" };
    parts.push(format!("file-{i:04}.{extension}"));
    parts.join("/")
}

/// The first snapshot's repository: several thousand small files, a few
/// medium ones, a large one, and the entries the second snapshot changes
/// in every way a tree can change.
fn generate_repository(root: &Utf8Path) {
    let mut rng = Rng::new(1);
    for i in 0..SMALL_FILES {
        let size = if i % 100 == 1 { 0 } else { rng.below(2048) as usize };
        put(&root.join(small_path(i)), &rng.bytes(size), i.is_multiple_of(97));
    }
    for k in 0..4 {
        put(&root.join(format!("medium/m{k}.bin")), &rng.bytes(300_000 + k * 123_457), false);
    }
    put(&root.join("large/big.bin"), &rng.bytes(LARGE_SIZE), false);
    // A folder the second snapshot removes, with nested content.
    for j in 0..5 {
        put(&root.join(format!("old-folder/sub{}/old-{j}.dat", j % 2)), format!("old {j}\n").as_bytes(), false);
    }
    // A file that becomes a folder, and a folder that becomes a file.
    put(&root.join("swap/thing"), b"I am a file for now\n", false);
    put(&root.join("swap/was-dir/inner-1.dat"), b"inner one\n", false);
    put(&root.join("swap/was-dir/deeper/inner-2.dat"), b"inner two\n", false);
    // Mode-only changes.
    put(&root.join("tools/run.sh"), b"#!/bin/sh\necho run\n", false);
    put(&root.join("tools/was-exec.sh"), b"#!/bin/sh\necho was\n", true);
    // Empty folders and an index file.
    std::fs::create_dir_all(root.join("empty-v1/inner")).unwrap();
    put(&root.join("index/master.xml"), b"<index version=\"1\"/>\n", false);
}

/// Turns the first snapshot's repository into the second one.
fn mutate_repository(root: &Utf8Path) {
    let mut rng = Rng::new(2);
    for i in 0..SMALL_FILES {
        let path = root.join(small_path(i));
        if i % 37 == 5 {
            std::fs::remove_file(&path).unwrap();
        } else if i % 10 == 3 {
            let size = 1 + rng.below(3000) as usize;
            put(&path, &rng.bytes(size), i.is_multiple_of(97));
        } else if i % 53 == 7 {
            // Same size, different bytes.
            let mut bytes = std::fs::read(&path).unwrap();
            if let Some(first) = bytes.first_mut() {
                *first ^= 0xFF;
            }
            put(&path, &bytes, i.is_multiple_of(97));
        }
    }
    for j in 0..200 {
        put(&root.join(format!("added/a{}/n{j:03}.dat", j % 10)), &rng.bytes(j * 13), j.is_multiple_of(50));
    }
    put(&root.join("d0/added-into-existing.dat"), b"new in an old folder\n", false);
    std::fs::remove_file(root.join("medium/m2.bin")).unwrap();
    put(&root.join("medium/m3.bin"), &rng.bytes(777_777), false);
    // One byte of the large file changes.
    let mut large = std::fs::read(root.join("large/big.bin")).unwrap();
    large[10 * 1024 * 1024] ^= 0x01;
    put(&root.join("large/big.bin"), &large, false);
    std::fs::remove_dir_all(root.join("old-folder")).unwrap();
    std::fs::create_dir_all(root.join("empty-v2/deep/er")).unwrap();
    std::fs::remove_file(root.join("swap/thing")).unwrap();
    put(&root.join("swap/thing/inner.dat"), b"now I am a folder\n", false);
    std::fs::remove_dir_all(root.join("swap/was-dir")).unwrap();
    put(&root.join("swap/was-dir"), b"now I am a file\n", false);
    chmod(&root.join("tools/run.sh"), true);
    chmod(&root.join("tools/was-exec.sh"), false);
    put(&root.join("index/master.xml"), b"<index version=\"2\"/>\n", false);
}

/// A signing key pair in a scratch folder.
struct Keys {
    secret: Utf8PathBuf,
    public: Utf8PathBuf,
}

fn make_keys(scratch: &Scratch) -> Keys {
    let prefix = scratch.path("key");
    keygen(&prefix);
    Keys { secret: prefix.with_extension("key"), public: prefix.with_extension("pub") }
}

/// `ferry export` with the given sequence and extra arguments; returns the snapshot folder.
fn export_seq(source: &Utf8Path, media: &Utf8Path, keys: &Keys, sequence: u64, extra: &[&str]) -> Utf8PathBuf {
    let sequence_text = sequence.to_string();
    let mut args = vec![
        "export",
        source.as_str(),
        media.as_str(),
        "--key",
        keys.secret.as_str(),
        "--repository",
        "av",
        "--sequence",
        &sequence_text,
        "-q",
    ];
    args.extend_from_slice(extra);
    run(&args).ok();
    media.join("ferry/av").join(&sequence_text)
}

fn import(media: &Utf8Path, target: &Utf8Path, keys: &Keys, switch: &str) -> Run {
    run(&["import", media.as_str(), target.as_str(), "--trust", keys.public.as_str(), "--switch", switch])
}

fn status_json(target: &Utf8Path) -> serde_json::Value {
    let status = run(&["status", target.as_str(), "--json"]).ok();
    serde_json::from_str(&status.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{}", status.stdout))
}

/// Describes how two tree states differ, for readable failures.
fn differences(left: &BTreeMap<String, String>, right: &BTreeMap<String, String>) -> String {
    let mut lines = Vec::new();
    for (path, value) in left {
        match right.get(path) {
            None => lines.push(format!("only left: {path} ({value})")),
            Some(other) if other != value => lines.push(format!("differs: {path} ({value} vs {other})")),
            Some(_) => {}
        }
    }
    for (path, value) in right {
        if !left.contains_key(path) {
            lines.push(format!("only right: {path} ({value})"));
        }
    }
    let count = lines.len();
    lines.truncate(30);
    format!("{count} difference(s):\n  {}", lines.join("\n  "))
}

fn assert_same_tree(actual: &BTreeMap<String, String>, expected: &BTreeMap<String, String>, what: &str) {
    assert!(actual == expected, "{what}: {}", differences(actual, expected));
}

// ---------------------------------------------------------------------------
// Large repository: two snapshots, re-import, rollback, for each switch
// ---------------------------------------------------------------------------

fn large_repository_two_snapshots(switch: &str) {
    let scratch = Scratch::new();
    let keys = make_keys(&scratch);
    let (source, media) = (scratch.path("source"), scratch.path("media"));
    // The target sits alone in `site`, so the whole-tree switch's sibling
    // folders are covered by `tree_state(site)`.
    let site = scratch.path("site");
    let target = site.join("target");
    std::fs::create_dir_all(&site).unwrap();

    generate_repository(&source);
    let first = tree_state(&source);
    assert!(first.len() > SMALL_FILES, "the generated repository has {} entries", first.len());
    assert_eq!(first["large/big.bin"].len(), "file 644 ".len() + 64);

    // First snapshot into an empty (nonexistent) target.
    export_seq(&source, &media, &keys, 1, &[]);
    let verified = run(&["verify", media.as_str(), "--trust", keys.public.as_str()]).ok();
    assert!(verified.stdout.contains("OK av sequence 1"), "{}", verified.stdout);
    let imported = import(&media, &target, &keys, switch).ok();
    assert!(imported.stdout.contains(&format!("({switch} switch)")), "{}", imported.stdout);
    assert_same_tree(&served_tree(&target), &first, "after the first import");
    let status = status_json(&target);
    assert_eq!(status["sequence"], 1);
    assert_eq!(status["switch"], switch);
    assert_eq!(status["rolled_back_from"], serde_json::Value::Null);

    // Importing the installed snapshot again changes nothing at all.
    let before = tree_state(&site);
    let again = import(&media, &target, &keys, switch).ok();
    assert!(again.stdout.contains("already installed"), "{}", again.stdout);
    assert_same_tree(&tree_state(&site), &before, "re-importing snapshot 1");

    // Second snapshot: changed, added, removed files and folders, mode
    // changes, a file that becomes a folder and a folder that becomes a file.
    mutate_repository(&source);
    let second = tree_state(&source);
    assert_eq!(second["swap/thing"], "dir");
    assert!(second["swap/was-dir"].starts_with("file 644 "));
    assert!(second["tools/run.sh"].starts_with("file 755 "));
    assert!(!second.contains_key("old-folder"));
    assert_eq!(second["empty-v2/deep/er"], "dir");
    assert_ne!(first["large/big.bin"], second["large/big.bin"]);

    // The media now holds both snapshots; import takes the newest.
    export_seq(&source, &media, &keys, 2, &[]);
    let verified = run(&["verify", media.as_str(), "--trust", keys.public.as_str()]).ok();
    assert!(
        verified.stdout.contains("OK av sequence 1") && verified.stdout.contains("OK av sequence 2"),
        "{}",
        verified.stdout
    );
    let imported = import(&media, &target, &keys, switch).ok();
    assert!(imported.stdout.contains("installed av sequence 2"), "{}", imported.stdout);
    assert_same_tree(&served_tree(&target), &second, "after the second import");
    let status = status_json(&target);
    assert_eq!(status["sequence"], 2);
    assert_eq!(status["switch"], switch);
    // Checked at the end, so that a wrong flag does not hide the rest.
    let previous_kept_after_second = status["previous_kept"].clone();

    // And importing it again still changes nothing, previous snapshot included.
    let before = tree_state(&site);
    let again = import(&media, &target, &keys, switch).ok();
    assert!(again.stdout.contains("already installed"), "{}", again.stdout);
    assert_same_tree(&tree_state(&site), &before, "re-importing snapshot 2");

    // Rollback restores the first tree exactly and records where it came from.
    let rolled = run(&["rollback", target.as_str()]).ok();
    assert!(rolled.stdout.contains("back from sequence 2 to sequence 1"), "{}", rolled.stdout);
    assert_same_tree(&served_tree(&target), &first, "after rollback");
    let status = status_json(&target);
    assert_eq!(status["sequence"], 1);
    assert_eq!(status["rolled_back_from"], 2);
    let journal = std::fs::read_to_string(target.join(".ferry/audit")).unwrap();
    assert!(
        journal.lines().any(|line| line.contains(" rollback ") && line.ends_with(" from%20sequence%202")),
        "journal:\n{journal}"
    );

    // Only one step back is kept.
    let before = tree_state(&site);
    let twice = run(&["rollback", target.as_str()]).expect_code(1);
    assert!(twice.stderr.contains("no previous snapshot"), "{}", twice.stderr);
    assert_same_tree(&tree_state(&site), &before, "a refused second rollback");

    // Importing the newer snapshot again returns to it.
    import(&media, &target, &keys, switch).ok();
    assert_same_tree(&served_tree(&target), &second, "re-importing snapshot 2 after rollback");
    let status = status_json(&target);
    assert_eq!(status["sequence"], 2);
    assert_eq!(status["rolled_back_from"], serde_json::Value::Null);

    // status reports the previous snapshot kept for rollback, whichever switch kept it.
    assert_eq!(
        previous_kept_after_second, true,
        "status --json previous_kept after the second import ({switch} switch)"
    );
}

#[test]
fn large_repository_two_snapshots_reimport_and_rollback_are_exact_with_tree_switch() {
    large_repository_two_snapshots("tree");
}

#[test]
fn large_repository_two_snapshots_reimport_and_rollback_are_exact_with_ordered_switch() {
    large_repository_two_snapshots("ordered");
}

// ---------------------------------------------------------------------------
// Reproducible exports
// ---------------------------------------------------------------------------

#[test]
fn same_source_sequence_and_time_export_byte_identical_media() {
    let scratch = Scratch::new();
    let keys = make_keys(&scratch);
    let source = scratch.path("source");
    small_repository(&source);
    for i in 0..300 {
        put(&source.join(small_path(i)), format!("content {i}\n").as_bytes(), i.is_multiple_of(7));
    }
    let created = "2026-03-01T12:00:00Z";
    let epoch = "1772366400"; // the same moment in Unix seconds

    let (a, b, c) = (scratch.path("media-a"), scratch.path("media-b"), scratch.path("media-c"));
    export_seq(&source, &a, &keys, 7, &["--created", created]);
    export_seq(&source, &b, &keys, 7, &["--created", created]);
    let by_epoch = Run::from(
        ferry()
            .args([
                "export",
                source.as_str(),
                c.as_str(),
                "--key",
                keys.secret.as_str(),
                "--repository",
                "av",
                "--sequence",
                "7",
                "-q",
            ])
            .env("SOURCE_DATE_EPOCH", epoch)
            .output()
            .unwrap(),
    )
    .ok();
    assert_eq!(by_epoch.code, 0);

    let state_a = tree_state(&a);
    assert!(state_a.contains_key("ferry/av/7/manifest.sig"), "{state_a:?}");
    assert_same_tree(&tree_state(&b), &state_a, "two exports with --created");
    assert_same_tree(&tree_state(&c), &state_a, "export with SOURCE_DATE_EPOCH vs --created");

    // The recorded time really is the one asked for.
    let manifest = std::fs::read_to_string(a.join("ferry/av/7/manifest")).unwrap();
    assert!(manifest.contains(&format!("\ncreated: {created}\n")), "{manifest}");
    assert!(manifest.contains("\nexpires: 2026-03-31T12:00:00Z\n"), "{manifest}");

    // A different time gives a different manifest (the comparison above can fail).
    let d = scratch.path("media-d");
    export_seq(&source, &d, &keys, 7, &["--created", "2026-03-01T12:00:01Z"]);
    assert_ne!(tree_state(&d)["ferry/av/7/manifest"], state_a["ferry/av/7/manifest"]);
}
