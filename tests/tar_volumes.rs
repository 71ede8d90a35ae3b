//! Tar volumes (`formats/tar-volumes-v1.md`) through the real binary:
//!
//! * hostile archives that are correctly signed (the volume is rebuilt by
//!   hand and the manifest re-signed, so only the tar content is hostile)
//!   are refused by `verify` and `import` with exit 3, an error naming the
//!   entry, and nothing changed anywhere;
//! * damaged media (truncated, missing, foreign, swapped volumes, a flipped
//!   bit) are refused naming the volume or file;
//! * exports are deterministic;
//! * GNU tar, bsdtar and sha256sum agree with what ferry wrote;
//! * a tree with split files, long non-ASCII names, empty files and folders
//!   and executables survives export and import with either switch.

mod support;
use camino::{Utf8Path, Utf8PathBuf};
use ferry::digest::Digest;
use ferry::manifest::{EntryKind, Layout, Manifest, Volume};
use ferry::signing::SecretKey;
use std::collections::BTreeMap;
use std::process::Command;
use support::*;

/// Both ways of switching a snapshot in.
const SWITCHES: [&str; 2] = ["tree", "ordered"];
/// Creation time used where bytes must be reproducible.
const CREATED: &str = "2024-05-01T12:00:00Z";
const BLOCK: usize = 512;

// ---------------------------------------------------------------------------
// A hand-made tar writer: raw ustar, PAX and GNU headers
// ---------------------------------------------------------------------------

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    assert_eq!(text.len(), digits, "{value} does not fit a {digits}-digit field");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

/// One header block. `magic` is `ustar\0` + `00` (POSIX) or `ustar  \0` (GNU).
fn header_with_magic(name: &[u8], typeflag: u8, size: u64, mode: u32, link: &str, magic: &[u8; 8]) -> Vec<u8> {
    assert!(name.len() <= 100 && link.len() <= 100);
    let mut block = vec![0u8; BLOCK];
    block[..name.len()].copy_from_slice(name);
    octal(&mut block[100..108], u64::from(mode));
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], 1_714_564_800);
    block[156] = typeflag;
    block[157..157 + link.len()].copy_from_slice(link.as_bytes());
    block[257..265].copy_from_slice(magic);
    block[265..269].copy_from_slice(b"root");
    block[297..301].copy_from_slice(b"root");
    if typeflag == b'3' || typeflag == b'4' {
        octal(&mut block[329..337], 1);
        octal(&mut block[337..345], 3);
    }
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    block
}

fn header(name: &str, typeflag: u8, size: u64, mode: u32, link: &str) -> Vec<u8> {
    header_with_magic(name.as_bytes(), typeflag, size, mode, link, b"ustar\x0000")
}

/// Data padded to whole blocks.
fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

/// PAX records `LEN key=value\n`, the length counting itself.
fn pax_records(records: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3;
        let mut length = rest + 1;
        while rest + length.to_string().len() != length {
            length = rest + length.to_string().len();
        }
        out.extend_from_slice(format!("{length} {key}={value}\n").as_bytes());
    }
    out
}

/// The name cut to the ustar field at a character boundary.
fn short_name(name: &str) -> &str {
    let mut end = name.len().min(100);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// A PAX extended header carrying `records`.
fn pax_header(records: &[(&str, &str)]) -> Vec<u8> {
    let body = pax_records(records);
    let mut out = header("PaxHeader", b'x', body.len() as u64, 0o644, "");
    out.extend(padded(&body));
    out
}

/// A whole entry: a PAX `path` header when the name needs one, the ustar
/// header, the data.
fn entry(name: &str, typeflag: u8, data: &[u8], mode: u32) -> Vec<u8> {
    let mut out = Vec::new();
    if name.len() > 100 || !name.is_ascii() {
        out.extend(pax_header(&[("path", name)]));
    }
    out.extend(header(short_name(name), typeflag, data.len() as u64, mode, ""));
    out.extend(padded(data));
    out
}

fn file_entry(name: &str, data: &[u8]) -> Vec<u8> {
    entry(name, b'0', data, 0o644)
}

/// A special entry (link, device, FIFO) without data.
fn special_entry(name: &str, typeflag: u8, link: &str) -> Vec<u8> {
    header(name, typeflag, 0, 0o644, link)
}

/// A volume: the chunks, the end-of-archive marker, then `trailer`.
fn volume(chunks: &[Vec<u8>], trailer: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = chunks.concat();
    out.extend_from_slice(&[0; 2 * BLOCK]);
    out.extend_from_slice(trailer);
    out
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// Reads a snapshot's manifest the only way the library allows, through
/// the verifier, trusting the test's key pair (`key.pub` in the scratch
/// folder that holds `MEDIA/ferry/REPOSITORY/SEQUENCE`).
fn read_manifest(snapshot: &Utf8Path) -> Manifest {
    let scratch = snapshot.ancestors().nth(4).expect("a snapshot folder inside a scratch folder");
    let trust = ferry::signing::TrustStore::load(&[scratch.join("key.pub")]).expect("the test's key.pub");
    let (manifest, signature) = (snapshot.join("manifest"), snapshot.join("manifest.sig"));
    let read = |path: &Utf8Path| std::fs::read(path).unwrap();
    ferry::signing::verify(read(&manifest), &manifest, read(&signature), &signature, &trust)
        .expect("a valid signed manifest")
        .manifest()
        .clone()
}

fn volume_paths(snapshot: &Utf8Path) -> Vec<Utf8PathBuf> {
    let count = read_manifest(snapshot).layout.volumes().len();
    assert!(count > 0, "{snapshot} is not a tar snapshot");
    (1..=count).map(|n| snapshot.join(format!("volumes/{n:04}.tar"))).collect()
}

/// Asserts stderr holds one error, an `error:` line with its problems on
/// indented lines below it (nothing else), naming every string in `names`.
fn assert_error_names(run: &Run, what: &str, names: &[&str]) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("error: ")) && lines[1..].iter().all(|l| l.starts_with("  ")),
        "{what}: stderr is not one error:\n{}",
        run.stderr
    );
    for name in names {
        assert!(run.stderr.contains(name), "{what}: the error does not name `{name}`:\n{}", run.stderr);
    }
}

