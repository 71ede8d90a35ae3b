//! The golden delta (samples/delta, formats/delta-v1.md): day 1 of the
//! sample repository exported as a delta from the golden sequence 1, with
//! a patch (`bases/daily/blob.bin`, ten bytes changed), a compressed file
//! (`index/catalog.xml`, added: D2a), a file carried whole, one removed and
//! the rest left to the base (`b`). Re-exporting gives it byte for byte;
//! it verifies, and imported over sequence 1 it gives day 1 exactly.
//!
//! Regenerate it (after a deliberate format change):
//!
//! ```sh
//! FERRY_REGENERATE_SAMPLES=1 cargo test --test samples_delta generated
//! ```

mod support;
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeMap;
use support::*;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
/// The parameters of the golden media (tests/samples.rs) and of the delta.
const REPOSITORY: &str = "sample";
const CREATED: &str = "2026-11-24T12:00:00Z";
const DELTA_SEQUENCE: &str = "3";
const DELTA_CREATED: &str = "2026-11-25T12:00:00Z";
const KEY: &str = "TEST-ONLY-DO-NOT-USE";
/// SHA-256 of no bytes: the FROM of a compressed file (delta-v1.md D2a).
const FROM_NOTHING: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn samples() -> Utf8PathBuf {
    Utf8PathBuf::from(SAMPLES)
}

fn key(extension: &str) -> String {
    samples().join("keys").join(format!("{KEY}.{extension}")).into_string()
}

/// Exports sequence 1 (as the golden media does) into a ledger in
/// `scratch`, then day 1 as a delta from it into `media`.
fn export_golden_delta(scratch: &Scratch, media: &Utf8Path) {
    let ledger = scratch.path("ledger");
    let common = ["--repository", REPOSITORY, "--expires", "never", "-q"];
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec!["export".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(common.iter().map(|s| s.to_string()));
        args.extend(["--key".into(), key("key"), "--ledger".into(), ledger.to_string()]);
        args
    };
    let day0 = scratch.path("day0");
    let repository = samples().join("repository");
    let day0_options = ["--sequence", "1", "--created", CREATED, "--layout", "tree", "--ledger-contents", "0"];
    let args = with(&[&[repository.as_str(), day0.as_str()][..], &day0_options].concat());
    run(&args.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    let base = day0.join("ferry").join(REPOSITORY).join("1").join("manifest");
    let day1 = samples().join("delta/repository");
    // Tar volumes: a tree medium holds every folder of the repository,
    // empty where nothing below it is carried, and git keeps no empty folder.
    let day1_options = ["--sequence", DELTA_SEQUENCE, "--created", DELTA_CREATED, "--layout", "tar"];
    let args = with(&[&[day1.as_str(), media.as_str()][..], &day1_options, &["--since", base.as_str()]].concat());
    run(&args.iter().map(String::as_str).collect::<Vec<_>>()).ok();
}

/// Every entry below `root`: relative path -> `None` (folder) or bytes.
fn tree_bytes(root: &Utf8Path) -> BTreeMap<String, Option<Vec<u8>>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|entry| {
            let entry = entry.unwrap();
            let relative = entry.path().strip_prefix(root).unwrap().to_str().unwrap().to_owned();
            (relative, entry.file_type().is_file().then(|| std::fs::read(entry.path()).unwrap()))
        })
        .collect()
}

fn golden() -> Utf8PathBuf {
    samples().join("delta/media")
}

fn snapshot() -> Utf8PathBuf {
    golden().join("ferry").join(REPOSITORY).join(DELTA_SEQUENCE)
}

