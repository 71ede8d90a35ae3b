//! The trust store, thresholds and `ferry sign` (formats/trust-store-v1.md,
//! formats/signature-v1.md §4.1, §5): TUF's attacks that apply to one
//! snapshot, each refused with the target unchanged, the store's rules, and
//! a second signature added to existing media.

mod support;
use camino::{Utf8Path, Utf8PathBuf};
use ferry::Error;
use ferry::backend::BackendOptions;
use ferry::ops::import::{ImportOptions, ImportReport, import};
use ferry::signing::{KeyId, PublicKey, SecretKey, SignatureFile, TrustStore, load_public};
use ferry::trust::{Scope, Store};
use support::*;

/// Repository of every snapshot here.
const REPOSITORY: &str = "av";

/// A key pair written to `NAME.key` and `NAME.pub`.
struct Key {
    secret: SecretKey,
    key_file: Utf8PathBuf,
    public: PublicKey,
}

impl Key {
    fn new(scratch: &Scratch, name: &str) -> Self {
        let secret = SecretKey::generate().unwrap();
        let key_file = scratch.path(&format!("{name}.key"));
        let pub_file = scratch.path(&format!("{name}.pub"));
        std::fs::write(&key_file, secret.secret_file(None).unwrap().as_bytes()).unwrap();
        std::fs::write(&pub_file, secret.public_file()).unwrap();
        let public = load_public(&pub_file).unwrap();
        Key { secret, key_file, public }
    }
    fn id(&self) -> KeyId {
        self.secret.id()
    }
}

/// Snapshot 1 installed under a 2-of-3 store (signed by k1 and k2);
/// snapshot 2 exported and signed by k1 alone.
struct Site {
    scratch: Scratch,
    keys: Vec<Key>,
    site: Utf8PathBuf,
    target: Utf8PathBuf,
    source1: Utf8PathBuf,
    media1: Utf8PathBuf,
    media2: Utf8PathBuf,
    snapshot2: Utf8PathBuf,
}

impl Site {
    fn new() -> Self {
        let scratch = Scratch::new();
        let keys: Vec<Key> = ["k1", "k2", "k3"].iter().map(|name| Key::new(&scratch, name)).collect();
        let mut store = Store::open(&scratch.path("trust-store")).unwrap();
        let scope = Scope::parse(REPOSITORY).unwrap();
        for key in &keys {
            assert!(store.add(key.public.clone(), scope.clone(), None).unwrap());
        }
        store.set_threshold(&scope, 2).unwrap();
        store.save().unwrap();
        let source1 = scratch.path("source1");
        small_repository(&source1);
        let source2 = scratch.path("source2");
        small_repository(&source2);
        write(&source2.join("bases/new.dat"), b"new in snapshot 2\n");
        let media1 = scratch.path("media1");
        export(&source1, &media1, &keys[0].key_file, REPOSITORY, 1);
        ferry::ops::sign::sign(std::slice::from_ref(&media1), &keys[1].secret).unwrap();
        let media2 = scratch.path("media2");
        let snapshot2 = export(&source2, &media2, &keys[0].key_file, REPOSITORY, 2);
        let site = scratch.path("site");
        std::fs::create_dir_all(&site).unwrap();
        let target = site.join("target");
        let site = Site { scratch, keys, site, target, source1, media1, media2, snapshot2 };
        let report = site.import(&site.media1, &site.policy()).unwrap();
        assert_eq!(report.snapshot.signed_by, format!("{},{}", site.keys[0].id(), site.keys[1].id()));
        assert_eq!(served_tree(&site.target), tree_state(&site.source1));
        site
    }

    fn policy(&self) -> TrustStore {
        Store::open(&self.scratch.path("trust-store")).unwrap().policy().unwrap()
    }

    fn import(&self, media: &Utf8Path, trust: &TrustStore) -> ferry::Result<ImportReport> {
        let backend = ferry::backend::open(self.target.as_str(), &BackendOptions::default())?;
        let options = ImportOptions::new(vec![media.to_owned()], ferry::clock::now());
        import(backend.as_ref(), &options, trust, &ferry::report::Silent)
    }