/// Exports `source` as repository `av` at the fixed creation time, with
/// `extra` options.
fn export_args(source: &Utf8Path, media: &Utf8Path, key: &Utf8Path, sequence: u64, extra: &[&str]) {
    let options = [&["--created", CREATED, "--expires", "never"], extra].concat();
    export_with(source, media, key, "av", sequence, &options);
}

/// A target holding snapshot 1 of `av`, and snapshot 2 on its own media;
/// refusals of snapshot 2 must leave everything under `scratch` unchanged.
struct Fixture {
    scratch: Scratch,
    target: Utf8PathBuf,
    source1: Utf8PathBuf,
    source2: Utf8PathBuf,
    secret: Utf8PathBuf,
    public: Utf8PathBuf,
    media: Utf8PathBuf,
    snapshot: Utf8PathBuf,
}

impl Fixture {
    /// Snapshot 2 is `source1` changed by `change`, exported with `extra`.
    fn new(extra: &[&str], change: impl FnOnce(&Utf8Path)) -> Self {
        let scratch = Scratch::new();
        let (secret, public) = key_pair(&scratch);
        let source1 = scratch.path("source1");
        small_repository(&source1);
        let source2 = scratch.path("source2");
        small_repository(&source2);
        write(&source2.join("bases/new.dat"), b"a file new in snapshot 2\n");
        write(&source2.join("bases/av-2.dat"), &vec![0x5A; 70_000]);
        change(&source2);
        let media1 = scratch.path("media1");
        export_args(&source1, &media1, &secret, 1, &[]);
        let target = scratch.path("site/target");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        run(&["import", media1.as_str(), target.as_str(), "--trust", public.as_str(), "-q"]).ok();
        assert_eq!(served_tree(&target), tree_state(&source1));
        let media = scratch.path("media2");
        export_args(&source2, &media, &secret, 2, extra);
        let snapshot = media.join("ferry/av/2");
        Fixture { scratch, target, source1, source2, secret, public, media, snapshot }
    }

    fn verify(&self) -> Run {
        run(&["verify", self.media.as_str(), "--trust", self.public.as_str()])
    }

    fn import(&self, switch: &str) -> Run {
        run(&["import", self.media.as_str(), self.target.as_str(), "--trust", self.public.as_str(), "--switch", switch])
    }

    /// `verify` and `import` (both switches) exit 3 with one error
    /// naming `names`; nothing under the scratch folder (target, its
    /// siblings, media, sources) changes, and snapshot 1 is still served.
    fn assert_refused(&self, names: &[&str]) {
        let before = tree_state_but_journal(&self.scratch.root);
        let verify = self.verify().expect_code(3);
        assert_error_names(&verify, "verify", names);
        assert_tree_unchanged(&before, &tree_state_but_journal(&self.scratch.root), "the scratch folder after verify");
        for switch in SWITCHES {
            let import = self.import(switch).expect_code(3);
            assert_error_names(&import, &format!("import --switch {switch}"), names);
            assert_tree_unchanged(
                &before,
                &tree_state_but_journal(&self.scratch.root),
                &format!("the scratch folder after import ({switch})"),
            );
            assert_eq!(last_journal_action(&self.target.join(".ferry")), "refusal", "{switch}: journaled");
        }
        assert_eq!(served_tree(&self.target), tree_state(&self.source1), "snapshot 1 is no longer served");
    }

    /// After the refusal, an honest snapshot 2 installs: the refusal was about the damage.
    fn assert_honest_snapshot_installs(&self) {
        let media = self.scratch.path("media-honest");
        export_args(&self.source2, &media, &self.secret, 2, &[]);
        run(&["import", media.as_str(), self.target.as_str(), "--trust", self.public.as_str(), "-q"]).ok();
        assert_eq!(served_tree(&self.target), tree_state(&self.source2));
    }

    // --- Hostile volumes, correctly signed -------------------------------

