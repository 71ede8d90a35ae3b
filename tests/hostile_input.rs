//! Hostile input: property-based tests over every decoder ferry applies to
//! bytes it did not write itself in this run (issue 5, "Hostile input").
//!
//! For each decoder, on arbitrary bytes and on valid encodings with random
//! mutations (bit flips, truncation, line duplication, removal and swaps,
//! huge numbers, non-UTF-8 bytes, CR LF line ends, very long lines), the
//! properties are: it never panics (proptest turns a panic into a failure
//! with a minimized input), it returns a typed `ferry::Error` of the kind the
//! caller expects, and whatever it accepts survives an encode/decode round
//! trip. Key files, trust stores and signatures go through real files where
//! ferry reads them from files.
//!
//! The default case counts keep this file well under 30 s in a debug build;
//! `PROPTEST_CASES=N` overrides every count (for long runs). The
//! coverage-guided counterpart is `fuzz/` (docs/fuzzing.md).

use camino::{Utf8Path, Utf8PathBuf};
use ferry::Error;
use ferry::backend::location::{self as spec, Location};
use ferry::clock;
use ferry::digest::Digest;
use ferry::install::state::{InstalledState, Journal, JournalKind, Step, SwitchKind};
use ferry::manifest::{Entry, EntryKind, FileEntry, Manifest, RepositoryId};
use ferry::rel_path::RelPath;
use ferry::signing::{self, SecretKey, TrustStore};
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::BTreeSet;
use std::sync::LazyLock;
use zeroize::Zeroizing;

// ---------------------------------------------------------------------------
// Samples and helpers

