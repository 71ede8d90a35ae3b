//! The bundled samples (`samples/`): a tiny repository, test-only keys,
//! golden media exported from them, and one folder per broken rule under
//! `samples/invalid/`, each with a README.md and a machine-readable `expect`
//! file. See samples/README.md.
//!
//! Regenerate everything but the keys (after a deliberate format change):
//!
//! ```sh
//! FERRY_REGENERATE_SAMPLES=1 cargo test --test samples generated
//! ```

mod support;
use camino::{Utf8Path, Utf8PathBuf};
use ferry::manifest::EntryKind;
use ferry::signing::{SecretKey, TrustStore, load_public};
use std::collections::BTreeMap;
use support::*;
use zeroize::Zeroizing;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");

/// The parameters the golden media was exported with.
const REPOSITORY: &str = "sample";
const SEQUENCE: &str = "1";
/// The golden snapshot in tar volumes (the same repository).
const TAR_SEQUENCE: &str = "2";
const CREATED: &str = "2026-11-24T12:00:00Z";
const EXPIRES: &str = "never";

/// Key file prefixes in samples/keys (see samples/keys/README.md).
const TRUSTED: &str = "TEST-ONLY-DO-NOT-USE";
const UNTRUSTED: &str = "TEST-ONLY-DO-NOT-USE-untrusted";
const PROTECTED: &str = "TEST-ONLY-DO-NOT-USE-protected";
/// The passphrase of the protected test key (also in samples/keys/README.md).
const PROTECTED_PASSPHRASE: &str = "test-only passphrase, not secret";

fn samples() -> Utf8PathBuf {
    Utf8PathBuf::from(SAMPLES)
}

fn key_file(prefix: &str, extension: &str) -> Utf8PathBuf {
    samples().join("keys").join(format!("{prefix}.{extension}"))
}

fn golden_snapshot() -> Utf8PathBuf {
    samples().join("media/ferry").join(REPOSITORY).join(SEQUENCE)
}

/// Every entry below `root`: relative path -> `dir` or the file's bytes.
fn tree_bytes(root: &Utf8Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut map = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.expect("walk");
        let relative = entry.path().strip_prefix(root).unwrap().to_str().expect("UTF-8 path").to_owned();
        let meta = entry.path().symlink_metadata().expect("stat");
        assert!(meta.is_dir() || meta.is_file(), "{relative}: neither a file nor a folder");
        map.insert(relative, meta.is_file().then(|| std::fs::read(entry.path()).expect("read")));
    }
    map
}

/// The golden media: sequence 1 as a plain tree (the invalid cases are
/// copies of it), then the same repository as sequence 2 in tar volumes
/// small enough that a file is split across two of them.
fn export_golden_parameters(media: &Utf8Path) {
    let source = samples().join("repository");
    let key = key_file(TRUSTED, "key");
    let export = |sequence: &str, layout: &[&str]| {
        let options = [&["--created", CREATED, "--expires", EXPIRES], layout].concat();
        export_with(&source, media, &key, REPOSITORY, sequence.parse().unwrap(), &options);
    };
    export(SEQUENCE, &["--layout", "tree"]);
    export(TAR_SEQUENCE, &["--layout", "tar", "--volume-size", "64K"]);
}

// ---------------------------------------------------------------------------
// (a) golden media
// ---------------------------------------------------------------------------

#[test]
fn golden_media_verifies_with_the_test_key() {
    let media = samples().join("media");
    let verified = run(&["verify", media.as_str(), "--trust", key_file(TRUSTED, "pub").as_str()]).ok();
    assert!(verified.stdout.contains("OK sample sequence 1"), "{}", verified.stdout);
    // The snapshot folder itself is accepted too (media-layout-v1.md §5 L1).
    run(&["verify", golden_snapshot().as_str(), "--trust", key_file(TRUSTED, "pub").as_str()]).ok();
    // And an unrelated key does not vouch for it.
    let refused = run(&["verify", media.as_str(), "--trust", key_file(UNTRUSTED, "pub").as_str()]).expect_code(3);
    assert!(refused.stderr.contains("none of them is trusted"), "{}", refused.stderr);
}

#[test]
fn golden_media_imports_as_the_sample_repository() {
    let scratch = Scratch::new();
    let target = scratch.path("target");
    run(&["import", samples().join("media").as_str(), target.as_str(), "--trust", key_file(TRUSTED, "pub").as_str()])
        .ok();
    assert_eq!(served_tree(&target), tree_state(&samples().join("repository")));
}

