//! The connected side's memory of what it exported: `formats/ledger-v1.md`.
//!
//! Every export of a repository reserves its sequence in the repository's
//! index before it writes to the media and records the signed manifest it
//! produced afterwards, all under an exclusive lock. So sequences never
//! repeat or go backwards whatever the clock does (§5), and later exports
//! (deltas, `ferry diff`, receipts) can find the exact signed manifest of
//! any earlier export by its snapshot id (§6).

pub mod index;
pub mod stat_cache;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::manifest::{Manifest, RepositoryId};
use crate::signing::{TrustStore, VerifiedSnapshot};
use camino::{Utf8Path, Utf8PathBuf};
pub use index::Record;
use jiff::Timestamp;
pub use stat_cache::StatCache;
use std::fs::{File, OpenOptions};

/// Name of a repository's lock file (§2).
pub const LOCK_FILE: &str = "lock";
/// Name of a repository's index file (§2).
pub const INDEX_FILE: &str = "index";
/// Folder of the manifest and signature copies (§2).
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// Folder of the kept file contents (§7).
pub const OBJECTS_DIR: &str = "objects";
/// Smallest file whose content export keeps by default (§7 O5): a patch
/// of a smaller file saves little, and keeping it costs a file.
pub const DEFAULT_CONTENTS_FLOOR: u64 = 64 * 1024;

/// Where the ledger lives when neither `--ledger` nor `FERRY_LEDGER` say
/// (§1 L1): `$XDG_STATE_HOME/ferry`, else `~/.local/state/ferry`; `None`
/// without a home folder.
pub fn default_location() -> Option<Utf8PathBuf> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| v.starts_with('/')).map(Utf8PathBuf::from);
    from_env("XDG_STATE_HOME")
        .map(|state| state.join("ferry"))
        .or_else(|| from_env("HOME").map(|home| home.join(".local/state/ferry")))
}

/// A ledger folder (§2).
#[derive(Debug, Clone)]
pub struct Ledger {
    root: Utf8PathBuf,
}

impl Ledger {
    /// The ledger in folder `root` (nothing is read or created yet).
    pub fn new(root: impl Into<Utf8PathBuf>) -> Self {
        Ledger { root: root.into() }
    }

    /// The ledger folder.
    pub fn root(&self) -> &Utf8Path {
        &self.root
    }

    /// Takes the exclusive export lock of `repository`, creating its folder
    /// if needed, and reads its index (§4 W1). Waits while another export
    /// of the repository holds the lock.
    pub fn begin_export(&self, repository: &RepositoryId) -> Result<ExportLock> {
        let dir = self.root.join(repository.as_str());
        fsutil::create_dir_all(&dir.join(SNAPSHOTS_DIR))?;
        let lock = open_lock(&dir)?;
        lock.lock().ctx("lock", &dir.join(LOCK_FILE))?;
        let records = read_index(&dir, repository)?;
        Ok(ExportLock { ledger: RepositoryLedger { dir, repository: repository.clone(), records, _lock: Some(lock) } })
    }

    /// Reads the records of `repository` under the shared lock, for look-ups
    /// (§4 W1). A repository never exported here has no records.
    pub fn read(&self, repository: &RepositoryId) -> Result<RepositoryLedger> {
        let dir = self.root.join(repository.as_str());
        if !dir.join(INDEX_FILE).exists() {
            return Ok(RepositoryLedger { dir, repository: repository.clone(), records: Vec::new(), _lock: None });
        }
        let lock = open_lock(&dir)?;
        lock.lock_shared().ctx("lock", &dir.join(LOCK_FILE))?;
        let records = read_index(&dir, repository)?;
        Ok(RepositoryLedger { dir, repository: repository.clone(), records, _lock: Some(lock) })
    }
}

fn open_lock(dir: &Utf8Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).ctx("open", &path)
}

fn read_index(dir: &Utf8Path, repository: &RepositoryId) -> Result<Vec<Record>> {
    let path = dir.join(INDEX_FILE);
    match fsutil::read_optional(&path, index::MAX_INDEX_BYTES)? {
        None => Ok(Vec::new()),
        Some(bytes) => index::decode(&bytes, &path, repository),
    }
}

/// The records of one repository, read under its lock (held until drop).
#[derive(Debug)]
pub struct RepositoryLedger {
    dir: Utf8PathBuf,
    repository: RepositoryId,
    records: Vec<Record>,
    _lock: Option<File>,
}

impl RepositoryLedger {
    /// The records, in the order the exports began (§3 I4).
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The folder of this repository in the ledger.
    pub fn dir(&self) -> &Utf8Path {
        &self.dir
    }

    /// The largest sequence recorded, reserved or exported.
    pub fn last_sequence(&self) -> Option<u64> {
        self.records.iter().map(|record| record.sequence).max()
    }

