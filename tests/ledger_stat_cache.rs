//! The ledger's stat cache (formats/ledger-v1.md §8), through the real
//! binary: a delta takes unchanged files from it without reading them,
//! reads what changed (a write, or a same-size rewrite with the
//! modification time restored), never caches a file changed just before
//! the scan, ignores a damaged cache, and a cache that lies about a file's
//! content never makes the signed manifest lie.

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use std::time::Duration;
use support::*;

struct Site {
    scratch: Scratch,
    key: Utf8PathBuf,
    public: Utf8PathBuf,
    ledger: Utf8PathBuf,
    source: Utf8PathBuf,
    target: Utf8PathBuf,
    drives: std::cell::Cell<usize>,
}

impl Site {
    fn new() -> Site {
        let scratch = Scratch::new();
        keygen(&scratch.path("k"));
        let site = Site {
            key: scratch.path("k.key"),
            public: scratch.path("k.pub"),
            ledger: scratch.path("ledger"),
            source: scratch.path("source"),
            target: scratch.path("target"),
            drives: std::cell::Cell::new(0),
            scratch,
        };
        small_repository(&site.source);
        site
    }

    /// Exports onto a new drive (`extra`: `--since ID` and more), imports
    /// it into the target and checks the target equals the source; returns
    /// the export's JSON report and its stderr.
    fn export_and_import(&self, extra: &[&str]) -> (serde_json::Value, String) {
        let out = self.export_and_import_text(&[extra, &["--json"]].concat());
        let report = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
        (report, out.stderr)
    }

    /// [`Site::export_and_import`] with the export's text output.
    fn export_and_import_text(&self, extra: &[&str]) -> Run {
        self.drives.set(self.drives.get() + 1);
        let drive = self.scratch.path(&format!("drive-{}", self.drives.get()));
        let mut args = vec!["export", self.source.as_str(), drive.as_str(), "--key", self.key.as_str()];
        args.extend(["--repository", "av", "--ledger", self.ledger.as_str()]);
        args.extend_from_slice(extra);
        let out = run(&args).ok();
        run(&["import", drive.as_str(), self.target.as_str(), "--trust", self.public.as_str(), "-q"]).ok();
        assert_eq!(tree_state(&self.source), served_tree(&self.target), "the target is not the source");
        out
    }

    /// The snapshot id of the newest export in the ledger.
    fn newest(&self) -> String {
        let index = std::fs::read_to_string(self.ledger.join("av/index")).unwrap();
        index.lines().rev().find_map(|l| l.strip_prefix("exported ")).unwrap().split(' ').nth(2).unwrap().to_owned()
    }

    fn cache(&self) -> String {
        std::fs::read_to_string(self.ledger.join("av/stat-cache")).unwrap()
    }
}

fn id(report: &serde_json::Value) -> String {
    report["snapshot_id"].as_str().unwrap().to_owned()
}

fn cached(report: &serde_json::Value) -> u64 {
    report["from_stat_cache"].as_u64().unwrap()
}

/// Waits until files written before now are outside the racy window
/// (ledger-v1.md §8 S3): not a timing assertion, a precondition.
fn let_files_settle() {
    std::thread::sleep(Duration::from_millis(2_200));
}

/// Sets the modification time of `path` to `time` (what `touch -d` does).
fn set_mtime(path: &Utf8Path, time: std::time::SystemTime) {
    std::fs::File::options().write(true).open(path).unwrap().set_modified(time).unwrap();
}

const FILES: u64 = 6;

#[test]
fn a_delta_reads_only_files_whose_stat_data_changed() {
    let site = Site::new();
    // Written just now: every file is racy, none is cached.
    let (full, _) = site.export_and_import(&[]);
    assert_eq!(cached(&full), 0, "a full export takes nothing from the cache");
    assert!(site.cache().starts_with("ferry stat cache v1\nrepository: av\nentries: 0\n"), "{}", site.cache());

    let_files_settle();
    let (second, _) = site.export_and_import(&["--since", &id(&full)]);
    assert_eq!(cached(&second), 0, "the first export's files were all racy");
    assert!(site.cache().contains(&format!("entries: {FILES}\n")), "{}", site.cache());

    // One file grows; another keeps its size and gets its old modification
    // time back (`touch -d`): only its change time tells.
    let grown = site.source.join("bases/av-1.dat");
    std::fs::write(&grown, b"antivirus database one, version two\n").unwrap();
    let restored = site.source.join("bases/av-2.dat");
    let mtime = std::fs::metadata(&restored).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&restored).unwrap();
    bytes[1000..1010].copy_from_slice(b"0123456789");
    std::fs::write(&restored, &bytes).unwrap();
    set_mtime(&restored, mtime);
    let (third, _) = site.export_and_import(&["--since", &id(&second)]);
    assert_eq!(cached(&third), FILES - 2, "both changed files are read, the others are not");
    assert!(third["carried_bytes"].as_u64().unwrap() > 0);

    // Changed just before the export: read now, and not cached (racy); so
    // were the two changed files before the previous export.
    std::fs::write(site.source.join("index/master.xml"), b"<index/>\n").unwrap();
    let (fourth, _) = site.export_and_import(&["--since", &id(&third)]);
    assert_eq!(cached(&fourth), FILES - 3);
    assert!(!site.cache().contains(" index/master.xml\n"), "a racy file was cached: {}", site.cache());

    // --rehash reads everything.
    let (fifth, _) = site.export_and_import(&["--since", &id(&fourth), "--rehash"]);
    assert_eq!(cached(&fifth), 0);
}

#[test]
fn a_damaged_cache_is_ignored_with_a_warning_and_rewritten() {
    let site = Site::new();
    let_files_settle();
    site.export_and_import(&[]);
    let intact = site.cache();
    assert!(intact.contains(&format!("entries: {FILES}\n")), "{intact}");
    for damage in [intact.replace("entries: 6", "entries: 7"), intact.replacen('.', ",", 1), "garbage".into()] {
        std::fs::write(site.ledger.join("av/stat-cache"), damage).unwrap();
        let out = site.export_and_import_text(&["--since", &site.newest()]);
        assert!(!out.stdout.contains("not read"), "a damaged cache was used: {}", out.stdout);
        assert!(out.stderr.contains("ignoring the ledger's stat cache, every file is read"), "{}", out.stderr);
        assert_eq!(site.cache(), intact, "the cache was not rewritten");
    }
}

/// A cache entry whose stat data match but whose SHA-256 is wrong (the
/// file was changed behind the filesystem's back): the bytes copied to the
/// medium show it, the export is made again reading every file, and the
/// signed manifest states the file's true content.
#[test]
fn a_cache_that_lies_about_a_carried_file_never_makes_the_manifest_lie() {
    let site = Site::new();
    let_files_settle();
    let (full, _) = site.export_and_import(&[]);
    let wrong = "ab".repeat(32);
    let cache = site.cache();
    let line = cache.lines().find(|l| l.ends_with(" bases/empty.dat")).unwrap();
    let digest = line.split(' ').nth(5).unwrap();
    std::fs::write(site.ledger.join("av/stat-cache"), cache.replace(line, &line.replace(digest, &wrong))).unwrap();
    let out = site.export_and_import_text(&["--since", &id(&full), "-v"]);
    assert!(out.stderr.contains("bases/empty.dat` changed while it was read"), "{}", out.stderr);
    assert!(out.stderr.contains("stat cache could not see"), "{}", out.stderr);
    assert!(!out.stdout.contains("not read"), "the second attempt reads every file: {}", out.stdout);
    assert!(!site.cache().contains(&wrong), "the wrong entry survived: {}", site.cache());
}
