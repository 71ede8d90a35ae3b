//! The export ledger (formats/ledger-v1.md): sequences strictly increase per
//! repository whatever the clock does, every export is recorded with its
//! signed manifest, and exports of one repository take turns.

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use ferry::backend::dir::DirBackend;
use ferry::ledger::Ledger;
use ferry::manifest::RepositoryId;
use ferry::ops::export::{self, ExportOptions, ExportReport, MediaLayout};
use ferry::ops::import::{self, ImportOptions};
use ferry::report::Silent;
use ferry::signing::SecretKey;
use jiff::{SignedDuration, Timestamp};
use support::{Scratch, served_tree, small_repository, write};

const REPOSITORY: &str = "av";

fn options(source: &Utf8Path, media: &Utf8Path, ledger: Option<&Utf8Path>, created: Timestamp) -> ExportOptions {
    ExportOptions {
        source: source.to_owned(),
        media: media.to_owned(),
        more_media: Vec::new(),
        drive_size: None,
        target_fs: None,
        repository: Some(REPOSITORY.into()),
        sequence: None,
        created: Some(created),
        expires_after: None,
        index_patterns: Vec::new(),
        read_back: true,
        layout: MediaLayout::Tar { volume_size: 1 << 20 },
        prune: None,
        make_parents: false,
        // Test drives are folders in a scratch directory on the system disk.
        not_a_drive: true,
        ledger: ledger.map(Utf8Path::to_owned),
        since: Vec::new(),
        site_keys: None,
        base_keys: Vec::new(),
        rehash: false,
        ledger_contents: Some(ferry::ledger::DEFAULT_CONTENTS_FLOOR),
    }
}

fn export_to(
    source: &Utf8Path,
    media: &Utf8Path,
    ledger: &Utf8Path,
    created: Timestamp,
    key: &SecretKey,
) -> ExportReport {
    export::export(&options(source, media, Some(ledger), created), key, &Silent).expect("export")
}

fn import_from(target: &Utf8Path, media: &Utf8Path, key: &SecretKey) -> import::ImportReport {
    let options = ImportOptions::new(vec![media.to_owned()], ferry::clock::now());
    import::import(&DirBackend::new(target, None), &options, &key.own_trust(), &Silent).expect("import")
}

fn noon() -> Timestamp {
    ferry::clock::parse("2026-12-04T12:00:00Z").unwrap()
}

/// Two versions of the repository, each on its own drive, exported within
/// one second (a script exporting two days in a row): with only the clock
/// they would share a sequence and the second import would be refused.
#[test]
fn two_exports_in_one_second_get_increasing_sequences_and_import_in_order() {
    let scratch = Scratch::new();
    let (source, ledger, target) = (scratch.path("source"), scratch.path("ledger"), scratch.path("site"));
    let key = SecretKey::generate().unwrap();
    small_repository(&source);
    let first = export_to(&source, &scratch.path("drive-1"), &ledger, noon(), &key);
    write(&source.join("bases/av-1.dat"), b"antivirus database one, day two\n");
    let second = export_to(&source, &scratch.path("drive-2"), &ledger, noon(), &key);
    assert_eq!(first.sequence, noon().as_second() as u64);
    assert!(second.sequence > first.sequence, "{} then {}", first.sequence, second.sequence);

    assert_eq!(import_from(&target, &scratch.path("drive-1"), &key).snapshot.sequence, first.sequence);
    assert_eq!(import_from(&target, &scratch.path("drive-2"), &key).snapshot.sequence, second.sequence);
    assert_eq!(served_tree(&target), served_tree(&source));
}