    /// One chunk per manifest entry, as ferry would write it, with names:
    /// rewriting these and calling [`Fixture::sign_volume`] makes a
    /// correctly signed snapshot whose only flaw is the one put in.
    fn listed_chunks(&self) -> Vec<(String, Vec<u8>)> {
        read_manifest(&self.snapshot)
            .entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::Dir => (format!("{}/", e.path), entry(&format!("{}/", e.path), b'5', b"", 0o755)),
                EntryKind::File(file) => {
                    let data = std::fs::read(self.source2.join(e.path.as_str())).unwrap();
                    let mode = if file.executable { 0o755 } else { 0o644 };
                    (e.path.to_string(), entry(e.path.as_str(), b'0', &data, mode))
                }
            })
            .collect()
    }

    /// Replaces the volumes by `bytes` as the only volume and re-signs the
    /// manifest with the real key, listing the new volume's size and digest.
    fn sign_volume(&self, bytes: &[u8]) {
        let volumes = self.snapshot.join("volumes");
        std::fs::remove_dir_all(&volumes).unwrap();
        std::fs::create_dir(&volumes).unwrap();
        std::fs::write(volumes.join("0001.tar"), bytes).unwrap();
        let mut manifest = read_manifest(&self.snapshot);
        manifest.layout = Layout::Tar(vec![Volume { size: bytes.len() as u64, digest: Digest::of(bytes) }]);
        let manifest_bytes = manifest.encode();
        let key = SecretKey::load(&self.secret, &mut |_| panic!("the test key has no passphrase")).unwrap();
        std::fs::write(self.snapshot.join("manifest"), &manifest_bytes).unwrap();
        std::fs::write(self.snapshot.join("manifest.sig"), key.sign_manifest(&manifest_bytes)).unwrap();
    }

    /// Rebuilds the volume from the listed chunks after `edit`, re-signs,
    /// appends `trailer` after the end marker.
    fn hostile(&self, trailer: &[u8], edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) {
        let mut chunks = self.listed_chunks();
        edit(&mut chunks);
        let chunks: Vec<Vec<u8>> = chunks.into_iter().map(|(_, bytes)| bytes).collect();
        self.sign_volume(&volume(&chunks, trailer));
    }
}

fn position(chunks: &[(String, Vec<u8>)], name: &str) -> usize {
    chunks.iter().position(|(n, _)| n == name).unwrap_or_else(|| panic!("no entry {name}"))
}

/// Replaces the chunk of `name` by `bytes`.
fn replace(name: &str, bytes: Vec<u8>) -> impl FnOnce(&mut Vec<(String, Vec<u8>)>) {
    let name = name.to_owned();
    move |chunks| {
        let at = position(chunks, &name);
        chunks[at].1 = bytes;
    }
}

/// Inserts `bytes` just before the chunk of `before`.
fn insert_before(before: &str, bytes: Vec<u8>) -> impl FnOnce(&mut Vec<(String, Vec<u8>)>) {
    let before = before.to_owned();
    move |chunks| {
        let at = position(chunks, &before);
        chunks.insert(at, (String::new(), bytes));
    }
}

fn hostile_fixture() -> Fixture {
    Fixture::new(&[], |_| {})
}

#[test]
fn hand_built_volume_without_flaws_is_accepted() {
    // The control for every hostile test below: the hand-made writer and the
    // re-signing are sound, so a refusal there is about the flaw alone.
    let f = hostile_fixture();
    f.hostile(b"", |_| {});
    let verify = f.verify().ok();
    assert!(verify.stdout.contains("OK"), "{}", verify.stdout);
    f.import("tree").ok();
    assert_eq!(served_tree(&f.target), tree_state(&f.source2));
}

#[test]
fn symlink_entry_is_refused() {
    let f = hostile_fixture();
    f.hostile(b"", replace("bases/new.dat", special_entry("bases/new.dat", b'2', "/etc/passwd")));
    f.assert_refused(&["volumes/0001.tar", "bases/new.dat", "symbolic link"]);
    f.assert_honest_snapshot_installs();
}

#[test]
fn hard_link_entry_is_refused() {
    let f = hostile_fixture();
    f.hostile(b"", replace("bases/new.dat", special_entry("bases/new.dat", b'1', "bases/av-2.dat")));
    f.assert_refused(&["volumes/0001.tar", "bases/new.dat", "hard link"]);
}

#[test]
fn parent_folder_name_is_refused() {
    let f = hostile_fixture();
    f.hostile(b"", insert_before("bases/new.dat", file_entry("../x", b"escaped\n")));
    f.assert_refused(&["volumes/0001.tar", "`../x`"]);
    assert!(!f.scratch.path("site/x").exists() && !f.scratch.path("x").exists());
}

#[test]
fn absolute_name_is_refused() {
    let f = hostile_fixture();
    let existed = Utf8Path::new("/etc/x").exists();
    f.hostile(b"", insert_before("bases/new.dat", file_entry("/etc/x", b"escaped\n")));
    f.assert_refused(&["volumes/0001.tar", "`/etc/x`"]);
    assert_eq!(Utf8Path::new("/etc/x").exists(), existed, "/etc/x was written");
}