    /// Imports snapshot 2 under the store; returns the error, after checking
    /// that nothing at the site changed and snapshot 1 is still served.
    fn refused(&self, media: &Utf8Path) -> Error {
        let before = tree_state_but_journal(&self.site);
        let error = self.import(media, &self.policy()).expect_err("the import must be refused");
        assert_tree_unchanged(&before, &tree_state_but_journal(&self.site), "the site after a refused import");
        assert_eq!(last_journal_action(&self.target.join(".ferry")), "refusal", "the refusal is journaled");
        assert_eq!(served_tree(&self.target), tree_state(&self.source1));
        assert_eq!(error.class(), ferry::ErrorClass::Refused, "{error}");
        error
    }

    fn signature_file(&self) -> Utf8PathBuf {
        self.snapshot2.join("manifest.sig")
    }

    fn manifest2(&self) -> Vec<u8> {
        std::fs::read(self.snapshot2.join("manifest")).unwrap()
    }

    fn write_signatures(&self, lines: Vec<ferry::signing::SignatureLine>) {
        std::fs::write(self.signature_file(), SignatureFile { lines }.encode()).unwrap();
    }
}

#[test]
fn two_of_three_installs_when_two_keys_signed_and_names_them() {
    let site = Site::new();
    ferry::ops::sign::sign(std::slice::from_ref(&site.media2), &site.keys[2].secret).unwrap();
    let report = site.import(&site.media2, &site.policy()).unwrap();
    assert_eq!(report.snapshot.sequence, 2);
    assert_eq!(report.snapshot.signed_by, format!("{},{}", site.keys[0].id(), site.keys[2].id()));
}

#[test]
fn one_compromised_key_under_two_of_three_is_refused_naming_signed_and_missing_keys() {
    let site = Site::new();
    let error = site.refused(&site.media2);
    let Error::BelowThreshold { threshold, signed_by, still_needed, missing, .. } = &error else {
        panic!("expected BelowThreshold, got {error}");
    };
    assert_eq!((*threshold, *still_needed), (2, 1));
    assert_eq!(signed_by, &site.keys[0].id().to_string());
    for key in &site.keys[1..] {
        assert!(missing.contains(&key.id().to_string()), "{missing}");
    }
    let message = error.to_string();
    assert!(message.contains("1 more needed") && message.contains("manifest.sig"), "{message}");
}

#[test]
fn the_same_key_signing_twice_does_not_reach_the_threshold() {
    let site = Site::new();
    let line = site.keys[0].secret.signature_line(&site.manifest2());
    site.write_signatures(vec![line.clone(), line.clone(), line]);
    assert!(matches!(site.refused(&site.media2), Error::BelowThreshold { still_needed: 1, .. }));
}

#[test]
fn a_compromised_key_with_a_forged_line_for_another_key_is_refused() {
    let site = Site::new();
    let manifest = site.manifest2();
    let good = site.keys[0].secret.signature_line(&manifest);
    // The attacker holds k1 only: k2's line is k1's signature under k2's id.
    let forged = ferry::signing::SignatureLine { id: site.keys[1].id(), signature: good.signature };
    site.write_signatures(vec![good, forged]);
    let error = site.refused(&site.media2);
    assert!(
        matches!(&error, Error::BadSignature { key_id, .. } if *key_id == site.keys[1].id().to_string()),
        "{error}"
    );
}

#[test]
fn an_unsigned_snapshot_is_refused() {
    let site = Site::new();
    std::fs::remove_file(site.signature_file()).unwrap();
    assert!(matches!(site.refused(&site.media2), Error::MissingSignature(_) | Error::NoSnapshot(_)));
}

#[test]
fn signatures_by_untrusted_keys_are_refused_even_two_of_them() {
    let site = Site::new();
    let (k4, k5) = (Key::new(&site.scratch, "k4"), Key::new(&site.scratch, "k5"));
    let manifest = site.manifest2();
    site.write_signatures(vec![k4.secret.signature_line(&manifest), k5.secret.signature_line(&manifest)]);
    let error = site.refused(&site.media2);
    assert!(matches!(error, Error::UntrustedKey { .. }), "{error}");
}