/// The clock steps back a day between two exports (NTP, a wrong BIOS
/// clock): the sequence keeps counting up from the last export, but the
/// snapshot's creation time is a day early, and import refuses it.
#[test]
fn an_export_with_the_clock_set_back_a_day_still_gets_a_higher_sequence() {
    let scratch = Scratch::new();
    let (source, ledger, target) = (scratch.path("source"), scratch.path("ledger"), scratch.path("site"));
    let key = SecretKey::generate().unwrap();
    small_repository(&source);
    let first = export_to(&source, &scratch.path("drive-1"), &ledger, noon(), &key);
    write(&source.join("bases/new.dat"), b"added the next day\n");
    let yesterday = noon().checked_sub(SignedDuration::from_hours(24)).unwrap();
    let second = export_to(&source, &scratch.path("drive-2"), &ledger, yesterday, &key);
    assert_eq!(second.sequence, first.sequence + 1);

    import_from(&target, &scratch.path("drive-1"), &key);
    // The isolated side refuses it all the same: it was created before the
    // installed snapshot (freeze protection, formats/target-state-v1.md
    // §10 FR2). Fixing the clock and exporting again is the way on.
    let options = ImportOptions::new(vec![scratch.path("drive-2")], ferry::clock::now());
    let refused = import::import(&DirBackend::new(&target, None), &options, &key.own_trust(), &Silent);
    assert!(matches!(refused, Err(ferry::Error::Stale { .. })), "{refused:?}");
    let fixed = noon().checked_add(SignedDuration::from_hours(1)).unwrap();
    let third = export_to(&source, &scratch.path("drive-3"), &ledger, fixed, &key);
    assert!(third.sequence > second.sequence);
    let report = import_from(&target, &scratch.path("drive-3"), &key);
    assert_eq!((report.snapshot.sequence, report.added), (third.sequence, 1));
    assert_eq!(served_tree(&target), served_tree(&source));
}

/// Without a ledger the clock alone decides, as before: the same second
/// gives the same sequence (on separate drives). This is the defect the
/// ledger fixes, kept visible so nobody mistakes the no-ledger mode for safe.
#[test]
fn without_a_ledger_the_clock_and_the_media_decide() {
    let scratch = Scratch::new();
    let source = scratch.path("source");
    let key = SecretKey::generate().unwrap();
    small_repository(&source);
    let drive = scratch.path("drive");
    let first = export::export(&options(&source, &drive, None, noon()), &key, &Silent).unwrap();
    let same_drive = export::export(&options(&source, &drive, None, noon()), &key, &Silent).unwrap();
    let other_drive = export::export(&options(&source, &scratch.path("other"), None, noon()), &key, &Silent).unwrap();
    assert_eq!(same_drive.sequence, first.sequence + 1, "the media's own snapshots still count");
    assert_eq!(other_drive.sequence, first.sequence);
    let mut forced = options(&source, &scratch.path("forced"), Some(&scratch.path("ledger")), noon());
    forced.sequence = Some(7);
    assert_eq!(export::export(&forced, &key, &Silent).unwrap().sequence, 7, "--sequence is used as given");
}