#[test]
fn reexporting_the_sample_repository_gives_the_golden_media_byte_for_byte() {
    let scratch = Scratch::new();
    let media = scratch.path("media");
    export_golden_parameters(&media);
    let fresh = tree_bytes(&media);
    let golden = tree_bytes(&samples().join("media"));
    let mut differences = Vec::new();
    for (path, bytes) in &golden {
        match fresh.get(path) {
            None => differences.push(format!("missing from the re-export: {path}")),
            Some(other) if other != bytes => differences.push(format!("differs: {path}")),
            Some(_) => {}
        }
    }
    for path in fresh.keys().filter(|path| !golden.contains_key(*path)) {
        differences.push(format!("only in the re-export: {path}"));
    }
    assert!(
        differences.is_empty(),
        "samples/media is not what exporting samples/repository gives (a file added to samples/repository, \
         an empty folder, a lost executable bit, or a format change?):\n  {}\n\
         If the change is deliberate: FERRY_REGENERATE_SAMPLES=1 cargo test --test samples generated",
        differences.join("\n  ")
    );
    assert!(golden.contains_key("ferry/sample/1/manifest.sig"), "{:?}", golden.keys());
}

// ---------------------------------------------------------------------------
// (b) invalid cases
// ---------------------------------------------------------------------------

/// The parsed `expect` file of one case (format: samples/invalid/README.md).
#[derive(Debug)]
struct Expect {
    exit: i32,
    message: String,
    import_exit: i32,
    now: Option<String>,
    trust: Vec<String>,
    known_bug: Option<String>,
}

fn read_expect(case: &Utf8Path) -> Expect {
    let path = case.join("expect");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut exit, mut message, mut import_exit, mut now, mut trust, mut known_bug) =
        (None, None, None, None, vec![], None);
    for line in text.lines() {
        let (key, value) = line.split_once(": ").unwrap_or_else(|| panic!("{path}: `{line}` is not `key: value`"));
        let number = || value.parse::<i32>().unwrap_or_else(|_| panic!("{path}: `{value}` is not an exit code"));
        match key {
            "exit" => exit = Some(number()),
            "message" => message = Some(value.to_owned()),
            "import-exit" => import_exit = Some(number()),
            "now" => now = Some(value.to_owned()),
            "trust" => trust.push(value.to_owned()),
            "known-bug" => known_bug = Some(value.to_owned()),
            _ => panic!("{path}: unknown key `{key}`"),
        }
    }
    let exit = exit.unwrap_or_else(|| panic!("{path}: no `exit:` line"));
    let message = message.unwrap_or_else(|| panic!("{path}: no `message:` line"));
    assert!(!message.trim().is_empty(), "{path}: empty message");
    if trust.is_empty() {
        trust.push(format!("{TRUSTED}.pub"));
    }
    Expect { exit, message, import_exit: import_exit.unwrap_or(exit), now, trust, known_bug }
}

fn invalid_cases() -> Vec<Utf8PathBuf> {
    let root = samples().join("invalid");
    let mut cases: Vec<Utf8PathBuf> = root
        .read_dir_utf8()
        .expect("list samples/invalid")
        .map(|entry| entry.unwrap().path().to_owned())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 21, "only {} cases in samples/invalid", cases.len());
    cases
}

/// `ferry COMMAND CASE [TARGET] --trust ... [--now ...]`.
fn run_case(command: &str, case: &Utf8Path, target: Option<&Utf8Path>, expect: &Expect) -> Run {
    let mut args = vec![command.to_owned(), case.to_string()];
    args.extend(target.map(|t| t.to_string()));
    for key in &expect.trust {
        args.push("--trust".into());
        args.push(samples().join("keys").join(key).to_string());
    }
    if let Some(now) = &expect.now {
        args.push("--now".into());
        args.push(now.clone());
    }
    Run::from(ferry().args(&args).output().expect("run ferry"))
}

/// Checks every case with `check`, which returns a problem or `None`.
/// Cases marked `known-bug:` are reported but do not fail the test until
/// they start passing (then the marker must go, so the case is enforced).
fn check_all_cases(what: &str, check: impl Fn(&Utf8Path, &Expect) -> Option<String>) {
    let mut failures = Vec::new();
    for case in invalid_cases() {
        let expect = read_expect(&case);
        let name = case.file_name().unwrap();
        match (check(&case, &expect), &expect.known_bug) {
            (None, None) => {}
            (Some(problem), None) => failures.push(format!("{name}: {problem}")),
            (Some(problem), Some(bug)) => eprintln!("KNOWN BUG, not failing: {name} ({what}): {bug}\n  {problem}"),
            (None, Some(_)) => failures.push(format!(
                "{name}: passes now; remove its `known-bug:` line (samples/invalid/{name}/expect and the generator)"
            )),
        }
    }
    assert!(failures.is_empty(), "{what}:\n{}", failures.join("\n\n"));
}

#[test]
fn verify_refuses_every_invalid_case_as_documented() {
    check_all_cases("ferry verify", |case, expect| {
        let outcome = run_case("verify", case, None, expect);
        let ok = outcome.code == expect.exit && outcome.stderr.contains(&expect.message);
        (!ok).then(|| {
            format!(
                "expected exit {} and a message containing {:?}; got exit {}\n  stdout: {}\n  stderr: {}",
                expect.exit,
                expect.message,
                outcome.code,
                outcome.stdout.trim(),
                outcome.stderr.trim()
            )
        })
    });
}