#[test]
fn a_non_canonical_signature_with_s_at_least_the_group_order_is_refused() {
    let site = Site::new();
    let manifest = site.manifest2();
    let first = site.keys[0].secret.signature_line(&manifest);
    let mut second = site.keys[1].secret.signature_line(&manifest);
    // S + L is the same scalar modulo L, so a lax check that reduces S
    // would accept it: a second encoding of one signature (malleability).
    let mut bytes = second.signature.to_bytes();
    add_group_order(&mut bytes[32..]);
    second.signature = ed25519_dalek::Signature::from_bytes(&bytes);
    site.write_signatures(vec![first, second]);
    let error = site.refused(&site.media2);
    assert!(
        matches!(&error, Error::BadSignature { key_id, .. } if *key_id == site.keys[1].id().to_string()),
        "{error}"
    );
}

/// Adds the order L of the Ed25519 group to a little-endian 32-byte scalar.
fn add_group_order(scalar: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (byte, add) in scalar.iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(add) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 256 bits because S < L < 2^253");
}

#[test]
fn signatures_of_one_manifest_moved_to_another_are_refused() {
    let site = Site::new();
    // Snapshot 1's signature file carries valid signatures by k1 and k2, over
    // snapshot 1's manifest.
    std::fs::copy(site.media1.join("ferry/av/1/manifest.sig"), site.signature_file()).unwrap();
    let error = site.refused(&site.media2);
    assert!(matches!(error, Error::BadSignature { .. }), "{error}");
}

#[test]
fn a_key_trusted_for_another_repository_does_not_count() {
    let site = Site::new();
    let mut store = Store::open(&site.scratch.path("other-store")).unwrap();
    let other = Scope::parse("other").unwrap();
    store.add(site.keys[0].public.clone(), other, None).unwrap();
    let before = tree_state_but_journal(&site.site);
    let error = site.import(&site.media2, &store.policy().unwrap()).unwrap_err();
    assert_tree_unchanged(&before, &tree_state_but_journal(&site.site), "the site");
    assert!(error.to_string().contains("none for repository `av`"), "{error}");
}

#[test]
fn trust_files_keep_meaning_any_one_key_for_any_repository() {
    let site = Site::new();
    let trust = TrustStore::load(&[site.scratch.path("k1.pub")]).unwrap();
    let report = site.import(&site.media2, &trust).unwrap();
    assert_eq!(report.snapshot.signed_by, site.keys[0].id().to_string());
}

// ---------------------------------------------------------------------------
// The store's own rules

/// The identity point, of small order: a valid encoding, a weak key.
fn weak_key(scratch: &Scratch) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).unwrap();
    let path = scratch.path("weak.pub");
    std::fs::write(&path, format!("ferry public-key v1\nid: {}\nkey: {}\n", KeyId::of(&key), hex::encode(bytes)))
        .unwrap();
    load_public(&path).unwrap()
}

#[test]
fn small_order_keys_are_refused_when_added_and_when_read() {
    let scratch = Scratch::new();
    let dir = scratch.path("store");
    let weak = weak_key(&scratch);
    let mut store = Store::open(&dir).unwrap();
    let error = store.add(weak.clone(), Scope::Any, None).unwrap_err();
    assert!(error.to_string().contains("weak key"), "{error}");
    assert!(!dir.exists(), "nothing may be written");
    // A store edited by hand to hold one is refused as a whole.
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "ferry trust-store v1\nrepository: *\nthreshold: 1\nrotation: 0\nkey: {} {} -\n",
        weak.id,
        hex::encode(weak.key.as_bytes())
    );
    std::fs::write(dir.join("trust-store"), text).unwrap();
    let error = Store::open(&dir).unwrap_err();
    assert!(error.to_string().contains("weak key") && error.to_string().contains("line 5"), "{error}");
}