/// Every export is recorded with a copy of its signed manifest, which is
/// found again by snapshot id and verified before it is decoded.
#[test]
fn the_ledger_records_each_export_and_finds_it_by_snapshot_id() {
    let scratch = Scratch::new();
    let (source, ledger_dir) = (scratch.path("source"), scratch.path("ledger"));
    let key = SecretKey::generate().unwrap();
    small_repository(&source);
    let report = export_to(&source, &scratch.path("drive"), &ledger_dir, noon(), &key);
    let repository = RepositoryId::new(REPOSITORY).unwrap();
    let ledger = Ledger::new(&ledger_dir).read(&repository).unwrap();
    let id = ferry::digest::Digest::from_hex(&report.snapshot_id).unwrap();
    let record = ledger.find(&id).expect("recorded");
    assert_eq!((record.sequence, record.created), (report.sequence, noon()));
    let snapshot = ledger.snapshot(&id, &key.own_trust()).unwrap();
    assert_eq!(snapshot.manifest().sequence, report.sequence);
    let index = std::fs::read_to_string(ledger_dir.join("av/index")).unwrap();
    assert_eq!(
        index,
        format!("ferry ledger v1\nrepository: av\nexported {} 2026-12-04T12:00:00Z {id}\n", report.sequence)
    );
    // The exported contents are kept by SHA-256, for patches later (§7).
    let content = std::fs::read(source.join("bases/av-2.dat")).unwrap();
    let digest = ferry::digest::Digest::of(&content);
    assert_eq!(ledger.object(&digest).unwrap(), Some(content));
    std::fs::write(ledger_dir.join(format!("av/objects/{}/{digest}", &digest.to_hex()[..2])), b"damaged").unwrap();
    assert_eq!(ledger.object(&digest).unwrap(), None, "an object that does not match its name is not used");

    // A copy changed in the ledger is refused, not decoded.
    let copy = ledger_dir.join(format!("av/snapshots/{id}.manifest"));
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[30] ^= 1;
    std::fs::write(&copy, bytes).unwrap();
    let error = ledger.snapshot(&id, &key.own_trust()).unwrap_err().to_string();
    assert!(error.contains("does not match its snapshot id"), "{error}");
    let other = SecretKey::generate().unwrap();
    let unknown = ferry::digest::Digest([9; 32]);
    let error = ledger.snapshot(&unknown, &other.own_trust()).unwrap_err().to_string();
    assert!(error.contains("is not in the ledger") && error.contains("hint:"), "{error}");
}

/// An export killed after reserving its sequence leaves the reservation:
/// that sequence is never handed out again, even on another drive.
#[test]
fn a_reserved_sequence_is_never_reused() {
    let scratch = Scratch::new();
    let (source, ledger_dir) = (scratch.path("source"), scratch.path("ledger"));
    let key = SecretKey::generate().unwrap();
    small_repository(&source);
    let reserved = noon().as_second() as u64 + 5;
    write(
        &ledger_dir.join("av/index"),
        format!("ferry ledger v1\nrepository: av\nreserved {reserved} 2026-12-04T12:00:05Z\n").as_bytes(),
    );
    let report = export_to(&source, &scratch.path("drive"), &ledger_dir, noon(), &key);
    assert_eq!(report.sequence, reserved + 1);
    let index = std::fs::read_to_string(ledger_dir.join("av/index")).unwrap();
    assert!(index.contains(&format!("reserved {reserved} ")) && index.contains(&format!("exported {}", reserved + 1)));

    // A damaged index stops the export before anything is written.
    write(&ledger_dir.join("av/index"), b"ferry ledger v1\nrepository: av\nexported 1\n");
    let drive = scratch.path("drive-2");
    let error = export::export(&options(&source, &drive, Some(&ledger_dir), noon()), &key, &Silent).unwrap_err();
    assert!(error.to_string().contains("line 3"), "{error}");
    assert!(!drive.exists());
}

/// Exports of one repository started at once take turns on the ledger's
/// lock, so each gets its own sequence.
#[test]
fn concurrent_exports_of_one_repository_get_distinct_sequences() {
    let scratch = Scratch::new();
    let (source, ledger) = (scratch.path("source"), scratch.path("ledger"));
    let key = SecretKey::generate().unwrap();
    small_repository(&source);
    let drives: Vec<Utf8PathBuf> = (0..4).map(|n| scratch.path(&format!("drive-{n}"))).collect();
    let mut sequences: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = drives
            .iter()
            .map(|drive| scope.spawn(|| export_to(&source, drive, &ledger, noon(), &key).sequence))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    sequences.sort();
    let first = noon().as_second() as u64;
    assert_eq!(sequences, vec![first, first + 1, first + 2, first + 3]);
}