    /// The sequence for a new export: the larger of `floor` (the clock and
    /// the media, §5 N1) and one more than every recorded sequence.
    pub fn next_sequence(&self, floor: u64) -> u64 {
        self.last_sequence().map_or(floor, |last| floor.max(last.saturating_add(1)))
    }

    /// The `exported` record of snapshot id `snapshot`, if any.
    pub fn find(&self, snapshot: &Digest) -> Option<&Record> {
        self.records.iter().find(|record| record.snapshot.as_ref() == Some(snapshot))
    }

    /// The newest successful export (largest sequence).
    pub fn newest(&self) -> Option<&Record> {
        self.records.iter().filter(|record| record.snapshot.is_some()).max_by_key(|record| record.sequence)
    }

    /// Reads the copy of snapshot `snapshot`, checks it against its id and
    /// verifies its signature with `trust` before decoding it (§6 Q1).
    pub fn snapshot(&self, snapshot: &Digest, trust: &TrustStore) -> Result<VerifiedSnapshot> {
        self.copy(snapshot)?.verify(trust)
    }

    /// Reads the copy of snapshot `snapshot` and checks it against its id
    /// only, for a snapshot id that something else authenticates (a
    /// receipt signed by a trusted site key: formats/delta-v1.md DE1a).
    pub fn snapshot_by_id(&self, snapshot: &Digest) -> Result<VerifiedSnapshot> {
        self.copy(snapshot)?.authenticated_by_id(snapshot)
    }

    /// The copy of snapshot `snapshot` and its signature, checked against
    /// the id (§6 Q1), not yet verified.
    fn copy(&self, snapshot: &Digest) -> Result<crate::signing::Signed<crate::manifest_v3::SnapshotManifest>> {
        if self.find(snapshot).is_none() {
            return Err(Error::InvalidArgument(format!(
                "snapshot {snapshot} of repository `{}` is not in the ledger `{}`\nhint: it was exported from another host, or with another --ledger",
                self.repository, self.dir
            )));
        }
        let manifest_path = self.dir.join(SNAPSHOTS_DIR).join(format!("{snapshot}.manifest"));
        let signature_path = self.dir.join(SNAPSHOTS_DIR).join(format!("{snapshot}.sig"));
        let manifest = crate::fsutil::read_capped(&manifest_path, crate::manifest::MAX_MANIFEST_BYTES)?;
        if Digest::of(&manifest) != *snapshot {
            return Err(Error::format(&manifest_path, "the copy does not match its snapshot id (ledger damaged)"));
        }
        let signature = crate::fsutil::read_capped(&signature_path, crate::signing::MAX_SIGNATURE_BYTES)?;
        Ok(crate::signing::Signed::new(manifest, manifest_path, signature, signature_path))
    }

    /// The kept content with SHA-256 `digest`, if the ledger has it and it
    /// still matches its name (§7 O3).
    pub fn object(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let path = object_path(&self.dir, digest);
        let Some(bytes) = fsutil::read_optional(&path, crate::delta::patch::MAX_PATCH_INPUT)? else { return Ok(None) };
        Ok((Digest::of(&bytes) == *digest).then_some(bytes))
    }

    /// The stat cache (§8): empty when there is none; `Err` with the
    /// reason when it is damaged, and then it must not be used at all (S5).
    pub fn stat_cache(&self) -> std::result::Result<StatCache, String> {
        let path = self.dir.join(stat_cache::STAT_CACHE_FILE);
        match fsutil::read_optional(&path, stat_cache::MAX_STAT_CACHE_BYTES) {
            Ok(None) => Ok(StatCache::default()),
            Ok(Some(bytes)) => StatCache::decode(&bytes, &path, &self.repository).map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        }
    }

    fn write_index(&self) -> Result<()> {
        fsutil::write_atomic(&self.dir.join(INDEX_FILE), &index::encode(&self.repository, &self.records))
    }
}

/// A repository's ledger held under the exclusive export lock.
#[derive(Debug)]
pub struct ExportLock {
    ledger: RepositoryLedger,
}

impl ExportLock {
    /// The records read under the lock.
    pub fn ledger(&self) -> &RepositoryLedger {
        &self.ledger
    }

    /// Records that an export with `sequence` began (§4 W3 step 1); from
    /// now on that sequence is never handed out again.
    pub fn reserve(&mut self, sequence: u64, created: Timestamp) -> Result<()> {
        self.ledger.records.push(Record { sequence, created, snapshot: None });
        self.ledger.write_index()
    }