#[test]
fn import_refuses_every_invalid_case_and_leaves_no_target_behind() {
    check_all_cases("ferry import", |case, expect| {
        let scratch = Scratch::new();
        let target = scratch.path("target");
        let before = tree_state(case);
        let outcome = run_case("import", case, Some(&target), expect);
        let mut problems = Vec::new();
        if outcome.code != expect.import_exit {
            problems.push(format!("exit {} (expected {})", outcome.code, expect.import_exit));
        }
        if expect.import_exit != 0 {
            // Nothing at all may be left: no target, nothing beside it.
            let left: Vec<_> = tree_state(&scratch.root).into_keys().filter(|path| path != "target").collect();
            if !left.is_empty() {
                problems.push(format!("left behind: {left:?}"));
            }
            if target.exists() && target.read_dir_utf8().unwrap().next().is_some() {
                problems.push("the target is not empty".into());
            }
        }
        if tree_state(case) != before {
            problems.push("the media changed".into());
        }
        (!problems.is_empty()).then(|| {
            format!("{}\n  stdout: {}\n  stderr: {}", problems.join("; "), outcome.stdout.trim(), outcome.stderr.trim())
        })
    });
}

// ---------------------------------------------------------------------------
// (c) documentation of the cases
// ---------------------------------------------------------------------------