/// The clock stepped back on the connected side: without `--created`, the
/// export records the newest export's time instead of the clock's, says so,
/// and the site takes it (freeze protection refuses only an older time).
#[test]
fn a_clock_behind_the_newest_export_records_that_export_s_time() {
    let scratch = Scratch::new();
    let (source, ledger, target) = (scratch.path("source"), scratch.path("ledger"), scratch.path("site"));
    let key = SecretKey::generate().unwrap();
    small_repository(&source);
    // An export recorded a day ahead of this machine's clock.
    let ahead = ferry::clock::now().checked_add(SignedDuration::from_hours(24)).unwrap();
    let first = export_to(&source, &scratch.path("drive-1"), &ledger, ahead, &key);
    import_from(&target, &scratch.path("drive-1"), &key);
    write(&source.join("bases/new.dat"), b"added later\n");
    let clock = ExportOptions { created: None, ..options(&source, &scratch.path("drive-2"), Some(&ledger), ahead) };
    let notices = Notices::default();
    let second = export::export(&clock, &key, &notices).expect("export");
    assert_eq!(second.sequence, first.sequence + 1);
    assert_eq!(second.created, first.created, "the newest export's time, not the clock's");
    let said = notices.0.lock().unwrap().join("\n");
    assert!(said.contains("check the clock"), "{said}");
    let report = import_from(&target, &scratch.path("drive-2"), &key);
    assert_eq!((report.snapshot.sequence, report.added), (second.sequence, 1));
}

/// Collects what an operation wants the operator to see.
#[derive(Default)]
struct Notices(std::sync::Mutex<Vec<String>>);

impl ferry::report::Progress for Notices {
    fn phase(&self, _name: &str, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn notice(&self, _message: &str) {}
    fn attention(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_owned());
    }
}

/// The objects of a repository's ledger, by file name (SHA-256).
fn objects(ledger: &Utf8Path) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(folders) = std::fs::read_dir(ledger.join("av/objects")) else { return names };
    for folder in folders {
        for object in std::fs::read_dir(folder.unwrap().path()).unwrap() {
            names.push(object.unwrap().file_name().into_string().unwrap());
        }
    }
    names.sort();
    names
}