#[test]
fn the_store_file_is_canonical_and_round_trips() {
    let scratch = Scratch::new();
    let dir = scratch.path("store");
    let keys: Vec<Key> = ["a", "b"].iter().map(|name| Key::new(&scratch, name)).collect();
    let mut store = Store::open(&dir).unwrap();
    store.add(keys[1].public.clone(), Scope::parse("zeta").unwrap(), Some("bob".into())).unwrap();
    store.add(keys[0].public.clone(), Scope::parse("zeta").unwrap(), None).unwrap();
    store.add(keys[0].public.clone(), Scope::Any, Some("alice".into())).unwrap();
    assert!(!store.add(keys[0].public.clone(), Scope::Any, None).unwrap(), "adding twice changes nothing");
    store.set_threshold(&Scope::parse("zeta").unwrap(), 2).unwrap();
    store.save().unwrap();
    let text = std::fs::read_to_string(dir.join("trust-store")).unwrap();
    let mut ids = [keys[0].id().to_string(), keys[1].id().to_string()];
    ids.sort();
    assert!(text.starts_with("ferry trust-store v1\nrepository: *\nthreshold: 1\nrotation: 0\nkey: "), "{text}");
    assert!(text.contains(&format!("repository: zeta\nthreshold: 2\nrotation: 0\nkey: {} ", ids[0])), "{text}");
    let again = Store::open(&dir).unwrap();
    again.save().unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("trust-store")).unwrap(), text, "re-encoding changed the bytes");
    // Out of order sections are refused.
    let swapped = text.replacen("repository: *", "repository: zz", 1);
    std::fs::write(dir.join("trust-store"), swapped).unwrap();
    assert!(Store::open(&dir).unwrap_err().to_string().contains("out of order"));
}

#[test]
fn thresholds_and_removals_keep_every_section_satisfiable() {
    let scratch = Scratch::new();
    let keys: Vec<Key> = ["a", "b"].iter().map(|name| Key::new(&scratch, name)).collect();
    let mut store = Store::open(&scratch.path("store")).unwrap();
    let av = Scope::parse("av").unwrap();
    for key in &keys {
        store.add(key.public.clone(), av.clone(), None).unwrap();
    }
    assert!(store.set_threshold(&av, 3).is_err());
    assert!(store.set_threshold(&av, 0).is_err());
    assert!(store.set_threshold(&Scope::Any, 1).is_err(), "no section for *");
    store.set_threshold(&av, 2).unwrap();
    let error = store.remove(keys[0].id(), None).unwrap_err();
    assert!(error.to_string().contains("threshold"), "{error}");
    store.set_threshold(&av, 1).unwrap();
    assert_eq!(store.remove(keys[0].id(), None).unwrap(), vec![av.clone()]);
    assert_eq!(store.remove(keys[1].id(), Some(&av)).unwrap(), vec![av]);
    assert!(store.sections().is_empty(), "a section left without keys goes away");
    assert!(matches!(store.policy(), Err(Error::NoTrust)));
    assert!(store.remove(keys[1].id(), None).is_err(), "not in the store");
}