#[test]
fn absolute_name_into_the_scratch_folder_is_refused() {
    // Like /etc/x, but aimed where assert_refused looks for changes.
    let f = hostile_fixture();
    let aim = f.scratch.path("outside/x");
    f.hostile(b"", replace("bases/new.dat", file_entry(aim.as_str(), b"a file new in snapshot 2\n")));
    f.assert_refused(&["volumes/0001.tar", aim.as_str()]);
}

#[test]
fn character_device_is_refused() {
    let f = hostile_fixture();
    f.hostile(b"", replace("bases/new.dat", special_entry("bases/new.dat", b'3', "")));
    f.assert_refused(&["volumes/0001.tar", "bases/new.dat", "character device"]);
}

#[test]
fn block_device_is_refused() {
    let f = hostile_fixture();
    f.hostile(b"", replace("bases/new.dat", special_entry("bases/new.dat", b'4', "")));
    f.assert_refused(&["volumes/0001.tar", "bases/new.dat", "block device"]);
}

#[test]
fn fifo_is_refused() {
    let f = hostile_fixture();
    f.hostile(b"", insert_before("bases/new.dat", special_entry("bases/pipe", b'6', "")));
    f.assert_refused(&["volumes/0001.tar", "bases/pipe", "FIFO"]);
}

#[test]
fn duplicate_entry_is_refused() {
    let f = hostile_fixture();
    f.hostile(b"", |chunks| {
        let at = position(chunks, "bases/new.dat");
        let copy = chunks[at].clone();
        chunks.insert(at + 1, copy);
    });
    f.assert_refused(&["volumes/0001.tar", "`bases/new.dat`", "duplicated"]);
}

#[test]
fn duplicate_folder_is_refused() {
    let f = hostile_fixture();
    f.hostile(b"", |chunks| {
        let at = position(chunks, "bases/sub/");
        let copy = chunks[at].clone();
        chunks.insert(at + 1, copy);
    });
    f.assert_refused(&["volumes/0001.tar", "`bases/sub/`"]);
}

#[test]
fn entry_not_in_the_manifest_is_refused() {
    let f = hostile_fixture();
    f.hostile(b"", insert_before("bases/new.dat", file_entry("bases/extra.dat", b"unlisted\n")));
    f.assert_refused(&["volumes/0001.tar", "`bases/extra.dat`", "not in the manifest"]);
}

#[test]
fn entry_of_another_size_is_refused() {
    let f = hostile_fixture();
    let longer = b"a file new in snapshot 2\nand more\n";
    f.hostile(b"", replace("bases/new.dat", file_entry("bases/new.dat", longer)));
    f.assert_refused(&["volumes/0001.tar", "`bases/new.dat`", &format!("is {} bytes", longer.len()), "says 25"]);
}

#[test]
fn pax_size_record_is_refused() {
    // The size trick: ferry's reader would take the ustar size, a PAX-aware
    // extractor the PAX size, and the two would see different entries.
    let f = hostile_fixture();
    let data = b"a file new in snapshot 2\n";
    let mut bytes = pax_header(&[("path", "bases/new.dat"), ("size", "1024")]);
    bytes.extend(header("bases/new.dat", b'0', data.len() as u64, 0o644, ""));
    bytes.extend(padded(data));
    f.hostile(b"", replace("bases/new.dat", bytes));
    f.assert_refused(&["volumes/0001.tar", "bases/new.dat", "`size`"]);
}

#[test]
fn pax_size_record_without_path_is_refused() {
    let f = hostile_fixture();
    let data = b"a file new in snapshot 2\n";
    let mut bytes = pax_header(&[("size", "1024")]);
    bytes.extend(header("bases/new.dat", b'0', data.len() as u64, 0o644, ""));
    bytes.extend(padded(data));
    f.hostile(b"", replace("bases/new.dat", bytes));
    f.assert_refused(&["volumes/0001.tar", "bases/new.dat", "`size`"]);
}

#[test]
fn gnu_long_name_is_refused() {
    // As GNU tar writes a name over 100 bytes: an `L` record holding the
    // name, then the real header, both with the GNU magic.
    let long = format!("bases/{}.dat", "long-name-".repeat(12));
    let data = b"long\n".to_vec();
    let f = Fixture::new(&[], |source| write(&source.join(&long), &data));
    let gnu = b"ustar  \0";
    let mut name = long.clone().into_bytes();
    name.push(0);
    let mut bytes = header_with_magic(b"././@LongLink", b'L', name.len() as u64, 0o644, "", gnu);
    bytes.extend(padded(&name));
    bytes.extend(header_with_magic(&long.as_bytes()[..100], b'0', data.len() as u64, 0o644, "", gnu));
    bytes.extend(padded(&data));
    f.hostile(b"", replace(&long, bytes));
    f.assert_refused(&["volumes/0001.tar", "`././@LongLink`", "not POSIX ustar"]);
}

