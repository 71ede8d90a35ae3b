//! Hostile deltas (formats/delta-v1.md §2, §4 P4, §6): manifests crafted
//! and signed with the trusted test key, and damaged patch files. Each is
//! refused with exit code 3 and the target is left as it was.

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use ferry::digest::Digest;
use ferry::signing::SecretKey;
use support::*;

struct Case {
    /// Holds the folders until the case ends.
    _scratch: Scratch,
    key: SecretKey,
    public: Utf8PathBuf,
    target: Utf8PathBuf,
    /// The delta's snapshot folder (tree layout).
    delta: Utf8PathBuf,
}

/// A target at day 0 and a tree delta to day 1 that patches `big.bin`.
fn setup() -> Case {
    let scratch = Scratch::new();
    keygen(&scratch.path("k"));
    let (key_path, public) = (scratch.path("k.key"), scratch.path("k.pub"));
    let ledger = scratch.path("ledger");
    let source = scratch.path("source");
    let mut big = pseudo_random_bytes(5, 1 << 20);
    write(&source.join("big.bin"), &big);
    write(&source.join("small.txt"), b"day 0\n");
    let export = |drive: &Utf8Path, sequence: &str, since: Option<&Utf8Path>| {
        let mut args = vec!["export", source.as_str(), drive.as_str(), "--key", key_path.as_str()];
        args.extend(["--repository", "av", "--sequence", sequence, "--layout", "tree", "--ledger", ledger.as_str()]);
        if let Some(since) = since {
            args.extend(["--since", since.as_str()]);
        }
        run(&args).ok();
        drive.join("ferry/av").join(sequence)
    };
    let target = scratch.path("site");
    let full = export(&scratch.path("d0"), "1", None);
    run(&["import", full.as_str(), target.as_str(), "--trust", public.as_str()]).ok();
    let receipt = scratch.path("receipt");
    run(&["receipt", target.as_str(), receipt.as_str()]).ok();
    big[300_000..303_000].copy_from_slice(&pseudo_random_bytes(6, 3000));
    write(&source.join("big.bin"), &big);
    write(&source.join("small.txt"), b"day 1\n");
    let delta = export(&scratch.path("d1"), "2", Some(&receipt));
    let key = SecretKey::load(&key_path, &mut |_| Err(ferry::Error::NoTrust)).unwrap();
    Case { _scratch: scratch, key, public, target, delta }
}

impl Case {
    /// A delta's manifest is stored compressed (formats/manifest-v3.md §7).
    fn manifest(&self) -> String {
        let path = self.delta.join("manifest.zst");
        let bytes = ferry::media::manifest_file::decompress(&std::fs::read(&path).unwrap(), &path).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    fn sign(&self, text: &str) {
        let (name, stored) = ferry::media::manifest_file::stored(text.as_bytes(), true).unwrap();
        std::fs::write(self.delta.join(name), stored).unwrap();
        std::fs::write(self.delta.join("manifest.sig"), self.key.sign_manifest(text.as_bytes())).unwrap();
    }

    fn patch_line(&self) -> Vec<String> {
        let text = self.manifest();
        let line = text.lines().find(|l| l.starts_with("patch ")).expect("a patch line").to_owned();
        line.split(' ').map(str::to_owned).collect()
    }

    fn patch_file(&self, digest: &str) -> Utf8PathBuf {
        self.delta.join("payload/.ferry/patches").join(digest)
    }

    /// Imports, expecting a refusal that mentions `expected`, and checks
    /// that the target did not change.
    fn refused(&self, expected: &str) {
        let before = tree_state_but_journal(&self.target);
        let run = run(&["import", self.delta.as_str(), self.target.as_str(), "--trust", self.public.as_str()]);
        let run = run.expect_code(3);
        assert!(run.stderr.contains(expected), "{expected:?} not in {}", run.stderr);
        assert_tree_unchanged(&before, &tree_state_but_journal(&self.target), expected);
        assert_eq!(last_journal_action(&self.target.join(".ferry")), "refusal", "{expected}: journaled");
    }
}

#[test]
fn a_signed_patch_that_produces_other_bytes_is_refused_by_the_digest_check() {
    let case = setup();
    let fields = case.patch_line();
    let old = std::fs::read(case.target.join("big.bin")).unwrap();
    let mut wrong = old.clone();
    wrong[300_000..303_000].copy_from_slice(&pseudo_random_bytes(7, 3000));
    let patch = ferry::delta::patch::make(&old, &wrong).unwrap().expect("a small patch");
    let digest = Digest::of(&patch).to_hex();
    std::fs::remove_file(case.patch_file(&fields[2])).unwrap();
    std::fs::write(case.patch_file(&digest), &patch).unwrap();
    let line = fields.join(" ");
    let crafted = format!("patch {} {digest} {} {}", patch.len(), fields[3], fields[4]);
    case.sign(&case.manifest().replace(&line, &crafted));
    case.refused("SHA-256");
}

#[test]
fn a_delta_naming_another_base_is_refused() {
    let case = setup();
    let text = case.manifest();
    let base = text.lines().find_map(|l| l.strip_prefix("base: ")).unwrap().to_owned();
    case.sign(&text.replace(&base, &Digest([1; 32]).to_hex()));
    case.refused("it applies to snapshot 010101010101");
}

#[test]
fn a_patch_for_a_file_that_is_not_patched_is_refused() {
    let case = setup();
    let text = case.manifest();
    let crafted = text.replace(" p big.bin\n", " - big.bin\n");
    assert_ne!(crafted, text);
    case.sign(&crafted);
    case.refused("not a `p` file");
}

#[test]
fn a_truncated_or_swapped_patch_file_is_refused() {
    let case = setup();
    let fields = case.patch_line();
    let path = case.patch_file(&fields[2]);
    let patch = std::fs::read(&path).unwrap();
    std::fs::write(&path, &patch[..patch.len() / 2]).unwrap();
    case.refused("the signed manifest says");
    let mut flipped = patch.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    case.refused("sha256");
}

/// D2a: a signed compressed file (a patch from no bytes) whose frame gives
/// other bytes of the signed size is refused by the digest check; one that
/// also keeps its patch from the base is refused as a malformed manifest.
#[test]
fn a_signed_compressed_file_that_gives_other_bytes_is_refused() {
    let case = setup();
    let fields = case.patch_line();
    let size = std::fs::metadata(case.target.join("big.bin")).unwrap().len();
    let compressed = ferry::delta::patch::compress(&vec![b'x'; size as usize]).unwrap().expect("compresses");
    let digest = Digest::of(&compressed).to_hex();
    std::fs::write(case.patch_file(&digest), &compressed).unwrap();
    let nothing = ferry::delta::patch::FROM_NOTHING.to_hex();
    let line = fields.join(" ");
    let crafted = format!("patch {} {digest} {nothing} {}", compressed.len(), fields[4]);
    let text = case.manifest();
    // Patch lines are sorted by (path, from): both lines are of big.bin.
    let mut lines = [line.clone(), crafted.clone()];
    lines.sort_by_key(|l| l.split(' ').nth(3).unwrap().to_owned());
    let both = text.replace(&line, &lines.join("\n")).replace("patches: 1\n", "patches: 2\n");
    case.sign(&both);
    case.refused("compressed (a patch from no bytes) and has other patch lines");
    std::fs::remove_file(case.patch_file(&fields[2])).unwrap();
    case.sign(&text.replace(&line, &crafted));
    case.refused("SHA-256");
}