#[test]
fn the_store_folder_follows_flag_then_environment_then_xdg_then_home() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
    };
    let all = env(&[("FERRY_TRUST_STORE", "/env"), ("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/op")]);
    let dir = |explicit: Option<&str>, lookup: &dyn Fn(&str) -> Option<String>| {
        ferry::trust::store_dir(explicit.map(Utf8Path::new), lookup).unwrap()
    };
    assert_eq!(dir(Some("/flag"), &all), "/flag");
    assert_eq!(dir(None, &all), "/env");
    assert_eq!(dir(None, &env(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/op")])), "/xdg/ferry");
    assert_eq!(dir(None, &env(&[("XDG_CONFIG_HOME", "relative"), ("HOME", "/home/op")])), "/home/op/.config/ferry");
    assert!(ferry::trust::store_dir(None, &env(&[])).is_err());
}

// ---------------------------------------------------------------------------
// ferry sign

#[test]
fn sign_appends_one_line_on_every_drive_and_changes_nothing_else() {
    let scratch = Scratch::new();
    let (k1, k2) = (Key::new(&scratch, "k1"), Key::new(&scratch, "k2"));
    let source = scratch.path("source");
    small_repository(&source);
    let drive1 = scratch.path("drive1");
    export(&source, &drive1, &k1.key_file, REPOSITORY, 7);
    // The same snapshot on a second drive: its own manifest.sig.
    let drive2 = scratch.path("drive2");
    copy_tree(&drive1, &drive2);
    let sig = |drive: &Utf8Path| drive.join("ferry/av/7/manifest.sig");
    let old = std::fs::read(sig(&drive1)).unwrap();
    let before = (tree_state(&drive1), tree_state(&drive2));
    let drives = [drive1.clone(), drive2.clone()];
    let report = ferry::ops::sign::sign(&drives, &k2.secret).unwrap();
    assert_eq!(report.snapshots.len(), 1, "two drives, one snapshot");
    assert_eq!(report.snapshots[0].signed, vec![sig(&drive1), sig(&drive2)]);
    assert_eq!((report.snapshots[0].repository.as_str(), report.snapshots[0].sequence), (REPOSITORY, 7));
    for (drive, before) in [(&drive1, &before.0), (&drive2, &before.1)] {
        let new = std::fs::read(sig(drive)).unwrap();
        assert!(new.starts_with(&old), "the existing signature lines were rewritten");
        let added = String::from_utf8(new[old.len()..].to_vec()).unwrap();
        assert!(added.starts_with(&format!("signature: {} ", k2.id())) && added.lines().count() == 1, "{added}");
        let mut after = tree_state(drive);
        let mut expected = before.clone();
        after.remove("ferry/av/7/manifest.sig");
        expected.remove("ferry/av/7/manifest.sig");
        assert_tree_unchanged(&expected, &after, "the drive apart from manifest.sig");
    }
    // Both keys now verify; signing again changes nothing.
    let both = TrustStore::from_sets(vec![ferry::signing::KeySet {
        repository: None,
        keys: vec![k1.public.clone(), k2.public.clone()],
        threshold: 2,
    }])
    .unwrap();
    let verified =
        ferry::ops::verify::verify(&drives, &both, ferry::clock::now(), false, &ferry::report::Silent).unwrap();
    assert_eq!(verified.snapshots[0].signed_by, format!("{},{}", k1.id(), k2.id()));
    let signed = std::fs::read(sig(&drive1)).unwrap();
    let again = ferry::ops::sign::sign(&drives, &k2.secret).unwrap();
    assert!(again.snapshots[0].signed.is_empty() && again.snapshots[0].already_signed.len() == 2);
    assert_eq!(std::fs::read(sig(&drive1)).unwrap(), signed);
}

#[test]
fn sign_refuses_an_unfinished_export_and_writes_nothing() {
    let scratch = Scratch::new();
    let (k1, k2) = (Key::new(&scratch, "k1"), Key::new(&scratch, "k2"));
    let source = scratch.path("source");
    small_repository(&source);
    let drive = scratch.path("drive");
    let snapshot = export(&source, &drive, &k1.key_file, REPOSITORY, 1);
    std::fs::remove_file(snapshot.join("manifest.sig")).unwrap();
    let before = tree_state(&drive);
    let error = ferry::ops::sign::sign(std::slice::from_ref(&drive), &k2.secret).unwrap_err();
    assert!(matches!(error, Error::MissingSignature(_)), "{error}");
    assert_tree_unchanged(&before, &tree_state(&drive), "the drive");
}

/// Copies a tree of folders and regular files.
fn copy_tree(from: &Utf8Path, to: &Utf8Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in from.read_dir_utf8().unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// The commands, through the binary

#[test]
fn trust_commands_keep_the_store_and_import_uses_it_when_no_trust_is_given() {
    let scratch = Scratch::new();
    let store = scratch.path("store");
    let (k1, k2) = (Key::new(&scratch, "k1"), Key::new(&scratch, "k2"));
    let store_arg = ["--trust-store", store.as_str()];
    for (name, label) in [("k1", "alice"), ("k2", "bob")] {
        let key = scratch.path(&format!("{name}.pub"));
        let args = ["trust", "add", key.as_str(), "--repository", REPOSITORY, "--name", label];
        run(&[&args[..], &store_arg[..]].concat()).ok();
    }
    run(&[&["trust", "threshold", REPOSITORY, "2"][..], &store_arg[..]].concat()).ok();
    let list = run(&[&["trust", "list", "--json"][..], &store_arg[..]].concat()).ok();
    let listed: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(listed["sections"][0]["threshold"], 2, "{}", list.stdout);
    assert_eq!(listed["sections"][0]["keys"].as_array().unwrap().len(), 2, "{}", list.stdout);
    // A threshold above the number of keys is a usage error; nothing changes.
    let before = std::fs::read(store.join("trust-store")).unwrap();
    run(&[&["trust", "threshold", REPOSITORY, "3"][..], &store_arg[..]].concat()).expect_code(2);
    assert_eq!(std::fs::read(store.join("trust-store")).unwrap(), before);

    let source = scratch.path("source");
    small_repository(&source);
    let media = scratch.path("media");
    export(&source, &media, &k1.key_file, REPOSITORY, 1);
    let target = scratch.path("site/target");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    // One signature of two: refused (exit 3), naming the key still needed.
    let refused = run(&["import", media.as_str(), target.as_str(), "--trust-store", store.as_str()]).expect_code(3);
    assert!(
        refused.stderr.contains(&k2.id().to_string()) && refused.stderr.contains("1 more needed"),
        "{}",
        refused.stderr
    );
    assert!(!target.exists(), "a refused import must not create the target");
    // The second person signs; now it installs. FERRY_TRUST_STORE works as the option does.
    run(&["sign", media.as_str(), "--key", k2.key_file.as_str()]).ok();
    let verify = ferry().args(["verify", media.as_str()]).env("FERRY_TRUST_STORE", store.as_str()).output().unwrap();
    let verify = Run::from(verify).ok();
    assert!(verify.stdout.contains(&format!("{},{}", k1.id(), k2.id())), "{}", verify.stdout);
    run(&["import", media.as_str(), target.as_str(), "--trust-store", store.as_str(), "-q"]).ok();
    assert_eq!(served_tree(&target), tree_state(&source));
    // --trust still means any one of the keys given, for any repository.
    run(&["verify", media.as_str(), "--trust", scratch.path("k1.pub").as_str()]).ok();
    // Removing a key below the threshold is refused; lowering it first works.
    let key_id = k2.id().to_string();
    run(&[&["trust", "remove", key_id.as_str()][..], &store_arg[..]].concat()).expect_code(2);
    run(&[&["trust", "threshold", REPOSITORY, "1"][..], &store_arg[..]].concat()).ok();
    run(&[&["trust", "remove", key_id.as_str()][..], &store_arg[..]].concat()).ok();
}

#[test]
fn an_empty_or_missing_store_is_no_trust() {
    let scratch = Scratch::new();
    let media = scratch.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let result = run(&["verify", media.as_str(), "--trust-store", scratch.path("none").as_str()]).expect_code(2);
    assert!(result.stderr.contains("ferry trust add"), "{}", result.stderr);
}

// ---------------------------------------------------------------------------
// Rotation statements (formats/rotation-v1.md)

impl Site {
    /// Writes rotation `number` onto snapshot 2's drive, signed by `signers`.
    fn rotation(&self, number: u64, add: &[&str], remove: &[&Key], threshold: usize, signers: &[&Key]) {
        let options = ferry::ops::rotate::RotateOptions {
            media: self.media2.clone(),
            repository: REPOSITORY.into(),
            number,
            threshold,
            add: add.iter().map(|name| self.scratch.path(&format!("{name}.pub"))).collect(),
            remove: remove.iter().map(|key| key.id().to_string()).collect(),
            created: ferry::clock::now(),
        };
        let keys: Vec<SecretKey> = signers
            .iter()
            .map(|key| SecretKey::load(&key.key_file, &mut |_| panic!("no passphrase")).unwrap())
            .collect();
        ferry::ops::rotate::rotate(&options, &keys).unwrap();
    }

    fn store_dir(&self) -> Utf8PathBuf {
        self.scratch.path("trust-store")
    }

    fn apply_rotations(&self) -> ferry::Result<Vec<ferry::trust::rotation::AppliedRotation>> {
        ferry::trust::rotation::apply_from_media(&self.store_dir(), std::slice::from_ref(&self.media2))
    }

    /// Applying the rotations on snapshot 2's drive is refused and changes
    /// neither the store nor the site.
    fn rotation_refused(&self) -> Error {
        let store = std::fs::read(self.store_dir().join("trust-store")).unwrap();
        let before = tree_state(&self.site);
        let error = self.apply_rotations().expect_err("the rotation must be refused");
        assert_eq!(std::fs::read(self.store_dir().join("trust-store")).unwrap(), store, "the store changed");
        assert_tree_unchanged(&before, &tree_state(&self.site), "the site");
        error
    }
}

#[test]
fn a_rotation_replaces_a_key_on_import_and_the_old_key_no_longer_counts() {
    let site = Site::new();
    let k4 = Key::new(&site.scratch, "k4");
    site.rotation(1, &["k4"], &[&site.keys[0]], 2, &[&site.keys[1], &site.keys[2]]);
    // Snapshot 2 is signed by k1 and k2: enough before the rotation.
    ferry::ops::sign::sign(std::slice::from_ref(&site.media2), &site.keys[1].secret).unwrap();
    let before = tree_state_but_journal(&site.site);
    let store = site.store_dir();
    let import = ["import", site.media2.as_str(), site.target.as_str(), "--trust-store", store.as_str()];
    let refused = run(&import).expect_code(3);
    assert!(refused.stderr.contains("applied rotation 1 of av"), "{}", refused.stderr);
    assert!(refused.stderr.contains("1 more needed"), "{}", refused.stderr);
    assert_tree_unchanged(&before, &tree_state_but_journal(&site.site), "the site after the refused import");
    // The rotation and the refusal are journaled at the target, in order.
    let journal = std::fs::read_to_string(site.target.join(".ferry/audit")).unwrap();
    let actions: Vec<&str> = journal.lines().skip(1).map(|line| line.split(' ').nth(3).unwrap()).collect();
    assert_eq!(actions[actions.len() - 2..], ["rotation", "refusal"], "{journal}");
    let sections = Store::open(&store).unwrap();
    let section = &sections.sections()[0];
    assert_eq!((section.rotation, section.threshold, section.keys.len()), (1, 2, 3));
    assert!(section.keys.iter().all(|stored| stored.key.id != site.keys[0].id()), "k1 is still trusted");
    // The new key signs: now it installs, and the rotation is not applied twice.
    ferry::ops::sign::sign(std::slice::from_ref(&site.media2), &k4.secret).unwrap();
    let imported = run(&import).ok();
    assert!(!imported.stderr.contains("applied rotation"), "{}", imported.stderr);
    assert!(served_tree(&site.target) != tree_state(&site.source1), "snapshot 2 was not installed");
}

#[test]
fn a_rotation_signed_by_too_few_current_keys_is_refused() {
    let site = Site::new();
    site.rotation(1, &[], &[&site.keys[2]], 1, &[&site.keys[0]]);
    let error = site.rotation_refused();
    assert!(matches!(error, Error::BelowThreshold { .. }), "{error}");
}

#[test]
fn a_rotation_that_would_leave_no_usable_key_is_refused() {
    let site = Site::new();
    site.rotation(1, &[], &[&site.keys[0], &site.keys[1], &site.keys[2]], 1, &[&site.keys[0], &site.keys[1]]);
    let error = site.rotation_refused();
    assert!(error.to_string().contains("no usable key set"), "{error}");
}

#[test]
fn a_changed_rotation_statement_is_refused() {
    let site = Site::new();
    site.rotation(1, &[], &[&site.keys[2]], 2, &[&site.keys[0], &site.keys[1]]);
    let path = site.media2.join("ferry-rotations/av/1");
    let text = std::fs::read_to_string(&path).unwrap().replace("threshold: 2", "threshold: 1");
    std::fs::write(&path, text).unwrap();
    assert!(matches!(site.rotation_refused(), Error::BadSignature { .. }));
}

#[test]
fn two_rotations_on_one_drive_apply_in_order() {
    let site = Site::new();
    let k4 = Key::new(&site.scratch, "k4");
    // 1: add k4, need 3 of 4 (signed by 2 of the 3 keys trusted now).
    site.rotation(1, &["k4"], &[], 3, &[&site.keys[0], &site.keys[1]]);
    // 2: signed under rotation 1's rules (3 keys): drop k1, need 2.
    site.rotation(2, &[], &[&site.keys[0]], 2, &[&site.keys[1], &site.keys[2], &k4]);
    let applied = site.apply_rotations().unwrap();
    assert_eq!(applied.iter().map(|a| a.number).collect::<Vec<_>>(), [1, 2]);
    let store = Store::open(&site.store_dir()).unwrap();
    let section = &store.sections()[0];
    assert_eq!((section.rotation, section.threshold, section.keys.len()), (2, 2, 3));
    assert!(site.apply_rotations().unwrap().is_empty(), "applied rotations are skipped");
}