#[test]
fn gnu_long_name_with_ustar_magic_is_refused() {
    let long = format!("bases/{}.dat", "long-name-".repeat(12));
    let data = b"long\n".to_vec();
    let f = Fixture::new(&[], |source| write(&source.join(&long), &data));
    let mut name = long.clone().into_bytes();
    name.push(0);
    let mut bytes = header("././@LongLink", b'L', name.len() as u64, 0o644, "");
    bytes.extend(padded(&name));
    bytes.extend(header(&long[..100], b'0', data.len() as u64, 0o644, ""));
    bytes.extend(padded(&data));
    f.hostile(b"", replace(&long, bytes));
    f.assert_refused(&["volumes/0001.tar", "././@LongLink", "GNU long-name"]);
}

#[test]
fn entry_after_the_last_listed_one_is_refused() {
    let f = hostile_fixture();
    f.hostile(b"", |chunks| chunks.push((String::new(), file_entry("zzz/appended.dat", b"appended\n"))));
    f.assert_refused(&["volumes/0001.tar", "`zzz/appended.dat`", "after the last entry"]);
}

#[test]
fn bytes_after_the_end_of_archive_marker_are_refused() {
    let f = hostile_fixture();
    f.hostile(b"garbage after the end of the archive\n", |_| {});
    f.assert_refused(&["volumes/0001.tar", "after the end-of-archive marker"]);
}

#[test]
fn a_whole_entry_after_the_end_of_archive_marker_is_refused() {
    // What `tar -i` (ignore zeros) would still extract.
    let f = hostile_fixture();
    f.hostile(&file_entry("bases/extra.dat", b"after the end\n"), |_| {});
    f.assert_refused(&["volumes/0001.tar", "after the end-of-archive marker"]);
}

// ---------------------------------------------------------------------------
// Damaged media, signature untouched
// ---------------------------------------------------------------------------

const BIG: &str = "big/big.bin";
const BIG_BYTES: usize = 400_000;

/// Snapshot 2 adds `big/big.bin`, split over many 64 KiB volumes.
fn damaged_fixture() -> Fixture {
    let f = Fixture::new(&["--volume-size", "64K"], |source| {
        write(&source.join(BIG), &pseudo_random_bytes(1, BIG_BYTES));
    });
    assert!(volume_paths(&f.snapshot).len() >= 7, "the big file spans several volumes");
    f
}

/// The ustar name field of a volume's first header.
fn first_name(volume: &Utf8Path) -> String {
    let bytes = std::fs::read(volume).unwrap();
    let field = &bytes[..100];
    String::from_utf8_lossy(&field[..field.iter().position(|&b| b == 0).unwrap_or(100)]).into_owned()
}

#[test]
fn truncated_last_volume_is_refused() {
    let f = damaged_fixture();
    let last = volume_paths(&f.snapshot).pop().unwrap();
    let name = last.file_name().unwrap().to_owned();
    let length = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(length - 700).unwrap();
    f.assert_refused(&[&format!("volumes/{name}"), "truncated"]);
    f.assert_honest_snapshot_installs();
}

#[test]
fn missing_volume_is_refused() {
    let f = damaged_fixture();
    let count = volume_paths(&f.snapshot).len();
    std::fs::remove_file(f.snapshot.join("volumes/0003.tar")).unwrap();
    f.assert_refused(&["missing", &format!("0003.tar of {count}")]);
}

#[test]
fn volume_from_another_export_is_refused() {
    let f = damaged_fixture();
    // Another export of the same names and sizes: its volume 0004.tar has the
    // same size and headers as ours, only other file bytes.
    let other_source = f.scratch.path("other-source");
    copy_tree(&f.source2, &other_source);
    write(&other_source.join(BIG), &pseudo_random_bytes(2, BIG_BYTES));
    let other_media = f.scratch.path("other-media");
    export_args(&other_source, &other_media, &f.secret, 2, &["--volume-size", "64K"]);
    let ours = f.snapshot.join("volumes/0004.tar");
    let theirs = other_media.join("ferry/av/2/volumes/0004.tar");
    assert_eq!(std::fs::metadata(&ours).unwrap().len(), std::fs::metadata(&theirs).unwrap().len());
    assert_ne!(std::fs::read(&ours).unwrap(), std::fs::read(&theirs).unwrap());
    assert!(first_name(&ours).starts_with("big/big.bin.ferry-part-"));
    std::fs::copy(&theirs, &ours).unwrap();
    let before = tree_state_but_journal(&f.scratch.root);
    let verify = f.verify().expect_code(3);
    assert_error_names(&verify, "verify", &["0004.tar", BIG]);
    for switch in SWITCHES {
        let import = f.import(switch).expect_code(3);
        assert_error_names(&import, "import", &[BIG]);
    }
    assert_tree_unchanged(&before, &tree_state_but_journal(&f.scratch.root), "the scratch folder");
    assert_eq!(served_tree(&f.target), tree_state(&f.source1));
}