#[test]
fn every_invalid_case_has_a_readme_and_an_expect_file() {
    let mut problems = Vec::new();
    for case in invalid_cases() {
        let name = case.file_name().unwrap();
        let readme = std::fs::read_to_string(case.join("README.md")).unwrap_or_default();
        if readme.trim().is_empty() {
            problems.push(format!("{name}: no README.md"));
        } else if !readme.contains("formats/") && !readme.contains("foundation.md") {
            problems.push(format!("{name}: README.md cites no rule (formats/... or docs/design/foundation.md)"));
        }
        if !case.join("expect").is_file() {
            problems.push(format!("{name}: no expect file"));
            continue;
        }
        let expect = read_expect(&case);
        if !readme.contains(&expect.message) {
            problems.push(format!("{name}: README.md does not quote the expected message {:?}", expect.message));
        }
    }
    let index = std::fs::read_to_string(samples().join("invalid/README.md")).unwrap_or_default();
    for case in invalid_cases() {
        let name = case.file_name().unwrap();
        if !index.contains(&format!("`{name}`")) {
            problems.push(format!("samples/invalid/README.md does not list `{name}`"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// (d) keys and the sample manifest parse with the library
// ---------------------------------------------------------------------------

#[test]
fn sample_keys_parse_and_match() {
    let passphrase = |_: ferry::signing::KeyId| -> ferry::Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(PROTECTED_PASSPHRASE.as_bytes().to_vec()))
    };
    for prefix in [TRUSTED, UNTRUSTED, PROTECTED] {
        let public = load_public(&key_file(prefix, "pub")).unwrap_or_else(|e| panic!("{prefix}.pub: {e}"));
        let secret = SecretKey::load(&key_file(prefix, "key"), &mut passphrase.clone())
            .unwrap_or_else(|e| panic!("{prefix}.key: {e}"));
        assert_eq!(secret.id(), public.id, "{prefix}: .key and .pub are not one pair");
        assert!(prefix.starts_with("TEST-ONLY-DO-NOT-USE"));
    }
    // The protected key really is protected, and the README gives its passphrase.
    let wrong = SecretKey::load(&key_file(PROTECTED, "key"), &mut |_| Ok(Zeroizing::new(b"wrong".to_vec())));
    assert!(matches!(wrong, Err(ferry::Error::WrongPassphrase { .. })), "{:?}", wrong.err());
    let readme = std::fs::read_to_string(samples().join("keys/README.md")).unwrap();
    assert!(readme.contains(PROTECTED_PASSPHRASE) && readme.contains("TEST"), "samples/keys/README.md");
    let trusted = load_public(&key_file(TRUSTED, "pub")).unwrap();
    let untrusted = load_public(&key_file(UNTRUSTED, "pub")).unwrap();
    assert_ne!(trusted.id, untrusted.id);
}

#[test]
fn sample_manifest_decodes_and_reencodes_to_the_same_bytes() {
    let dir = golden_snapshot();
    let bytes = std::fs::read(dir.join("manifest")).unwrap();
    // The library decodes a manifest only through the verifier.
    let trust = TrustStore::load(&[key_file(TRUSTED, "pub")]).unwrap();
    let signature = std::fs::read(dir.join("manifest.sig")).unwrap();
    let verified =
        ferry::signing::verify(bytes.clone(), &dir.join("manifest"), signature, &dir.join("manifest.sig"), &trust)
            .unwrap();
    assert_eq!(verified.signers(), [trust.keys()[0].id]);
    let manifest = verified.manifest().clone();
    assert_eq!(manifest.repository.as_str(), REPOSITORY);
    assert_eq!(manifest.sequence, 1);
    assert_eq!(ferry::clock::format(manifest.created), CREATED);
    assert_eq!(manifest.expires, None);
    assert_eq!(manifest.encode(), bytes, "decode + encode is not the identity");

    let entries: BTreeMap<&str, &EntryKind> = manifest.entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
    for folder in ["bases", "bases/daily", "index", "modules"] {
        assert_eq!(entries.get(folder), Some(&&EntryKind::Dir), "{folder}");
    }
    let file = |path: &str| manifest.files().find(|(p, _)| p.as_str() == path).unwrap_or_else(|| panic!("{path}")).1;
    assert_eq!(file("bases/empty.dat").size, 0);
    assert!(file("modules/updater.sh").executable && !file("modules/updater.sh").index);
    assert!(file("index/master.xml").index && !file("index/master.xml").executable);
    assert!(!file("bases/ünïcødé.dat").executable);
    assert!(entries.contains_key("bases/daily/notes for today.txt"));
}

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

/// One broken rule.
struct Case {
    name: &'static str,
    /// The rule broken, citing the design note and/or formats/.
    rule: &'static str,
    /// What was done to a copy of the golden snapshot folder.
    change: &'static str,
    exit: i32,
    /// `{trusted}` / `{untrusted}` are replaced by the key ids.
    message: &'static str,
    import_exit: Option<i32>,
    now: Option<&'static str>,
    trust: &'static [&'static str],
    known_bug: Option<&'static str>,
    /// Applies the change to the case folder (a copy of the golden snapshot).
    build: fn(&Utf8Path, &Keys),
}

struct Keys {
    trusted: SecretKey,
    untrusted: SecretKey,
    protected: SecretKey,
}

const EMPTY_DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn manifest_text(dir: &Utf8Path) -> String {
    std::fs::read_to_string(dir.join("manifest")).unwrap()
}

/// Writes `text` as the manifest, validly signed by the trusted test key.
fn signed(dir: &Utf8Path, keys: &Keys, text: &str) {
    std::fs::write(dir.join("manifest"), text).unwrap();
    std::fs::write(dir.join("manifest.sig"), keys.trusted.sign_manifest(text.as_bytes())).unwrap();
}

/// Replaces exactly one occurrence of `from`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} is not in the manifest exactly once");
    text.replacen(from, to, 1)
}

/// The whole entry line of `path` (with its LF).
fn entry_line(text: &str, path: &str) -> String {
    let line = text.lines().find(|line| line.ends_with(&format!(" {path}"))).unwrap_or_else(|| panic!("{path}"));
    format!("{line}\n")
}

fn set_count(text: &str, count: usize) -> String {
    let old = text.lines().find(|line| line.starts_with("entries: ")).unwrap();
    replace_once(text, &format!("{old}\n"), &format!("entries: {count}\n"))
}

fn flip_bit(path: &Utf8Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn cases() -> Vec<Case> {
    const T: &[&str] = &[];
    vec![
        Case {
            name: "payload-byte-flipped",
            rule: "Every file's bytes must have the SHA-256 the manifest lists: docs/design/foundation.md §1.1 \
                   (`file SIZE SHA256 FLAGS PATH`); formats/media-layout-v1.md §7 V4 (verify) and §6 I5 (import, `Mismatch`).",
            change: "Lowest bit of the first byte of `payload/bases/main.dat` flipped (`a` -> `` ` ``); manifest and signature untouched.",
            exit: 3,
            message: "damaged: bases/main.dat (sha256",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, _| flip_bit(&dir.join("payload/bases/main.dat"), 0),
        },
        Case {
            name: "manifest-byte-flipped",
            rule: "The signature covers the exact manifest bytes: docs/design/foundation.md §1.2; \
                   formats/signature-v1.md §3, §6 S8 (`BadSignature`).",
            change: "Lowest bit of the first digest byte of the `bases/main.dat` line flipped (`9` -> `8`); the old signature kept.",
            exit: 3,
            message: "signature by trusted key {trusted} does not match the manifest",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, _| {
                let text = manifest_text(dir);
                let line = entry_line(&text, "bases/main.dat");
                let offset = text.find(&line).unwrap() + "file 61 ".len();
                flip_bit(&dir.join("manifest"), offset);
            },
        },
        Case {
            name: "payload-extra-file",
            rule: "Nothing may exist below `payload/` that the manifest does not list: formats/media-layout-v1.md §7 V5 \
                   (verify). Import refuses such media too, before touching the target (it lists the payload folder; \
                   it still never reads an unlisted file, §6 I5).",
            change: "Added `payload/bases/extra.dat` (not in the manifest).",
            exit: 3,
            message: "extra: bases/extra.dat (not in the manifest)",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, _| std::fs::write(dir.join("payload/bases/extra.dat"), b"smuggled\n").unwrap(),
        },
        Case {
            name: "payload-file-missing",
            rule: "Every listed file must exist on the media: formats/media-layout-v1.md §7 V3 (`Damaged`, `missing: PATH`).",
            change: "Removed `payload/bases/main.dat`.",
            exit: 3,
            message: "missing: bases/main.dat",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, _| std::fs::remove_file(dir.join("payload/bases/main.dat")).unwrap(),
        },
        Case {
            name: "signature-missing",
            rule: "A snapshot folder without `manifest.sig` is incomplete and never installed: docs/design/foundation.md §1.4; \
                   formats/media-layout-v1.md §5 L3; formats/signature-v1.md §6 S2 (`MissingSignature`).",
            change: "Removed `manifest.sig`.",
            exit: 3,
            message: "has no signature file (manifest.sig)",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, _| std::fs::remove_file(dir.join("manifest.sig")).unwrap(),
        },
        Case {
            name: "signature-untrusted-key",
            rule: "At least one signature must be by a trusted key; others are ignored: docs/design/foundation.md §1.2; \
                   formats/signature-v1.md §6 S9 (`UntrustedKey`).",
            change: "`manifest.sig` replaced by a valid signature over the same manifest by `TEST-ONLY-DO-NOT-USE-untrusted` (not in the trust store).",
            exit: 3,
            message: "signed by key(s) {untrusted} but none of them is trusted",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                let text = manifest_text(dir);
                std::fs::write(dir.join("manifest.sig"), keys.untrusted.sign_manifest(text.as_bytes())).unwrap();
            },
        },
        Case {
            name: "manifest-unsupported-version",
            rule: "The first line must be exactly `ferry manifest v1`, `v2` or `v3`: docs/design/foundation.md §1; \
                   formats/README.md §3 V1-V2; formats/manifest-v1.md §9 M3; formats/manifest-v2.md §3; \
                   formats/manifest-v3.md §4.",
            change: "First line `ferry manifest v4`; re-signed by the trusted key.",
            exit: 3,
            message: "found `ferry manifest v4` (not a ferry manifest, or an unsupported version)",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                signed(dir, keys, &replace_once(&manifest_text(dir), "ferry manifest v1\n", "ferry manifest v4\n"))
            },
        },
        Case {
            name: "entries-unsorted",
            rule: "Entries are sorted strictly ascending by the UTF-8 bytes of the path: docs/design/foundation.md §1.1; \
                   formats/manifest-v1.md §3.3, §9 M21.",
            change: "The `bases/empty.dat` and `bases/main.dat` lines swapped; re-signed by the trusted key.",
            exit: 3,
            message: "line 15: `bases/empty.dat` is out of order",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                let text = manifest_text(dir);
                let (empty, main) = (entry_line(&text, "bases/empty.dat"), entry_line(&text, "bases/main.dat"));
                signed(dir, keys, &replace_once(&text, &format!("{empty}{main}"), &format!("{main}{empty}")));
            },
        },
        Case {
            name: "entry-duplicate",
            rule: "Strictly ascending order forbids duplicates: docs/design/foundation.md §1.1; formats/manifest-v1.md §3.3, §9 M21.",
            change: "The `bases/main.dat` line repeated, `entries: 13`; re-signed by the trusted key.",
            exit: 3,
            message: "line 16: `bases/main.dat` is out of order or duplicated",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                let text = manifest_text(dir);
                let main = entry_line(&text, "bases/main.dat");
                signed(dir, keys, &set_count(&replace_once(&text, &main, &format!("{main}{main}")), 13));
            },
        },
        Case {
            name: "path-dotdot",
            rule: "No path component may be `..`: docs/design/foundation.md §1.6; formats/manifest-v1.md §5 P3, §9 M20.",
            change: "`modules/updater.sh` listed as `modules/../updater.sh` (still sorted); re-signed by the trusted key. The payload is unchanged: the parser refuses first.",
            exit: 3,
            message: "path `modules/../updater.sh`: `..` component",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                signed(
                    dir,
                    keys,
                    &replace_once(&manifest_text(dir), " modules/updater.sh\n", " modules/../updater.sh\n"),
                )
            },
        },
        Case {
            name: "path-absolute",
            rule: "Paths are relative: docs/design/foundation.md §1.6; formats/manifest-v1.md §5 P2, §9 M20.",
            change: "An empty file `/etc/ferry-sample` inserted as the first entry (`/` sorts first), `entries: 13`; re-signed by the trusted key.",
            exit: 3,
            message: "line 9: absolute path `/etc/ferry-sample`",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                let text = replace_once(
                    &manifest_text(dir),
                    "dir bases\n",
                    &format!("file 0 {EMPTY_DIGEST} - /etc/ferry-sample\ndir bases\n"),
                );
                signed(dir, keys, &set_count(&text, 13));
            },
        },
        Case {
            name: "path-windows-device",
            rule: "No component may be a Windows device name: docs/design/foundation.md §1.6; formats/manifest-v1.md §5 P8, §9 M20.",
            change: "An empty file `modules/CON` inserted before `modules/updater.sh`, `entries: 13`; re-signed by the trusted key. \
                     No payload file is added (a file named CON would break checkouts on Windows); the parser refuses first.",
            exit: 3,
            message: "path `modules/CON`: `CON` is a Windows device name",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                let text = manifest_text(dir);
                let updater = entry_line(&text, "modules/updater.sh");
                let text = replace_once(&text, &updater, &format!("file 0 {EMPTY_DIGEST} - modules/CON\n{updater}"));
                signed(dir, keys, &set_count(&text, 13));
            },
        },
        Case {
            name: "parent-not-listed",
            rule: "Every parent of an entry must itself be listed as `dir`: docs/design/foundation.md §1.1; formats/manifest-v1.md §4.5, §9 M23.",
            change: "The `dir bases/daily` line removed, `entries: 11`; re-signed by the trusted key (the folder stays in the payload).",
            exit: 3,
            message: "`bases/daily/2026-11-24.dat`: its folder `bases/daily` is not listed before it",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                signed(dir, keys, &set_count(&replace_once(&manifest_text(dir), "dir bases/daily\n", ""), 11))
            },
        },
        Case {
            name: "entry-count-mismatch",
            rule: "`entries` is the number of entry lines that follow, exactly: docs/design/foundation.md §1.1; formats/manifest-v1.md §9 M24.",
            change: "`entries: 13` with the 12 entry lines of the golden manifest; re-signed by the trusted key.",
            exit: 3,
            message: "announces 13 entries but lists 12",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| signed(dir, keys, &set_count(&manifest_text(dir), 13)),
        },
        Case {
            name: "digest-uppercase",
            rule: "Hex is lowercase everywhere: docs/design/foundation.md §1; formats/README.md §2 C6; formats/manifest-v1.md §9 M18.",
            change: "The digest of `bases/main.dat` written in uppercase; re-signed by the trusted key.",
            exit: 3,
            message: "is not a SHA-256 in lowercase hex",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                let text = manifest_text(dir);
                let line = entry_line(&text, "bases/main.dat");
                let digest = line.split(' ').nth(2).unwrap();
                let upper = line.replace(digest, &digest.to_ascii_uppercase());
                signed(dir, keys, &replace_once(&text, &line, &upper));
            },
        },
        Case {
            name: "layout-tar",
            rule: "`layout: tar` needs a v2 manifest, which lists the volumes; a v1 manifest has only `tree`: \
                   formats/manifest-v1.md §4.4, §9 M11; formats/manifest-v2.md §3 M11.",
            change: "`layout: tar` in a v1 manifest; re-signed by the trusted key.",
            exit: 3,
            message: "layout `tar` needs a `ferry manifest v2`",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                signed(dir, keys, &replace_once(&manifest_text(dir), "\nlayout: tree\n", "\nlayout: tar\n"))
            },
        },
        Case {
            name: "base-not-none",
            rule: "`base` must be `none` in v1 and v2 (a delta is a `ferry manifest v3`): docs/design/foundation.md §1.1; \
                   formats/manifest-v1.md §4.4, §9 M12; formats/manifest-v3.md.",
            change: "`base:` set to the snapshot id of the golden manifest (a delta against it); re-signed by the trusted key.",
            exit: 3,
            message: "a v1 or v2 manifest has `base: none` (a delta is a `ferry manifest v3`)",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                let text = manifest_text(dir);
                let base = ferry::digest::Digest::of(text.as_bytes()).to_hex();
                signed(dir, keys, &replace_once(&text, "\nbase: none\n", &format!("\nbase: {base}\n")));
            },
        },
        Case {
            name: "expired",
            rule: "A snapshot is refused from the instant `expires` on (freeze protection): docs/design/foundation.md §1.1; \
                   formats/manifest-v1.md §4.3, §10 A2 (`Expired`). The test passes `--now` from the expect file.",
            change: "`expires: 2026-12-24T12:00:00Z`; re-signed by the trusted key; checked as of 2027-01-01T00:00:00Z.",
            exit: 3,
            message: "it expired at 2026-12-24T12:00:00Z (now 2027-01-01T00:00:00Z)",
            import_exit: None,
            now: Some("2027-01-01T00:00:00Z"),
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                signed(
                    dir,
                    keys,
                    &replace_once(&manifest_text(dir), "\nexpires: never\n", "\nexpires: 2026-12-24T12:00:00Z\n"),
                )
            },
        },
        Case {
            name: "manifest-truncated",
            rule: "Every line ends with LF, the last one included: docs/design/foundation.md §1; formats/README.md §2 C2; \
                   formats/manifest-v1.md §9 M5.",
            change: "The final LF removed; the shortened bytes re-signed by the trusted key.",
            exit: 3,
            message: "does not end with a newline (truncated?)",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| signed(dir, keys, manifest_text(dir).strip_suffix('\n').unwrap()),
        },
        Case {
            name: "signature-wrong-magic",
            rule: "The signature file starts with `ferry signature v1`: docs/design/foundation.md §1.2; formats/signature-v1.md §6 S4.",
            change: "First line of `manifest.sig` changed to `ferry sig v1`; the signature line is untouched.",
            exit: 3,
            message: "line 1: expected `ferry signature v1`",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, _| {
                let text = std::fs::read_to_string(dir.join("manifest.sig")).unwrap();
                std::fs::write(dir.join("manifest.sig"), replace_once(&text, "ferry signature v1\n", "ferry sig v1\n"))
                    .unwrap();
            },
        },
        Case {
            name: "signature-over-other-bytes",
            rule: "A trusted key's signature must be over these exact manifest bytes: docs/design/foundation.md §1.2; \
                   formats/signature-v1.md §6 S8 (`BadSignature`).",
            change: "`manifest.sig` is a genuine signature by the trusted key, but over the same manifest with `sequence: 2`; the manifest says 1.",
            exit: 3,
            message: "signature by trusted key {trusted} does not match the manifest",
            import_exit: None,
            now: None,
            trust: T,
            known_bug: None,
            build: |dir, keys| {
                let other = replace_once(&manifest_text(dir), "\nsequence: 1\n", "\nsequence: 2\n");
                std::fs::write(dir.join("manifest.sig"), keys.trusted.sign_manifest(other.as_bytes())).unwrap();
            },
        },
        Case {
            name: "signature-second-trusted-line-bad",
            rule: "Every signature line by a trusted key must verify; a trusted signature that does not is a refusal \
                   even if another trusted one verifies: docs/design/foundation.md §1.2; formats/signature-v1.md §5, §6 S8 (`BadSignature`).",
            change: "`manifest.sig` has two lines, in ascending key-id order: a valid signature by `TEST-ONLY-DO-NOT-USE-protected`, \
                     then the trusted key's signature with one bit flipped. Both keys are trusted (`trust:` lines in `expect`).",
            exit: 3,
            message: "signature by trusted key {trusted} does not match the manifest",
            import_exit: None,
            now: None,
            trust: &["TEST-ONLY-DO-NOT-USE-protected.pub", "TEST-ONLY-DO-NOT-USE.pub"],
            known_bug: None,
            build: |dir, keys| {
                let text = manifest_text(dir);
                let line = |key: &SecretKey| {
                    let file = String::from_utf8(key.sign_manifest(text.as_bytes())).unwrap();
                    file.lines().nth(1).unwrap().to_owned()
                };
                let (good, mut bad) = (line(&keys.protected), line(&keys.trusted));
                assert!(keys.protected.id() < keys.trusted.id(), "key ids must be ascending in the file");
                // Flip one hex digit of the signature: 0 <-> 1, a <-> b, ...
                let last = bad.pop().unwrap();
                bad.push(char::from(last as u8 ^ 0x01));
                std::fs::write(dir.join("manifest.sig"), format!("ferry signature v1\n{good}\n{bad}\n")).unwrap();
            },
        },
    ]
}