/// Kept contents are bounded (ledger-v1.md §7 O5, O6): by default only
/// files of at least 64 KiB are copied into the ledger; a changed file
/// under the floor then crosses whole in the next delta, one above it as
/// a patch, and the site still ends up with the source's bytes.
/// `--ledger-contents 0` keeps every file, `none` keeps nothing.
#[test]
fn the_ledger_keeps_contents_of_files_above_the_floor_only() {
    let scratch = Scratch::new();
    let (source, ledger_dir, site) = (scratch.path("source"), scratch.path("ledger"), scratch.path("site"));
    let key = SecretKey::generate().unwrap();
    small_repository(&source);
    let (small, big) = (support::pseudo_random_bytes(1, 20_000), support::pseudo_random_bytes(2, 200_000));
    write(&source.join("bases/small.dat"), &small);
    write(&source.join("bases/big.dat"), &big);
    let full = export_to(&source, &scratch.path("drive-0"), &ledger_dir, noon(), &key);
    let digest = |bytes: &[u8]| ferry::digest::Digest::of(bytes).to_hex();
    let mut expected = vec![digest(&big), digest(&std::fs::read(source.join("bases/av-2.dat")).unwrap())];
    expected.sort();
    assert_eq!(objects(&ledger_dir), expected, "only files of at least 64 KiB are kept");
    import_from(&site, &scratch.path("drive-0"), &key);

    // Both change in place by a few KiB: the big one is patched from its
    // kept version, the small one has none and crosses whole.
    let edit = |mut bytes: Vec<u8>, seed| {
        bytes[5_000..9_000].copy_from_slice(&support::pseudo_random_bytes(seed, 4_000));
        bytes
    };
    let (small, big) = (edit(small, 3), edit(big, 4));
    write(&source.join("bases/small.dat"), &small);
    write(&source.join("bases/big.dat"), &big);
    let mut delta = options(&source, &scratch.path("drive-1"), Some(&ledger_dir), noon());
    delta.since = vec![full.snapshot_id.clone()];
    let report = export::export(&delta, &key, &Silent).unwrap();
    let repository = RepositoryId::new(REPOSITORY).unwrap();
    let ledger = Ledger::new(&ledger_dir).read(&repository).unwrap();
    let id = ferry::digest::Digest::from_hex(&report.snapshot_id).unwrap();
    let snapshot = ledger.snapshot(&id, &key.own_trust()).unwrap();
    let carry = |path: &str| snapshot.delta().unwrap().carry_of(path);
    use ferry::manifest_v3::Carry;
    assert_eq!(
        (carry("bases/small.dat"), carry("bases/big.dat"), carry("bases/av-1.dat")),
        (Carry::Whole, Carry::Patched, Carry::Base)
    );
    assert!(report.carried_bytes < 20_000 + 20_000, "{}", report.carried_bytes);
    // The delta kept the new big version (from the bytes its plan read),
    // for the next patch, and not the small one.
    assert_eq!(ledger.object(&ferry::digest::Digest::of(&big)).unwrap().as_deref(), Some(&big[..]));
    assert_eq!(ledger.object(&ferry::digest::Digest::of(&small)).unwrap(), None);
    import_from(&site, &scratch.path("drive-1"), &key);
    assert_eq!(served_tree(&site), served_tree(&source));

    // `0` keeps every file; `none` keeps nothing (and leaves what is there).
    let mut all = options(&source, &scratch.path("drive-2"), Some(&scratch.path("ledger-all")), noon());
    all.ledger_contents = Some(0);
    export::export(&all, &key, &Silent).unwrap();
    assert_eq!(objects(&scratch.path("ledger-all")).len(), 8, "the 8 files of the source, the empty one included");
    let mut none = options(&source, &scratch.path("drive-3"), Some(&scratch.path("ledger-none")), noon());
    none.ledger_contents = None;
    export::export(&none, &key, &Silent).unwrap();
    assert!(objects(&scratch.path("ledger-none")).is_empty());
}

/// `--ledger-contents` from the command line and `FERRY_LEDGER_CONTENTS`
/// (ledger-v1.md §7 O5): a size, `none`, and a bad value refused (exit 2)
/// before anything is written.
#[test]
fn ledger_contents_is_set_on_the_command_line_or_in_the_environment() {
    let scratch = Scratch::new();
    let (source, key) = (scratch.path("source"), scratch.path("k"));
    small_repository(&source);
    support::keygen(&key);
    let export = |drive: &str, ledger: &str, contents: Option<&str>, env: Option<&str>| {
        let mut command = support::ferry();
        let (drive, ledger) = (scratch.path(drive), scratch.path(ledger));
        command.args(["export", source.as_str(), drive.as_str(), "--key", &format!("{key}.key"), "-q"]);
        command.args(["--repository", REPOSITORY, "--no-read-back", "--ledger", ledger.as_str()]);
        command.args(contents.map(|value| vec!["--ledger-contents", value]).unwrap_or_default());
        if let Some(value) = env {
            command.env("FERRY_LEDGER_CONTENTS", value);
        }
        support::Run::from(command.output().unwrap())
    };
    export("d1", "l1", None, None).ok();
    assert_eq!(objects(&scratch.path("l1")).len(), 1, "the default floor: only av-2.dat (70,000 bytes)");
    export("d2", "l2", Some("1"), None).ok();
    assert_eq!(objects(&scratch.path("l2")).len(), 5, "every file of at least 1 byte");
    export("d3", "l3", None, Some("none")).ok();
    assert!(objects(&scratch.path("l3")).is_empty());
    let refused = export("d4", "l4", Some("lots"), None).expect_code(2);
    assert!(refused.stderr.contains("--ledger-contents") && refused.stderr.contains("none"), "{}", refused.stderr);
    assert!(!scratch.path("d4").exists() && !scratch.path("l4").exists());
}