#[test]
fn swapped_volumes_are_refused() {
    let f = damaged_fixture();
    let (third, fourth) = (f.snapshot.join("volumes/0003.tar"), f.snapshot.join("volumes/0004.tar"));
    // Same size, so only the headers can tell.
    assert_eq!(std::fs::metadata(&third).unwrap().len(), std::fs::metadata(&fourth).unwrap().len());
    let (name3, name4) = (first_name(&third), first_name(&fourth));
    assert!(name3.starts_with("big/big.bin.ferry-part-") && name4.starts_with("big/big.bin.ferry-part-"));
    let parked = f.snapshot.join("volumes/parked");
    std::fs::rename(&third, &parked).unwrap();
    std::fs::rename(&fourth, &third).unwrap();
    std::fs::rename(&parked, &fourth).unwrap();
    f.assert_refused(&["volumes/0003.tar", &format!("`{name4}`"), &format!("`{name3}`")]);
}

#[test]
fn flipped_bit_in_a_split_file_is_refused() {
    let f = damaged_fixture();
    let fifth = f.snapshot.join("volumes/0005.tar");
    assert!(first_name(&fifth).starts_with("big/big.bin.ferry-part-"));
    let mut bytes = std::fs::read(&fifth).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&fifth, bytes).unwrap();
    let before = tree_state_but_journal(&f.scratch.root);
    let verify = f.verify().expect_code(3);
    assert_error_names(&verify, "verify", &["volume 0005.tar", BIG]);
    for switch in SWITCHES {
        let import = f.import(switch).expect_code(3);
        assert_error_names(&import, "import", &[BIG, "sha256"]);
    }
    assert_tree_unchanged(&before, &tree_state_but_journal(&f.scratch.root), "the scratch folder");
    assert_eq!(served_tree(&f.target), tree_state(&f.source1));
    f.assert_honest_snapshot_installs();
}

fn copy_tree(from: &Utf8Path, to: &Utf8Path) {
    for item in walkdir::WalkDir::new(from).sort_by_file_name() {
        let item = item.unwrap();
        let relative = item.path().strip_prefix(from).unwrap();
        let destination = to.as_std_path().join(relative);
        if item.file_type().is_dir() {
            std::fs::create_dir_all(&destination).unwrap();
        } else {
            std::fs::copy(item.path(), &destination).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// A rich tree: determinism, other readers, round trip
// ---------------------------------------------------------------------------

/// A file split over 3+ volumes of 64 KiB, under a long non-ASCII name too,
/// names over 100 bytes, empty files and folders, executables.
fn rich_source(root: &Utf8Path) -> Vec<String> {
    let long_folder = format!("données/{}", "répertoire-très-long-".repeat(4));
    let long_file = format!("{long_folder}/fichier-ünïcødé-{}.dat", "x".repeat(40));
    let long_split = format!("{long_folder}/gros-fichier-découpé.bin");
    assert!(long_file.len() > 100 && long_split.len() > 100);
    put(&root.join("big/big.bin"), &pseudo_random_bytes(7, 300_000), false);
    put(&root.join(&long_split), &pseudo_random_bytes(8, 150_000), true);
    put(&root.join(&long_file), b"a long name\n", false);
    put(&root.join("empty.dat"), b"", false);
    put(&root.join("data/empty-too.dat"), b"", true);
    put(&root.join("bin/run.sh"), b"#!/bin/sh\necho run\n", true);
    put(&root.join("index/master.xml"), b"<index/>\n", false);
    std::fs::create_dir_all(root.join("empty-folder/nested-empty")).unwrap();
    std::fs::create_dir_all(root.join(&long_folder).join("vide")).unwrap();
    vec!["big/big.bin".into(), long_split]
}

fn export_rich(scratch: &Scratch, name: &str, source: &Utf8Path, key: &Utf8Path) -> Utf8PathBuf {
    let media = scratch.path(name);
    export_args(source, &media, key, 7, &["--volume-size", "64K"]);
    media.join("ferry/av/7")
}

/// Every file below `root` with its bytes, and every folder.
fn files_and_bytes(root: &Utf8Path) -> BTreeMap<String, Option<Vec<u8>>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|item| {
            let item = item.unwrap();
            let relative = item.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let bytes = item.file_type().is_file().then(|| std::fs::read(item.path()).unwrap());
            (relative, bytes)
        })
        .collect()
}

#[test]
fn exports_are_byte_for_byte_reproducible() {
    let scratch = Scratch::new();
    let (secret, _) = key_pair(&scratch);
    let source = scratch.path("source");
    rich_source(&source);
    let first = export_rich(&scratch, "media-a", &source, &secret);
    // Other file times between the two exports: the volumes must not care.
    for item in walkdir::WalkDir::new(&source).min_depth(1) {
        let item = item.unwrap();
        if item.file_type().is_file() {
            let file = std::fs::File::options().write(true).open(item.path()).unwrap();
            file.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)).unwrap();
        }
    }
    let second = export_rich(&scratch, "media-b", &source, &secret);
    assert!(volume_paths(&first).len() >= 3);
    let (a, b) = (files_and_bytes(&scratch.path("media-a")), files_and_bytes(&scratch.path("media-b")));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "the two media hold other files");
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{path} differs between the two exports");
    }
    assert!(a.contains_key("ferry/av/7/manifest.sig") && a.contains_key("ferry/av/7/volumes/0003.tar"));
    assert!(second.join("manifest.sig").is_file());
}