    /// Records the signed result of the export reserved with `sequence`
    /// (§4 W3 step 2): the copies first, the index last.
    pub fn record(&mut self, sequence: u64, created: Timestamp, manifest: &[u8], signature: &[u8]) -> Result<Digest> {
        let snapshot = Digest::of(manifest);
        let snapshots = self.ledger.dir.join(SNAPSHOTS_DIR);
        fsutil::write_atomic(&snapshots.join(format!("{snapshot}.manifest")), manifest)?;
        fsutil::write_atomic(&snapshots.join(format!("{snapshot}.sig")), signature)?;
        let done = Record { sequence, created, snapshot: Some(snapshot) };
        let reserved = self.ledger.records.iter().rposition(|r| r.snapshot.is_none() && r.sequence == sequence);
        match reserved {
            Some(at) => self.ledger.records[at] = done,
            None => self.ledger.records.push(done),
        }
        self.ledger.write_index()?;
        Ok(snapshot)
    }

    /// Replaces the stat cache (§8 S4), atomically, with the `count` files
    /// of `files` (see [`stat_cache::write_cache`]), streamed to the file.
    pub fn write_stat_cache<'a>(
        &self,
        count: usize,
        files: impl Iterator<Item = stat_cache::CachedFile<'a>>,
    ) -> Result<()> {
        let mut files = Some(files);
        crate::beneath::Dir::root(&self.ledger.dir)?.write_atomic_with(stat_cache::STAT_CACHE_FILE, &mut |out| {
            stat_cache::write_cache(out, &self.ledger.repository, count, files.take().into_iter().flatten())
        })
    }

    /// Keeps the content of every file of `manifest` of at least `floor`
    /// bytes (§7 O5) and at most the patch limit that the ledger does not
    /// have yet, read again from `source` and kept only if it still has the
    /// manifest's digest (§7 O1), or taken from `known`: bytes this export
    /// already read and hashed to that digest. Contents in `kept_before` (a
    /// delta's bases, whose exports kept them) are not looked for (O1a).
    /// Returns how many files were kept.
    pub fn keep_contents(
        &self,
        source: &Utf8Path,
        manifest: &Manifest,
        kept_before: &std::collections::HashSet<Digest>,
        (floor, known): (u64, &std::collections::HashMap<Digest, &[u8]>),
    ) -> Result<usize> {
        let wanted: Vec<(&crate::rel_path::RelPath, &crate::manifest::FileEntry)> = manifest
            .files()
            .filter(|(_, file)| (floor..=crate::delta::patch::MAX_PATCH_INPUT).contains(&file.size))
            .filter(|(_, file)| !kept_before.contains(&file.digest))
            .collect();
        let kept = std::sync::atomic::AtomicUsize::new(0);
        let errors = crate::parallel::for_each(&wanted, true, |(path, file)| -> Result<()> {
            if keep_one(&self.ledger.dir, (&path.under(source), known.get(&file.digest).copied()), file)? {
                kept.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        });
        let kept = kept.into_inner();
        if kept > 0 {
            fsutil::sync_filesystem(&self.ledger.dir)?;
        }
        match errors.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(kept),
        }
    }
}

/// Copies `from` into the object of `file` unless it is there already;
/// renamed into place only when its bytes are still the manifest's (§7
/// O1). `known`: the file's bytes, read and hashed to its digest by this
/// export, written instead. Returns whether it was kept now.
fn keep_one(
    dir: &Utf8Path,
    (from, known): (&Utf8Path, Option<&[u8]>),
    file: &crate::manifest::FileEntry,
) -> Result<bool> {
    let object = object_path(dir, &file.digest);
    if object.exists() {
        return Ok(false);
    }
    let folder = object.parent().unwrap_or(dir);
    fsutil::create_dir_all(folder)?;
    let temporary = folder.join(format!(".{}.ferry-tmp", file.digest));
    if let Some(bytes) = known {
        std::fs::write(&temporary, bytes).ctx("write", &temporary)?;
        std::fs::rename(&temporary, &object).ctx("rename into place", &object)?;
        return Ok(true);
    }
    let mut reader = File::open(from).ctx("open", from)?;
    let mut writer = File::create(&temporary).ctx("create", &temporary)?;
    let seen = crate::digest::copy_hashing(&mut reader, Some(&mut writer), file.size, &|_| {})
        .ctx("copy into the ledger", from)?;
    drop(writer);
    if seen.size == file.size && seen.digest == file.digest {
        std::fs::rename(&temporary, &object).ctx("rename into place", &object)?;
        Ok(true)
    } else {
        fsutil::remove_file(&temporary)?;
        Ok(false)
    }
}

fn object_path(dir: &Utf8Path, digest: &Digest) -> Utf8PathBuf {
    let hex = digest.to_hex();
    dir.join(OBJECTS_DIR).join(&hex[..2]).join(hex)
}