fn copy_tree(from: &Utf8Path, to: &Utf8Path) {
    for entry in walkdir::WalkDir::new(from).sort_by_file_name() {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(from).unwrap();
        let destination = to.as_std_path().join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&destination).unwrap();
        } else {
            std::fs::copy(entry.path(), &destination).unwrap();
        }
    }
}

fn case_readme(case: &Case, message: &str, keys: &Keys) -> String {
    let mut text = format!("# Invalid sample: `{}`\n\n", case.name);
    text.push_str(&format!("**Rule broken.** {}\n\n", case.rule.split_whitespace().collect::<Vec<_>>().join(" ")));
    text.push_str(&format!(
        "**How it was made.** A copy of the golden snapshot folder `samples/media/ferry/sample/1`, then: {}\n\n",
        case.change.split_whitespace().collect::<Vec<_>>().join(" ")
    ));
    let trust = if case.trust.is_empty() {
        vec![format!("{TRUSTED}.pub")]
    } else {
        case.trust.iter().map(|s| s.to_string()).collect()
    };
    let trust_args: String = trust.iter().map(|k| format!(" --trust samples/keys/{k}")).collect();
    let now_arg = case.now.map_or(String::new(), |now| format!(" --now {now}"));
    text.push_str("**Expected.**\n\n");
    text.push_str(&format!(
        "* `ferry verify samples/invalid/{}{trust_args}{now_arg}` exits with **{}** and its error contains:\n\n  ```\n  {message}\n  ```\n\n",
        case.name, case.exit
    ));
    let import_exit = case.import_exit.unwrap_or(case.exit);
    if import_exit == 0 {
        text.push_str(&format!(
            "* `ferry import samples/invalid/{} TARGET{trust_args}{now_arg}` exits with **0**: see the rule above.\n",
            case.name
        ));
    } else {
        text.push_str(&format!(
            "* `ferry import samples/invalid/{} TARGET{trust_args}{now_arg}` exits with **{import_exit}** and leaves nothing at or beside TARGET.\n",
            case.name
        ));
    }
    if let Some(bug) = case.known_bug {
        text.push_str(&format!(
            "\n**Known bug.** {bug}. The test reports this case without failing until it is fixed.\n"
        ));
    }
    text.push_str(&format!(
        "\nKeys: trusted `{}` ({TRUSTED}), untrusted `{}` ({UNTRUSTED}), protected `{}` ({PROTECTED}).\n\
         Generated by `FERRY_REGENERATE_SAMPLES=1 cargo test --test samples generated` (tests/samples.rs); do not edit by hand.\n",
        keys.trusted.id(),
        keys.untrusted.id(),
        keys.protected.id()
    ));
    text
}