/// Names a tar tool lists for a volume, one per line.
fn list(tool: &str, volume: &Utf8Path) -> Vec<String> {
    let mut command = Command::new(tool);
    command.env("LC_ALL", "C.UTF-8");
    if tool == "tar" {
        command.arg("--quoting-style=literal");
    }
    let output = command.arg("-tf").arg(volume).output().unwrap();
    assert!(output.status.success(), "{tool} -tf {volume}: {}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "{tool} -tf {volume} warned: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect()
}

/// Checks that `listed` (every volume's names, in order) is the manifest's
/// entries: folders with `/`, files whole or as consecutive parts; returns
/// the part counts of split files.
fn check_listing(manifest: &Manifest, listed: &[String], tool: &str) -> BTreeMap<String, usize> {
    let mut parts = BTreeMap::new();
    let mut next = listed.iter().peekable();
    for e in &manifest.entries {
        let path = e.path.as_str();
        let got = next.next().unwrap_or_else(|| panic!("{tool} lists nothing where the manifest lists {path}"));
        match e.kind {
            EntryKind::Dir => assert_eq!(got, &format!("{path}/"), "{tool}"),
            EntryKind::File(_) if got == path => {}
            EntryKind::File(_) => {
                assert_eq!(got, &format!("{path}.ferry-part-0001"), "{tool}");
                let mut count = 1;
                while next.peek().is_some_and(|n| **n == format!("{path}.ferry-part-{:04}", count + 1)) {
                    next.next();
                    count += 1;
                }
                parts.insert(path.to_owned(), count);
            }
        }
    }
    assert_eq!(next.next(), None, "{tool} lists more than the manifest");
    parts
}

fn sha256sum_check(dir: &Utf8Path, sums: &Utf8Path) {
    let output = Command::new("sha256sum").args(["-c", "--strict", sums.as_str()]).current_dir(dir).output().unwrap();
    assert!(
        output.status.success(),
        "sha256sum -c {sums} in {dir} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn gnu_tar_bsdtar_and_sha256sum_agree() {
    let tools = [
        Need::Tool { command: "tar", package: "tar" },
        Need::Tool { command: "bsdtar", package: "libarchive-tools" },
        Need::Tool { command: "sha256sum", package: "coreutils" },
    ];
    // Check every tool (no short cut), so each missing one is named.
    let available: Vec<bool> = tools.into_iter().map(require).collect();
    if available.contains(&false) {
        return;
    }
    let scratch = Scratch::new();
    let (secret, _) = key_pair(&scratch);
    let source = scratch.path("source");
    let split = rich_source(&source);
    let snapshot = export_rich(&scratch, "media", &source, &secret);
    let manifest = read_manifest(&snapshot);
    let volumes = volume_paths(&snapshot);

    let mut split_sorted = split.clone();
    split_sorted.sort();
    let mut parts = BTreeMap::new();
    for tool in ["tar", "bsdtar"] {
        let listed: Vec<String> = volumes.iter().flat_map(|v| list(tool, v)).collect();
        parts = check_listing(&manifest, &listed, tool);
        assert_eq!(parts.keys().cloned().collect::<Vec<_>>(), split_sorted, "{tool}: the split files");
        assert!(parts["big/big.bin"] >= 3, "big/big.bin is in {} parts", parts["big/big.bin"]);
    }

    sha256sum_check(&snapshot, &snapshot.join("SHA256SUMS"));
    let sums = std::fs::read_to_string(snapshot.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), volumes.len() + 1, "SHA256SUMS lists every volume and the manifest");

    // Extract with GNU tar, join the parts with cat: the source tree again.
    let out = scratch.path("extracted");
    std::fs::create_dir(&out).unwrap();
    for volume in &volumes {
        let status = Command::new("tar").arg("-xf").arg(volume).arg("-C").arg(&out).status().unwrap();
        assert!(status.success(), "tar -xf {volume}");
    }
    for path in &split {
        let count = parts[path.as_str()];
        let part_paths: Vec<Utf8PathBuf> = (1..=count).map(|n| out.join(format!("{path}.ferry-part-{n:04}"))).collect();
        let joined = std::fs::File::create(out.join(path)).unwrap();
        let status = Command::new("cat").args(&part_paths).stdout(joined).status().unwrap();
        assert!(status.success());
        for part in part_paths {
            std::fs::remove_file(part).unwrap();
        }
    }
    // Modes: the joined files are made by this test, not by tar.
    let strip_mode = |tree: Tree| -> Vec<(String, String)> {
        tree.into_iter().map(|(p, d)| (p, d.split(' ').next_back().unwrap().to_owned())).collect()
    };
    assert_eq!(strip_mode(tree_state(&out)), strip_mode(tree_state(&source)));
    sha256sum_check(&out, &snapshot.join("contents.SHA256SUMS"));
    let contents = std::fs::read_to_string(snapshot.join("contents.SHA256SUMS")).unwrap();
    assert_eq!(contents.lines().count(), manifest.files().count());
    // Every file tar made itself keeps its mode.
    let (extracted, original) = (tree_state(&out), tree_state(&source));
    for (path, description) in &extracted {
        if !split.contains(path) {
            assert_eq!(description, &original[path], "{path} as GNU tar extracted it");
        }
    }
}

#[test]
fn rich_tree_round_trips_with_either_switch() {
    let scratch = Scratch::new();
    let (secret, public) = key_pair(&scratch);
    let source = scratch.path("source");
    rich_source(&source);
    let snapshot = export_rich(&scratch, "media", &source, &secret);
    assert!(volume_paths(&snapshot).len() >= 3);
    let media = scratch.path("media");
    let verify = run(&["verify", media.as_str(), "--trust", public.as_str()]).ok();
    assert!(verify.stdout.contains("OK"), "{}", verify.stdout);
    let wanted = tree_state(&source);
    assert!(wanted.values().any(|d| d.starts_with("file 755")), "the source has executables");
    for switch in SWITCHES {
        let target = scratch.path(&format!("target-{switch}"));
        run(&["import", media.as_str(), target.as_str(), "--trust", public.as_str(), "--switch", switch, "-q"]).ok();
        assert_eq!(served_tree(&target), wanted, "--switch {switch}");
        // Installing again changes nothing and succeeds.
        run(&["import", media.as_str(), target.as_str(), "--trust", public.as_str(), "--switch", switch, "-q"]).ok();
        assert_eq!(served_tree(&target), wanted, "--switch {switch}, second import");
    }
}

#[test]
fn smallest_volume_size_is_accepted_and_one_byte_less_is_not() {
    let scratch = Scratch::new();
    let (secret, _) = key_pair(&scratch);
    let source = scratch.path("source");
    small_repository(&source);
    let smallest = ferry::volume::MIN_VOLUME_SIZE.to_string();
    let less = (ferry::volume::MIN_VOLUME_SIZE - 1).to_string();
    let media = scratch.path("media");
    export_args(&source, &media, &secret, 1, &["--volume-size", &smallest]);
    for volume in volume_paths(&media.join("ferry/av/1")) {
        assert!(std::fs::metadata(&volume).unwrap().len() <= ferry::volume::MIN_VOLUME_SIZE, "{volume}");
    }
    let refused = scratch.path("media-refused");
    let args = [
        "export",
        source.as_str(),
        refused.as_str(),
        "--key",
        secret.as_str(),
        "--volume-size",
        &less,
        "--sequence",
        "1",
        "-q",
    ];
    let result = run(&args).expect_code(2);
    assert!(result.stderr.starts_with("error: ") && result.stderr.contains("--volume-size"), "{}", result.stderr);
    assert!(!refused.join("ferry").exists(), "a refused export left folders on the media");
}

// ---------------------------------------------------------------------------
// verify's one-pass check of canonical volumes (tar-volumes-v1 §5 R3a)
// ---------------------------------------------------------------------------

/// Snapshot 2 in one volume, its bytes, and the offset of the content of
/// `bases/new.dat` in it.
fn one_volume_fixture() -> (Fixture, Utf8PathBuf, Vec<u8>, usize) {
    let f = Fixture::new(&[], |_| {});
    let volume = f.snapshot.join("volumes/0001.tar");
    let bytes = std::fs::read(&volume).unwrap();
    let content = b"a file new in snapshot 2\n";
    let at = bytes.windows(content.len()).position(|w| w == content).expect("the content is in the volume");
    assert_eq!(at % BLOCK, 0, "content starts on a block");
    f.verify().ok();
    (f, volume, bytes, at)
}

#[test]
fn non_zero_padding_is_refused_by_verify() {
    let (f, volume, mut bytes, at) = one_volume_fixture();
    // The content is 25 bytes: the rest of its block is padding.
    bytes[at + 100] = b'!';
    std::fs::write(&volume, &bytes).unwrap();
    let verify = f.verify().expect_code(3);
    assert_error_names(&verify, "verify", &["volume 0001.tar", "padding after bases/new.dat"]);
}

#[test]
fn header_changed_with_its_checksum_kept_is_refused_by_verify() {
    let (f, volume, mut bytes, at) = one_volume_fixture();
    // Two octal digits of the mtime moved by one each way: the header
    // checksum (a byte sum) still matches, so only the bytes can tell.
    let mtime = at - BLOCK + 136;
    let digits = &mut bytes[mtime..mtime + 11];
    let up = digits.iter().rposition(|&d| d < b'7').unwrap();
    let down = digits.iter().enumerate().rposition(|(i, &d)| i != up && d > b'0').unwrap();
    digits[up] += 1;
    digits[down] -= 1;
    std::fs::write(&volume, &bytes).unwrap();
    let verify = f.verify().expect_code(3);
    assert_error_names(&verify, "verify", &["volume 0001.tar", "sha256"]);
}