fn samples() -> Utf8PathBuf {
    Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn read(path: &Utf8Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

static SAMPLE_MANIFEST: LazyLock<Vec<u8>> = LazyLock::new(|| read(&samples().join("media/ferry/sample/1/manifest")));
static SAMPLE_SIGNATURE: LazyLock<Vec<u8>> =
    LazyLock::new(|| read(&samples().join("media/ferry/sample/1/manifest.sig")));
const SIGNER: &str = "TEST-ONLY-DO-NOT-USE";
const PROTECTED: &str = "TEST-ONLY-DO-NOT-USE-protected";
const PROTECTED_PASSPHRASE: &[u8] = b"test-only passphrase, not secret";

fn key_file(name: &str) -> Utf8PathBuf {
    samples().join("keys").join(name)
}

/// The trust store of the sample media: the TEST-ONLY signer and the
/// protected key (not the untrusted one).
static TRUST: LazyLock<TrustStore> = LazyLock::new(|| {
    TrustStore::load(&[key_file(&format!("{SIGNER}.pub")), key_file(&format!("{PROTECTED}.pub"))]).unwrap()
});

static SIGNING_KEY: LazyLock<SecretKey> = LazyLock::new(|| {
    SecretKey::load(&key_file(&format!("{SIGNER}.key")), &mut |_| panic!("the sample signer has no passphrase"))
        .unwrap()
});

fn origin() -> &'static Utf8Path {
    Utf8Path::new("hostile/input")
}

/// A scratch folder for the decoders that read files.
struct Scratch {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("ferry-hostile-").tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        Scratch { _dir: dir, root }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Utf8PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

/// Case counts: modest by default, `PROPTEST_CASES` for long runs.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    // No persistence file next to the sources: real findings are kept as
    // named regression tests at the end of this file instead.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Decoders that read in-memory bytes report bad input as `Error::Format`.
fn assert_format_error(error: &Error) {
    assert!(matches!(error, Error::Format { .. }), "expected a format error, got {error:?}");
    assert!(!error.to_string().is_empty());
}

// ---------------------------------------------------------------------------
// Mutations of valid encodings

/// Numbers that break parsers: u64 limits and beyond, signs, leading zeros.
const HUGE_NUMBERS: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999999999999999",
    "9223372036854775807",
    "9223372036854775808",
    "-1",
    "+1",
    "0",
    "00",
    "007",
    "1e9",
    "0x10",
    "",
];

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    NonUtf8(Index, u8),
    DuplicateLine(Index),
    RemoveLine(Index),
    SwapLines(Index, Index),
    HugeNumber(Index, &'static str),
    CrLfEverywhere,
    CrLfOneLine(Index),
    LongLine(Index, usize, u8),
    ExtendLine(Index, usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte(at, byte)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1usize..40).prop_map(|(at, n)| Mutation::Delete(at, n)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        1 => (any::<Index>(), 0x80u8..=0xff).prop_map(|(at, byte)| Mutation::NonUtf8(at, byte)),
        2 => any::<Index>().prop_map(Mutation::DuplicateLine),
        2 => any::<Index>().prop_map(Mutation::RemoveLine),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (any::<Index>(), prop::sample::select(HUGE_NUMBERS)).prop_map(|(at, n)| Mutation::HugeNumber(at, n)),
        1 => Just(Mutation::CrLfEverywhere),
        1 => any::<Index>().prop_map(Mutation::CrLfOneLine),
        1 => (any::<Index>(), 4_000usize..70_000, prop::sample::select(&b"a/.x0 \0"[..]))
            .prop_map(|(at, n, b)| Mutation::LongLine(at, n, b)),
        1 => (any::<Index>(), 100usize..70_000, prop::sample::select(&b"a/.x0 \0"[..]))
            .prop_map(|(at, n, b)| Mutation::ExtendLine(at, n, b)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
}

fn join_lines(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.join(&b'\n')
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match self {
            Mutation::FlipBit(at, bit) if len > 0 => bytes[at.index(len)] ^= 1 << bit,
            Mutation::SetByte(at, byte) if len > 0 => bytes[at.index(len)] = *byte,
            Mutation::NonUtf8(at, byte) if len > 0 => bytes[at.index(len)] = *byte,
            Mutation::Truncate(at) => bytes.truncate(at.index(len + 1)),
            Mutation::Delete(at, n) => {
                let start = at.index(len + 1);
                bytes.drain(start..(start + n).min(len));
            }
            Mutation::Insert(at, inserted) => {
                let at = at.index(len + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::DuplicateLine(at) => {
                let mut lines = split_lines(bytes);
                let at = at.index(lines.len());
                lines.insert(at, lines[at].clone());
                *bytes = join_lines(&lines);
            }
            Mutation::RemoveLine(at) => {
                let mut lines = split_lines(bytes);
                lines.remove(at.index(lines.len()));
                *bytes = join_lines(&lines);
            }
            Mutation::SwapLines(a, b) => {
                let mut lines = split_lines(bytes);
                let n = lines.len();
                lines.swap(a.index(n), b.index(n));
                *bytes = join_lines(&lines);
            }
            Mutation::HugeNumber(at, number) => {
                // Replace one run of ASCII digits with `number`.
                let mut runs = Vec::new();
                let mut i = 0;
                while i < len {
                    if bytes[i].is_ascii_digit() {
                        let start = i;
                        while i < len && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                        runs.push(start..i);
                    } else {
                        i += 1;
                    }
                }
                if !runs.is_empty() {
                    let run = runs[at.index(runs.len())].clone();
                    bytes.splice(run, number.bytes());
                }
            }
            Mutation::CrLfEverywhere => {
                let lines = split_lines(bytes);
                *bytes = lines.join(&b"\r\n"[..]);
            }
            Mutation::CrLfOneLine(at) => {
                let mut lines = split_lines(bytes);
                let at = at.index(lines.len());
                lines[at].push(b'\r');
                *bytes = join_lines(&lines);
            }
            Mutation::LongLine(at, n, byte) => {
                let mut lines = split_lines(bytes);
                let at = at.index(lines.len() + 1);
                lines.insert(at, vec![*byte; *n]);
                *bytes = join_lines(&lines);
            }
            Mutation::ExtendLine(at, n, byte) => {
                let mut lines = split_lines(bytes);
                let at = at.index(lines.len());
                lines[at].extend(std::iter::repeat_n(*byte, *n));
                *bytes = join_lines(&lines);
            }
            Mutation::FlipBit(..) | Mutation::SetByte(..) | Mutation::NonUtf8(..) => {}
        }
    }
}

fn mutate(valid: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for mutation in mutations {
        mutation.apply(&mut bytes);
    }
    bytes
}

/// Arbitrary bytes, sometimes behind the first lines of a valid file so the
/// decoder gets past its magic line.
fn bytes_after(valid: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (any::<Index>(), prop::collection::vec(any::<u8>(), 0..512)).prop_map(move |(cut, tail)| {
        let mut bytes = valid[..cut.index(valid.len() + 1)].to_vec();
        bytes.extend(tail);
        bytes
    })
}

fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

// ---------------------------------------------------------------------------
// Generators of valid values

fn timestamp(seconds: i64) -> jiff::Timestamp {
    clock::parse_flexible(&format!("@{seconds}")).unwrap()
}

/// Whole seconds from 1970 to the end of year 9999 (what `clock::format` writes as `YYYY`).
fn a_time() -> impl Strategy<Value = jiff::Timestamp> {
    (0i64..=253_402_300_799).prop_map(timestamp)
}

fn repository_id() -> impl Strategy<Value = RepositoryId> {
    "[a-z0-9][a-z0-9._-]{0,63}".prop_map(|text| RepositoryId::new(&text).unwrap())
}

fn a_digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

/// One path component: mostly tame, sometimes with spaces, dots, Unicode.
fn component() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z]{1,3}", "[a-zA-Z0-9_ .ü€-]{1,12}", "[a-z0-9]{1,4}\\.[a-z]{1,3}", "\\PC{1,6}", "[a-z]{250,255}",]
}

fn rel_path() -> impl Strategy<Value = RelPath> {
    prop::collection::vec(component(), 1..5)
        .prop_filter_map("not a valid path", |parts| RelPath::new(&parts.join("/")).ok())
}

fn file_entry() -> impl Strategy<Value = FileEntry> {
    (prop_oneof![0u64..100_000, Just(u64::MAX / 64)], a_digest(), any::<bool>(), any::<bool>())
        .prop_map(|(size, digest, executable, index)| FileEntry { size, digest, executable, index })
}

/// A valid manifest: entries sorted by path bytes, every parent folder
/// listed, no entry below a file. File sizes stay small enough that their
/// sum fits a u64 (see the payload_bytes regression below).
fn a_manifest() -> impl Strategy<Value = Manifest> {
    (
        repository_id(),
        any::<u64>(),
        a_time(),
        prop::option::of(a_time()),
        prop::collection::vec((rel_path(), file_entry()), 0..24),
    )
        .prop_map(|(repository, sequence, created, expires, files)| {
            let mut directories = BTreeSet::new();
            for (path, _) in &files {
                let mut parent = path.parent();
                while let Some(dir) = parent {
                    parent = dir.parent();
                    directories.insert(dir.as_str().to_owned());
                }
            }
            let mut entries: Vec<Entry> = directories
                .iter()
                .map(|dir| Entry { path: RelPath::new(dir).unwrap(), kind: EntryKind::Dir })
                .collect();
            let mut seen = directories.clone();
            for (path, file) in files {
                if seen.insert(path.as_str().to_owned()) {
                    entries.push(Entry { path, kind: EntryKind::File(file) });
                }
            }
            entries.sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
            Manifest { repository, sequence, created, expires, layout: ferry::manifest::Layout::Tree, entries }
        })
}

fn installed_state() -> impl Strategy<Value = InstalledState> {
    (
        repository_id(),
        any::<u64>(),
        a_digest(),
        a_time(),
        prop::option::of(a_time()),
        a_time(),
        prop::bool::ANY.prop_map(|ordered| if ordered { SwitchKind::Ordered } else { SwitchKind::Tree }),
        prop::option::of(a_digest()),
        prop::option::of(any::<u64>()),
    )
        .prop_map(
            |(repository, sequence, snapshot, created, expires, installed, switch, previous, rolled_back_from)| {
                InstalledState {
                    repository,
                    sequence,
                    snapshot,
                    created,
                    expires,
                    installed,
                    switch,
                    previous,
                    rolled_back_from,
                }
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        rel_path().prop_map(Step::MakeDir),
        rel_path().prop_map(Step::Save),
        ("staging/[0-9]{6}", rel_path()).prop_map(|(from, to)| Step::Put { from, to }),
        rel_path().prop_map(Step::Restore),
        rel_path().prop_map(Step::Delete),
        rel_path().prop_map(Step::RemoveDir),
        Just(Step::Barrier),
    ]
}

fn a_journal() -> impl Strategy<Value = Journal> {
    (a_digest(), any::<bool>(), prop::collection::vec(step(), 0..20)).prop_map(|(snapshot, rollback, steps)| Journal {
        snapshot,
        kind: if rollback { JournalKind::Rollback } else { JournalKind::Import },
        steps,
    })
}

// ---------------------------------------------------------------------------
// Properties of each decoder

/// Decodes manifest bytes the only way the library allows: through the
/// verifier, here with a fresh signature by the TEST-ONLY key.
fn decode_signed(bytes: &[u8], origin: &Utf8Path) -> ferry::Result<Manifest> {
    let signature = SIGNING_KEY.sign_manifest(bytes);
    signing::verify(bytes.to_vec(), origin, signature, origin, &TRUST).map(|verified| verified.manifest().clone())
}

/// Checks one manifest decode: a typed error, or a manifest whose encoding
/// is exactly the accepted bytes (the format is canonical) and decodes back.
fn check_manifest(bytes: &[u8]) -> Option<Manifest> {
    match decode_signed(bytes, origin()) {
        Ok(manifest) => {
            assert_eq!(manifest.encode(), bytes, "accepted manifest bytes are not canonical");
            assert_eq!(decode_signed(&manifest.encode(), origin()).unwrap(), manifest);
            // What callers compute from every accepted manifest (verify,
            // export, media), unless the sizes overflow: that panic is the
            // finding isolated in panic_found_accepted_manifest_payload_total_overflows.
            if manifest.files().try_fold(0u64, |sum, (_, file)| sum.checked_add(file.size)).is_some() {
                let _ = manifest.payload_bytes();
            }
            Some(manifest)
        }
        Err(error) => {
            assert_format_error(&error);
            None
        }
    }
}

fn check_state(bytes: &[u8]) {
    match InstalledState::decode(bytes, origin()) {
        Ok(state) => assert_eq!(InstalledState::decode(&state.encode(), origin()).unwrap(), state),
        Err(error) => assert_format_error(&error),
    }
}

fn check_journal(bytes: &[u8]) {
    match Journal::decode(bytes, origin()) {
        Ok(Some(journal)) => {
            assert_eq!(Journal::decode(&journal.encode(), origin()).unwrap(), Some(journal.clone()));
            // A whole journal's steps only name safe paths and staging files.
            for step in &journal.steps {
                if let Step::Put { from, .. } = step {
                    assert!(from.starts_with("staging/") && !from.split('/').any(|c| c.is_empty() || c == ".."));
                }
            }
        }
        Ok(None) => assert!(!bytes.ends_with(b"\nend\n")),
        Err(error) => assert_format_error(&error),
    }
}

/// The verification outcome: success only for the exact signed bytes.
fn check_verify(manifest: &[u8], signature: &[u8], signed_manifest: &[u8]) {
    let result = signing::verify(
        manifest.to_vec(),
        Utf8Path::new("hostile/manifest"),
        signature.to_vec(),
        Utf8Path::new("hostile/manifest.sig"),
        &TRUST,
    );
    match result {
        Ok(verified) => {
            assert_eq!(manifest, signed_manifest, "a changed manifest verified");
            assert_eq!(verified.manifest_bytes(), signed_manifest);
            assert_eq!(verified.signers(), [SIGNING_KEY.id()]);
        }
        Err(error) => assert!(
            matches!(error, Error::Format { .. } | Error::UntrustedKey { .. } | Error::BadSignature { .. }),
            "unexpected error kind {error:?}"
        ),
    }
}

fn check_public_key(scratch: &Scratch, bytes: &[u8], original: Option<&signing::PublicKey>) {
    let path = scratch.write("key.pub", bytes);
    match signing::load_public(&path) {
        Ok(key) => {
            assert_eq!(signing::KeyId::of(&key.key), key.id);
            if let Some(original) = original {
                assert_eq!(key.key, original.key, "a changed .pub file loaded as a different key");
            }
        }
        Err(error) => assert_format_error(&error),
    }
}

fn check_secret_key(scratch: &Scratch, bytes: &[u8], passphrase: Option<&[u8]>) -> Option<signing::KeyId> {
    let path = scratch.write("key.key", bytes);
    let mut ask = |_| match passphrase {
        Some(p) => Ok(Zeroizing::new(p.to_vec())),
        None => Err(Error::Passphrase("no passphrase in this test".into())),
    };
    match SecretKey::load(&path, &mut ask) {
        Ok(key) => Some(key.id()),
        Err(error) => {
            assert!(
                matches!(error, Error::Format { .. } | Error::Passphrase(_) | Error::WrongPassphrase { .. }),
                "unexpected error kind {error:?}"
            );
            None
        }
    }
}

fn check_trust_store(scratch: &Scratch, files: &[Vec<u8>]) {
    let dir = scratch.root.join("trust");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    for (i, bytes) in files.iter().enumerate() {
        std::fs::write(dir.join(format!("k{i}.pub")), bytes).unwrap();
    }
    match TrustStore::load(&[dir]) {
        Ok(store) => {
            assert!(!store.keys().is_empty());
            for key in store.keys() {
                assert_eq!(signing::KeyId::of(&key.key), key.id);
            }
        }
        Err(error) => assert!(matches!(error, Error::Format { .. } | Error::NoTrust), "unexpected error {error:?}"),
    }
}

fn check_rel_path(text: &str) {
    match RelPath::new(text) {
        Ok(path) => {
            assert_eq!(path.as_str(), text);
            assert!(text.len() <= ferry::rel_path::MAX_PATH_BYTES);
            assert!(!text.starts_with('/'));
            for component in text.split('/') {
                assert!(!component.is_empty() && component != "." && component != "..", "{text:?}");
                assert!(!component.chars().any(char::is_control), "{text:?}");
                assert!(!component.ends_with('.') && !component.ends_with(' '), "{text:?}");
            }
            assert!(!text.split('/').next().unwrap().eq_ignore_ascii_case(".ferry"));
            let _ = (path.parent(), path.depth(), path.file_name());
        }
        Err(message) => assert!(!message.is_empty()),
    }
}

fn check_target_spec(text: &str) {
    for implicit in [false, true] {
        match spec::parse(text, implicit) {
            Ok(Location::Ftp(url)) => {
                assert!(!url.host.is_empty());
                assert!(!url.path.split('/').any(|c| c == ".."), "`..` survived: {url:?}");
                assert!(url.path.is_empty() || url.path.starts_with('/'));
                assert!(!url.path.ends_with('/'));
                let _ = url.to_string();
            }
            Ok(Location::Dir(path)) => assert_eq!(path.as_str(), text),
            Err(error) => {
                assert!(matches!(error, Error::InvalidArgument(_)), "unexpected error {error:?}");
                // A password given in an ftp:// or ftps:// URL never appears
                // in the message. (Other schemes: see
                // finding_unsupported_scheme_error_echoes_the_password.)
                if let Some(password) = url_password(text)
                    && (text.starts_with("ftp://") || text.starts_with("ftps://"))
                {
                    assert!(!error.to_string().contains(password), "password echoed: {error}");
                }
            }
        }
    }
    let _ = spec::redact(text);
}

/// The password of a `scheme://user:password@host/...` text, if it has one
/// long enough to be looked for in a message (the user name does not count).
fn url_password(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    (password.len() >= 4 && !user.contains(password) && !authority.rsplit_once('@')?.1.contains(password))
        .then_some(password)
}

fn check_clock(text: &str) {
    if let Some(time) = clock::parse(text) {
        assert_eq!(clock::format(time), text);
    }
    if let Ok(duration) = clock::parse_duration(text) {
        assert!(duration.as_secs() >= 0);
        let _ = clock::describe(duration);
    }
    if let Ok(time) = clock::parse_flexible(text) {
        let _ = clock::format(time);
    }
}

fn check_text(text: &str) {
    check_rel_path(text);
    check_target_spec(text);
    check_clock(text);
}

/// Text with the characters the one-line parsers care about.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9/.:@%\\[\\] \\\\<>|?*\\x00-\\x1f\u{7f}¹²³ü-]{0,40}",
        "(ftp|ftps|http)://[a-z:@%0-9A-F.\\[\\]/]{0,30}",
        "(CON|con|Lpt1|COM²|conin\\$|\\.ferry|\\.\\.|\\.)(\\.[a-z]{1,3})?(/[a-z]{1,3}){0,2}",
        "@-?[0-9]{1,25}",
        "[0-9]{1,25}[smhdwy]?",
        "[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})?",
        "[a-z]{4090,4100}",
    ]
}

/// Valid strings for the text parsers, to be mutated.
const VALID_TEXTS: &[&str] = &[
    "bases/daily/2026-11-24.dat",
    "bases/ünïcødé.dat",
    "x y/notes for today.txt",
    "ftp://upd@127.0.0.1:2121/pub/av/",
    "ftps://[::1]:990/x%20y",
    "ftp://host",
    "/srv/updates",
    "2026-11-24T13:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-11-24T13:00:00+01:00",
    "@1790000000",
    "90s",
    "7d",
    "2w",
];

proptest! {
    #![proptest_config(config(256))]

    // --- Manifest::decode ---------------------------------------------------

    #[test]
    fn manifest_round_trips(manifest in a_manifest()) {
        let bytes = manifest.encode();
        let decoded = decode_signed(&bytes, origin()).unwrap();
        prop_assert_eq!(&decoded, &manifest);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn manifest_refuses_arbitrary_bytes(bytes in arbitrary_bytes()) {
        prop_assert!(check_manifest(&bytes).is_none());
    }

    #[test]
    fn manifest_survives_garbage_after_a_valid_prefix(bytes in bytes_after(b"ferry manifest v1\nrepository: r\nsequence: 1\ncreated: 2026-11-24T13:00:00Z\nexpires: never\nlayout: tree\nbase: none\nentries: 2\ndir a\nfile 3 0101010101010101010101010101010101010101010101010101010101010101 x a/b\n")) {
        check_manifest(&bytes);
    }

    #[test]
    fn manifest_survives_mutations_of_the_sample(mutations in mutations()) {
        check_manifest(&mutate(&SAMPLE_MANIFEST, &mutations));
    }

    #[test]
    fn manifest_survives_mutations_of_generated_manifests(manifest in a_manifest(), mutations in mutations()) {
        check_manifest(&mutate(&manifest.encode(), &mutations));
    }

    // --- signing::verify (signature file and manifest bytes) ----------------

    #[test]
    fn signature_refuses_arbitrary_bytes(bytes in arbitrary_bytes()) {
        check_verify(&SAMPLE_MANIFEST, &bytes, &SAMPLE_MANIFEST);
    }

    #[test]
    fn signature_survives_garbage_after_a_valid_prefix(bytes in bytes_after(b"ferry signature v1\nsignature: f6d0d56e4b3f069e adae748741e60d4223055a440a27f036df19c961c95ceef932f54be9c697557e662aa9aa7c9ae8ec8f14401647c9265565b84f912657e33a711b83ce23d00b05\n")) {
        check_verify(&SAMPLE_MANIFEST, &bytes, &SAMPLE_MANIFEST);
    }

    #[test]
    fn mutated_signature_never_verifies_other_bytes(mutations in mutations()) {
        check_verify(&SAMPLE_MANIFEST, &mutate(&SAMPLE_SIGNATURE, &mutations), &SAMPLE_MANIFEST);
    }

    #[test]
    fn mutated_manifest_never_verifies(mutations in mutations()) {
        check_verify(&mutate(&SAMPLE_MANIFEST, &mutations), &SAMPLE_SIGNATURE, &SAMPLE_MANIFEST);
    }

    #[test]
    fn signed_generated_manifest_verifies_only_unchanged(manifest in a_manifest(), mutations in mutations()) {
        let bytes = manifest.encode();
        let signature = SIGNING_KEY.sign_manifest(&bytes);
        check_verify(&bytes, &signature, &bytes);
        prop_assert!(signing::verify(bytes.clone(), origin(), signature.clone(), origin(), &TRUST).is_ok());
        check_verify(&mutate(&bytes, &mutations), &signature, &bytes);
    }

    // --- InstalledState::decode and Journal::decode -------------------------

    #[test]
    fn state_round_trips(state in installed_state()) {
        prop_assert_eq!(InstalledState::decode(&state.encode(), origin()).unwrap(), state);
    }

    #[test]
    fn state_refuses_arbitrary_bytes(bytes in arbitrary_bytes()) {
        prop_assert!(InstalledState::decode(&bytes, origin()).is_err());
        check_state(&bytes);
    }

    #[test]
    fn state_survives_mutations(state in installed_state(), mutations in mutations()) {
        check_state(&mutate(&state.encode(), &mutations));
    }

    #[test]
    fn journal_round_trips(journal in a_journal()) {
        prop_assert_eq!(Journal::decode(&journal.encode(), origin()).unwrap(), Some(journal));
    }

    #[test]
    fn journal_refuses_arbitrary_bytes(bytes in arbitrary_bytes()) {
        prop_assert!(!matches!(Journal::decode(&bytes, origin()), Ok(Some(_))));
        check_journal(&bytes);
    }

    #[test]
    fn journal_survives_mutations(journal in a_journal(), mutations in mutations()) {
        check_journal(&mutate(&journal.encode(), &mutations));
    }

    // --- RelPath::new, target::spec::parse, clock ---------------------------

    #[test]
    fn text_parsers_survive_hostile_text(text in hostile_text()) {
        check_text(&text);
    }

    #[test]
    fn text_parsers_survive_mutations(text in prop::sample::select(VALID_TEXTS), mutations in mutations()) {
        let bytes = mutate(text.as_bytes(), &mutations);
        check_text(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn rel_path_accepts_what_the_generator_builds(path in rel_path()) {
        check_rel_path(path.as_str());
    }

    /// FINDING (panic): `Manifest::payload_bytes` sums the sizes with `+`,
    /// and `decode` accepts sizes whose sum exceeds u64::MAX: attempt to add
    /// with overflow (a panic with overflow checks, a wrong total without).
    /// Minimized input kept in `regression_payload_bytes_overflows_on_two_huge_files`.
    #[test]
    fn panic_found_accepted_manifest_payload_total_overflows(
        sizes in prop::collection::vec(prop_oneof![any::<u64>(), Just(u64::MAX)], 1..6),
    ) {
        let mut text = format!(
            "ferry manifest v1\nrepository: r\nsequence: 1\ncreated: 2026-11-24T13:00:00Z\nexpires: never\nlayout: tree\nbase: none\nentries: {}\n",
            sizes.len()
        );
        for (i, size) in sizes.iter().enumerate() {
            text.push_str(&format!("file {size} {} - f{i}\n", "ab".repeat(32)));
        }
        // Fixed by refusing such manifests in decode; an accepted one must sum safely.
        if let Some(manifest) = check_manifest(text.as_bytes()) {
            manifest.payload_bytes();
        }
    }

    #[test]
    fn clock_format_and_parse_agree(seconds in 0i64..=253_402_300_799) {
        let time = timestamp(seconds);
        prop_assert_eq!(clock::parse(&clock::format(time)), Some(time));
    }
}

// Key files go through the filesystem and the protected key through Argon2
// (64 MiB, 3 passes), so these properties run fewer cases.
proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn public_key_refuses_arbitrary_bytes(bytes in arbitrary_bytes()) {
        let scratch = Scratch::new();
        let path = scratch.write("key.pub", &bytes);
        let error = signing::load_public(&path).unwrap_err();
        assert_format_error(&error);
    }

    #[test]
    fn public_key_survives_mutations(
        name in prop::sample::select(&[SIGNER, PROTECTED, "TEST-ONLY-DO-NOT-USE-untrusted"][..]),
        mutations in mutations(),
    ) {
        let scratch = Scratch::new();
        let path = key_file(&format!("{name}.pub"));
        let original = signing::load_public(&path).unwrap();
        check_public_key(&scratch, &mutate(&read(&path), &mutations), Some(&original));
    }

    #[test]
    fn secret_key_refuses_arbitrary_bytes(bytes in arbitrary_bytes()) {
        let scratch = Scratch::new();
        prop_assert!(check_secret_key(&scratch, &bytes, None).is_none());
    }

    #[test]
    fn secret_key_survives_garbage_after_a_valid_prefix(bytes in bytes_after(b"ferry secret-key v1\nid: f6d0d56e4b3f069e\npublic: 87072f91f89069e28be1d0ceb53926d568ee66fc7e8ca7e9cf74c01e98b43837\nprotection: none\nsecret: f17c8849a2d8ab4b934e305f205ed5a94650d2d6bfba9d8345650f9f4366debe\n")) {
        let scratch = Scratch::new();
        if let Some(id) = check_secret_key(&scratch, &bytes, None) {
            prop_assert_eq!(id, SIGNING_KEY.id());
        }
    }

    #[test]
    fn unprotected_secret_key_survives_mutations(mutations in mutations()) {
        let scratch = Scratch::new();
        let bytes = mutate(&read(&key_file(&format!("{SIGNER}.key"))), &mutations);
        if let Some(id) = check_secret_key(&scratch, &bytes, None) {
            prop_assert_eq!(id, SIGNING_KEY.id(), "a changed key file loaded as another key");
        }
    }

    #[test]
    fn trust_store_survives_mutated_and_arbitrary_files(
        files in prop::collection::vec(
            prop_oneof![
                (prop::sample::select(&[SIGNER, PROTECTED][..]), mutations())
                    .prop_map(|(name, m)| mutate(&read(&key_file(&format!("{name}.pub"))), &m)),
                prop::sample::select(&[SIGNER, PROTECTED][..]).prop_map(|name| read(&key_file(&format!("{name}.pub")))),
                arbitrary_bytes(),
            ],
            0..4,
        )
    ) {
        let scratch = Scratch::new();
        check_trust_store(&scratch, &files);
    }
}

proptest! {
    #![proptest_config(config(12))]

    #[test]
    fn protected_secret_key_survives_mutations(mutations in mutations()) {
        let scratch = Scratch::new();
        let bytes = mutate(&read(&key_file(&format!("{PROTECTED}.key"))), &mutations);
        if let Some(id) = check_secret_key(&scratch, &bytes, Some(PROTECTED_PASSPHRASE)) {
            let original = signing::load_public(&key_file(&format!("{PROTECTED}.pub"))).unwrap();
            prop_assert_eq!(id, original.id);
        }
    }
}

// ---------------------------------------------------------------------------
// Fixed cases: inputs too large or too specific for random generation

#[test]
fn decoders_refuse_oversized_key_files() {
    let scratch = Scratch::new();
    let mut big = read(&key_file(&format!("{SIGNER}.pub")));
    big.resize(16 * 1024 + 1, b'\n');
    let path = scratch.write("big.pub", &big);
    assert!(signing::load_public(&path).unwrap_err().to_string().contains("limit"));
    let path = scratch.write("big.key", &big);
    assert!(
        SecretKey::load(&path, &mut |_| panic!("no passphrase expected")).err().unwrap().to_string().contains("limit")
    );
}

#[test]
fn manifest_with_a_huge_entry_count_and_no_entries_is_refused_without_reserving_memory() {
    let text = "ferry manifest v1\nrepository: r\nsequence: 1\ncreated: 2026-11-24T13:00:00Z\nexpires: never\nlayout: tree\nbase: none\nentries: 18446744073709551615\n";
    let error = decode_signed(text.as_bytes(), origin()).unwrap_err();
    assert!(error.to_string().contains("announces 18446744073709551615 entries but lists 0"), "{error}");
}

#[test]
fn sample_samples_decode() {
    // Sanity for the generators above: the sample files themselves are valid.
    check_manifest(&SAMPLE_MANIFEST).unwrap();
    check_verify(&SAMPLE_MANIFEST, &SAMPLE_SIGNATURE, &SAMPLE_MANIFEST);
    assert!(signing::verify(SAMPLE_MANIFEST.clone(), origin(), SAMPLE_SIGNATURE.clone(), origin(), &TRUST).is_ok());
}

/// Regression for the panic found by
/// `panic_found_accepted_manifest_payload_total_overflows`: a manifest that
/// decodes without error, whose two file sizes add up past u64::MAX, makes
/// `Manifest::payload_bytes` (called by verify, export and media checks on
/// every accepted manifest) panic with "attempt to add with overflow" in
/// builds with overflow checks, and return a wrapped total without them.
/// Fails until `decode` refuses such totals or `payload_bytes` saturates.
#[test]
fn regression_payload_bytes_overflows_on_two_huge_files() {
    let digest = "ab".repeat(32);
    let text = format!(
        "ferry manifest v1\nrepository: r\nsequence: 1\ncreated: 2026-11-24T13:00:00Z\nexpires: never\nlayout: tree\nbase: none\nentries: 2\nfile 18446744073709551615 {digest} - a\nfile 1 {digest} - b\n"
    );
    // A fix may refuse the manifest instead: that passes too.
    let Ok(manifest) = decode_signed(text.as_bytes(), origin()) else { return };
    match std::panic::catch_unwind(|| manifest.payload_bytes()) {
        Ok(total) => assert!(total >= u64::MAX - 1, "payload_bytes wrapped around to {total}"),
        Err(_) => panic!("payload_bytes panicked (attempt to add with overflow) on sizes [u64::MAX, 1]"),
    }
}

/// FINDING (not a panic): `target::spec::parse` refuses a URL with another
/// scheme by echoing the whole argument, password included, where every
/// other refusal goes through `spec::redact`. Found by
/// `text_parsers_survive_hostile_text` (minimized: `http://:a0a0@`).
#[test]
fn finding_unsupported_scheme_error_echoes_the_password() {
    for text in ["http://user:hunter2@host/x", "sftp://user:hunter2@host/x"] {
        let error = spec::parse(text, false).unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "password echoed: {error}");
    }
}

// ---------------------------------------------------------------------------
// Tar volumes: `volume::index` over arbitrary and mutated volumes

/// The manifest every hostile volume is checked against: a folder, a file
/// in it, an empty file, and a file split over volumes when they are small.
fn tar_manifest(volume_size: u64) -> Manifest {
    let file = |size| EntryKind::File(FileEntry { size, digest: Digest([0; 32]), executable: false, index: false });
    Manifest {
        repository: RepositoryId::new("av").unwrap(),
        sequence: 1,
        created: timestamp(1_700_000_000),
        expires: None,
        layout: ferry::manifest::Layout::Tar(vec![ferry::manifest::Volume {
            size: volume_size,
            digest: Digest([0; 32]),
        }]),
        entries: vec![
            Entry { path: RelPath::new("a").unwrap(), kind: EntryKind::Dir },
            Entry { path: RelPath::new("a/x.dat").unwrap(), kind: file(700) },
            Entry { path: RelPath::new("empty").unwrap(), kind: file(0) },
        ],
    }
}

/// A valid volume for [`tar_manifest`], as export writes it.
fn valid_volume() -> Vec<u8> {
    let scratch = Scratch::new();
    let destination = ferry::volume::Destination { dir: scratch.root.clone(), budget: u64::MAX };
    let mut writer = ferry::volume::VolumeWriter::new(vec![destination], 1 << 20, 1_700_000_000).unwrap();
    let source = Utf8Path::new("hostile/source");
    writer.add_dir(&RelPath::new("a").unwrap()).unwrap();
    writer.add_file(&RelPath::new("a/x.dat").unwrap(), 700, false, &mut &[7u8; 700][..], source, &|_| {}).unwrap();
    writer.add_file(&RelPath::new("empty").unwrap(), 0, false, &mut &[][..], source, &|_| {}).unwrap();
    writer.finish().unwrap();
    std::fs::read(scratch.root.join(ferry::volume::volume_name(1))).unwrap()
}

/// Indexes `bytes` as the only volume: a typed refusal, or an index whose
/// files lie inside the volume with exactly the listed sizes.
fn check_volume(bytes: &[u8]) {
    let scratch = Scratch::new();
    scratch.write(&ferry::volume::volume_name(1), bytes);
    let manifest = tar_manifest(bytes.len() as u64);
    match ferry::volume::index(std::slice::from_ref(&scratch.root), &manifest) {
        Ok(index) => {
            for (path, file) in manifest.files() {
                let segments = index.segments(path).unwrap_or(&[]);
                let total: u64 = segments.iter().map(|s| s.length).sum();
                assert_eq!(total, file.size, "{path}: indexed {total} bytes, listed {}", file.size);
                assert!(
                    segments.iter().all(|s| s.offset + s.length <= bytes.len() as u64),
                    "{path} outside the volume"
                );
            }
        }
        Err(error) => assert!(
            matches!(error, Error::Damaged { .. }),
            "expected a Damaged refusal naming the volume, got {error:?}"
        ),
    }
}

#[test]
fn the_valid_volume_indexes() {
    let volume = valid_volume();
    let scratch = Scratch::new();
    scratch.write(&ferry::volume::volume_name(1), &volume);
    ferry::volume::index(std::slice::from_ref(&scratch.root), &tar_manifest(volume.len() as u64)).unwrap();
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn tar_index_refuses_arbitrary_bytes(bytes in arbitrary_bytes()) {
        check_volume(&bytes);
    }

    #[test]
    fn tar_index_survives_byte_changes(
        changes in proptest::collection::vec((any::<Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<Index>()),
    ) {
        let mut volume = valid_volume();
        for (at, byte) in changes {
            let at = at.index(volume.len());
            volume[at] = byte;
        }
        if let Some(cut) = cut {
            volume.truncate(cut.index(volume.len()));
        }
        check_volume(&volume);
    }

    #[test]
    fn tar_index_survives_blocks_moved_and_repeated(from in any::<Index>(), to in any::<Index>(), count in 1usize..4) {
        let volume = valid_volume();
        let blocks: Vec<&[u8]> = volume.chunks(512).collect();
        let from = from.index(blocks.len());
        let mut moved: Vec<&[u8]> = blocks.clone();
        for _ in 0..count {
            moved.insert(to.index(moved.len()), blocks[from]);
        }
        check_volume(&moved.concat());
    }
}