/// The invalid cases are exactly what [`write_invalid_cases`] builds from
/// the golden snapshot; with `FERRY_REGENERATE_SAMPLES=1` the golden media
/// and the cases in `samples/` are rewritten first (after a deliberate
/// format change), so the comparison then checks the rewrite.
#[test]
fn samples_are_what_is_generated() {
    let invalid = samples().join("invalid");
    if std::env::var_os("FERRY_REGENERATE_SAMPLES").is_some_and(|v| v == "1") {
        let media = samples().join("media");
        if media.exists() {
            std::fs::remove_dir_all(&media).unwrap();
        }
        export_golden_parameters(&media);
        for case in invalid_cases_if_any(&invalid) {
            std::fs::remove_dir_all(case).unwrap();
        }
        write_invalid_cases(&invalid);
    }
    let scratch = Scratch::new();
    let fresh = scratch.path("invalid");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::copy(invalid.join("README.md"), fresh.join("README.md")).unwrap();
    write_invalid_cases(&fresh);
    let (committed, generated) = (tree_bytes(&invalid), tree_bytes(&fresh));
    let differences: Vec<&String> =
        committed.keys().chain(generated.keys()).filter(|path| committed.get(*path) != generated.get(*path)).collect();
    assert!(
        differences.is_empty(),
        "samples/invalid is not what tests/samples.rs generates; differing paths:\n  {:?}\n\
         If the change is deliberate: FERRY_REGENERATE_SAMPLES=1 cargo test --test samples generated",
        differences
    );
}