#[test]
fn samples_delta_is_what_is_generated() {
    let scratch = Scratch::new();
    if std::env::var_os("FERRY_REGENERATE_SAMPLES").is_some_and(|v| v == "1") {
        if golden().exists() {
            std::fs::remove_dir_all(golden()).unwrap();
        }
        export_golden_delta(&scratch, &golden());
    }
    let fresh = scratch.path("fresh");
    export_golden_delta(&Scratch::new(), &fresh);
    let (committed, generated) = (tree_bytes(&golden()), tree_bytes(&fresh));
    let differences: Vec<&String> =
        committed.keys().chain(generated.keys()).filter(|path| committed.get(*path) != generated.get(*path)).collect();
    assert!(
        differences.is_empty(),
        "samples/delta/media is not what exporting samples/delta/repository as a delta gives; differing paths:\n  {differences:?}\n\
         If the change is deliberate: FERRY_REGENERATE_SAMPLES=1 cargo test --test samples_delta generated"
    );
}

/// What the spec says the medium holds: a `base` line naming sequence 1,
/// one patch of blob.bin from its day-0 digest, catalog.xml compressed
/// (a patch from no bytes), master.xml whole, unchanged files `b`, and on
/// the medium only the carried list's files (delta-v1.md §5).
#[test]
fn the_golden_delta_holds_what_the_spec_says() {
    let zst = snapshot().join("manifest.zst");
    let text = String::from_utf8(zstd::decode_all(&std::fs::read(&zst).unwrap()[..]).unwrap()).unwrap();
    let golden_base = std::fs::read(samples().join("media/ferry/sample/1/manifest")).unwrap();
    let base_id = ferry::digest::Digest::of(&golden_base).to_hex();
    assert!(text.contains(&format!("\nbase: {base_id}\n")), "{text}");
    let patches: Vec<&str> = text.lines().filter(|l| l.starts_with("patch ")).collect();
    assert_eq!(patches.len(), 2, "{text}");
    let old_blob =
        ferry::digest::Digest::of(&std::fs::read(samples().join("repository/bases/daily/blob.bin")).unwrap());
    assert!(patches[0].ends_with(&format!("{} bases/daily/blob.bin", old_blob.to_hex())), "{}", patches[0]);
    assert!(patches[1].ends_with(&format!("{FROM_NOTHING} index/catalog.xml")), "{}", patches[1]);
    let flags = |path: &str| {
        let line = text.lines().find(|l| l.starts_with("file ") && l.ends_with(&format!(" {path}"))).unwrap();
        line.split(' ').nth(3).unwrap().to_owned()
    };
    assert_eq!(flags("bases/daily/blob.bin"), "p");
    assert_eq!(flags("index/catalog.xml"), "ip");
    assert_eq!(flags("index/master.xml"), "i");
    assert_eq!(flags("modules/updater.sh"), "xb");
    assert!(!text.contains(" bases/main.dat\n"), "a removed file is not listed");
    let volume = std::fs::File::open(snapshot().join("volumes/0001.tar")).unwrap();
    let payload: Vec<String> = tar::Archive::new(volume)
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.header().entry_type().is_file())
        .map(|entry| entry.path().unwrap().to_str().unwrap().to_owned())
        .collect();
    let patch_files: Vec<String> =
        patches.iter().map(|l| format!(".ferry/patches/{}", l.split(' ').nth(2).unwrap())).collect();
    let mut expected = vec!["index/master.xml".to_owned()];
    expected.extend(patch_files);
    expected.sort();
    let mut payload = payload;
    payload.sort();
    assert_eq!(payload, expected);
}

#[test]
fn the_golden_delta_verifies_and_imports_over_sequence_1() {
    run(&["verify", golden().as_str(), "--trust", &key("pub")]).ok();
    let scratch = Scratch::new();
    let target = scratch.path("target");
    let full = samples().join("media/ferry/sample/1");
    run(&["import", full.as_str(), target.as_str(), "--trust", &key("pub")]).ok();
    run(&["import", golden().as_str(), target.as_str(), "--trust", &key("pub")]).ok();
    assert_eq!(served_tree(&target), tree_state(&samples().join("delta/repository")));
}