/// Writes every invalid case (copies of the golden snapshot, each broken
/// one way) into `invalid`, with its `expect` file and README, and the
/// index at the end of `invalid/README.md`.
fn write_invalid_cases(invalid: &Utf8Path) {
    let passphrase = |_: ferry::signing::KeyId| -> ferry::Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(PROTECTED_PASSPHRASE.as_bytes().to_vec()))
    };
    let load = |prefix| SecretKey::load(&key_file(prefix, "key"), &mut passphrase.clone()).unwrap();
    let keys = Keys { trusted: load(TRUSTED), untrusted: load(UNTRUSTED), protected: load(PROTECTED) };

    let mut index = Vec::new();
    for case in cases() {
        let dir = invalid.join(case.name);
        copy_tree(&golden_snapshot(), &dir);
        (case.build)(&dir, &keys);
        let message = case
            .message
            .replace("{trusted}", &keys.trusted.id().to_string())
            .replace("{untrusted}", &keys.untrusted.id().to_string());
        let mut expect = format!("exit: {}\nmessage: {message}\n", case.exit);
        if let Some(code) = case.import_exit {
            expect.push_str(&format!("import-exit: {code}\n"));
        }
        if let Some(now) = case.now {
            expect.push_str(&format!("now: {now}\n"));
        }
        for key in case.trust {
            expect.push_str(&format!("trust: {key}\n"));
        }
        if let Some(bug) = case.known_bug {
            expect.push_str(&format!("known-bug: {bug}\n"));
        }
        std::fs::write(dir.join("expect"), expect).unwrap();
        std::fs::write(dir.join("README.md"), case_readme(&case, &message, &keys)).unwrap();
        index.push(format!("| [`{}`]({}/README.md) | {} | `` {message} `` |", case.name, case.name, case.exit));
    }
    let overview = std::fs::read_to_string(invalid.join("README.md")).unwrap_or_default();
    let marker = "<!-- cases: generated by tests/samples.rs, do not edit below -->";
    let head = overview.split(marker).next().unwrap_or_default().trim_end();
    std::fs::write(
        invalid.join("README.md"),
        format!(
            "{head}\n\n{marker}\n\n| Case | Exit | Message contains |\n|------|------|------------------|\n{}\n",
            index.join("\n")
        ),
    )
    .unwrap();
}

fn invalid_cases_if_any(invalid: &Utf8Path) -> Vec<Utf8PathBuf> {
    match invalid.read_dir_utf8() {
        Ok(entries) => entries.map(|e| e.unwrap().path().to_owned()).filter(|p| p.is_dir()).collect(),
        Err(_) => Vec::new(),
    }
}
