//! `ferry export --since`: a delta from the snapshots named by receipts,
//! manifests or snapshot ids, all found in the export ledger
//! (formats/delta-v1.md §3). [`resolve_bases`] runs before the export
//! writes anything; [`DeltaPlan::new`] decides, from the source's hashes,
//! what the medium carries; [`DeltaPlan::manifest`] makes the complete
//! manifest from what was written.

use crate::delta::medium;
use crate::delta::plan::{self, CarryPlan};
use crate::delta::receipt::{RECEIPT_MAGIC, Receipt};
use crate::digest::{Digest, copy_hashing};
use crate::error::{Error, IoContext, Result};
use crate::ledger::stat_cache::{CachedFile, cacheable};
use crate::ledger::{ExportLock, RepositoryLedger, StatCache};
use crate::manifest::{Entry, EntryKind, FileEntry, Manifest, RepositoryId};
use crate::manifest_v3::{Carry, Delta, MAX_BASES, SnapshotManifest};
use crate::rel_path::RelPath;
use crate::report::Progress;
use crate::scan::{SourceEntry, Stamp};
use crate::signing::{TrustStore, VerifiedSnapshot};
use camino::{Utf8Path, Utf8PathBuf};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The bases `since` names ([`resolve_ids`]), each read from the ledger
/// and authenticated (formats/delta-v1.md DE1a): its copy verifies with
/// `trust` (the exporting key and those of `--base-trust`), or, signed by
/// another key (one used before a key rotation), a receipt signed by a
/// site key of `site_keys` names it and the copy hashes to that snapshot
/// id. Nothing else is accepted.
pub fn resolve_bases(
    since: &[String],
    ledger: &RepositoryLedger,
    repository: &RepositoryId,
    site_keys: Option<&TrustStore>,
    trust: &TrustStore,
) -> Result<Vec<VerifiedSnapshot>> {
    let bases = resolve_named(since, ledger, repository, site_keys)?;
    bases
        .iter()
        .map(|(id, named)| match ledger.snapshot(id, trust) {
            Err(Error::UntrustedKey { .. }) if named.vouched => ledger.snapshot_by_id(id),
            Err(Error::UntrustedKey { signed_by, trusted, .. }) => Err(Error::InvalidArgument(format!(
                "--since `{}`: the ledger's copy of snapshot {} is signed by key(s) {signed_by}, not by the exporting key or a --base-trust key ({trusted}), and no signed receipt names it\nhint: after a key rotation, pass --base-trust OLD.pub (the key that signed it), or give the receipt the site signed with its site key (ferry receipt TARGET OUT --key SITE.key) and --site-trust SITE.pub",
                named.value,
                id.short()
            ))),
            other => other,
        })
        .collect()
}

/// Finds the snapshot each `--since` value names in the ledger: a receipt
/// file (checked as in formats/receipt-v1.md §4), a manifest file, or a
/// snapshot id (64 hex digits, or an unambiguous prefix of at least 8).
/// Returns the snapshot ids, once each, sorted.
pub fn resolve_ids(
    since: &[String],
    ledger: &RepositoryLedger,
    repository: &RepositoryId,
    site_keys: Option<&TrustStore>,
) -> Result<Vec<Digest>> {
    Ok(resolve_named(since, ledger, repository, site_keys)?.into_iter().map(|(id, _)| id).collect())
}

/// How a base was named on the command line.
#[derive(Debug)]
struct Named<'a> {
    /// The `--since` value (the first, when several name one snapshot).
    value: &'a str,
    /// A receipt signed by a trusted site key names it.
    vouched: bool,
}

/// [`resolve_ids`], with how each base was named.
fn resolve_named<'a>(
    since: &'a [String],
    ledger: &RepositoryLedger,
    repository: &RepositoryId,
    site_keys: Option<&TrustStore>,
) -> Result<Vec<(Digest, Named<'a>)>> {
    let mut ids: Vec<(Digest, Named<'a>)> = Vec::new();
    for value in since {
        let (id, vouched) = resolve_one(value, ledger, repository, site_keys)?;
        match ids.iter_mut().find(|(seen, _)| *seen == id) {
            Some((_, named)) => named.vouched |= vouched,
            None => ids.push((id, Named { value, vouched })),
        }
    }
    if ids.len() > MAX_BASES {
        return Err(Error::InvalidArgument(format!(
            "--since names {} snapshots; one delta serves at most {MAX_BASES}",
            ids.len()
        )));
    }
    ids.sort_by_key(|(id, _)| id.0);
    Ok(ids)
}

/// The snapshot id `value` names, and whether a receipt signed by a
/// trusted site key names it.
fn resolve_one(
    value: &str,
    ledger: &RepositoryLedger,
    repository: &RepositoryId,
    site_keys: Option<&TrustStore>,
) -> Result<(Digest, bool)> {
    let path = Utf8Path::new(value);
    if path.is_file() {
        let mut head = crate::fsutil::read_capped(path, crate::manifest::MAX_MANIFEST_BYTES)?;
        // A `manifest.zst` from a drive (formats/manifest-v3.md §7).
        if head.starts_with(&ZSTD_MAGIC) {
            head = crate::media::manifest_file::decompress(&head, path)?;
        }
        let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
        if first == RECEIPT_MAGIC.as_bytes() {
            let read = Receipt::read(path, site_keys)?;
            read.receipt.check_against(path, ledger, repository)?;
            return Ok((read.receipt.snapshot, read.signed_by.is_some()));
        }
        if std::str::from_utf8(first).is_ok_and(crate::manifest_v3::is_magic) {
            return known(Digest::of(&head), value, ledger).map(|id| (id, false));
        }
        return Err(Error::format(
            path,
            "neither a receipt (`ferry receipt v1`) nor a manifest (`ferry manifest v1` to `v3`, or a `manifest.zst`)",
        ));
    }
    if let Some(id) = Digest::from_hex(value) {
        return known(id, value, ledger).map(|id| (id, false));
    }
    let hex = value.len() >= 8 && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let matches: Vec<Digest> =
        ledger.records().iter().filter_map(|r| r.snapshot).filter(|id| hex && id.to_hex().starts_with(value)).collect();
    match matches.as_slice() {
        [id] => Ok((*id, false)),
        [] => Err(Error::InvalidArgument(format!(
            "--since `{value}`: not a receipt file, a manifest file, or a snapshot id in the ledger `{}`\nhint: give the receipt the isolated site wrote (ferry receipt TARGET OUT), or a snapshot id from `ferry list`",
            ledger.dir()
        ))),
        _ => Err(Error::InvalidArgument(format!(
            "--since `{value}`: {} snapshots in the ledger start with it\nhint: give more digits of the snapshot id",
            matches.len()
        ))),
    }
}

fn known(id: Digest, value: &str, ledger: &RepositoryLedger) -> Result<Digest> {
    if ledger.find(&id).is_none() {
        return Err(Error::InvalidArgument(format!(
            "--since `{value}`: snapshot {} is not in the ledger `{}`\nhint: it was exported from another host or with another --ledger; carry a full export",
            id.short(),
            ledger.dir()
        )));
    }
    Ok(id)
}

/// The first bytes of every zstd frame (RFC 8878 §3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Why a file read for the medium or for a patch is refused when its bytes
/// are not those the delta was planned with.
const CHANGED_SINCE_PLANNED: &str = "its content differs from the SHA-256 the delta was planned with (changed since, or a change the ledger's stat cache could not see)";

/// What a delta carries, decided from the source's contents before
/// anything is written.
#[derive(Debug)]
pub struct DeltaPlan {
    bases: Vec<Digest>,
    /// Every file of the source as hashed for the plan, at the index of
    /// its entry in the scan (`None`: a folder). A million files cost no
    /// map of paths (issue 14).
    files: Vec<Option<FileEntry>>,
    carry: CarryPlan,
    /// Files whose SHA-256 came from the stat cache, not read.
    cached: usize,
    /// The bytes of changed files as they were read and hashed for the
    /// plan (see [`Wanted`]): patches are made from them and the ledger
    /// keeps them without reading the source again.
    contents: Contents,
}

/// Changed files whose bytes a delta export keeps in memory once it read
/// them for the plan, in total; beyond, they are read again when needed.
const IN_MEMORY: u64 = 256 * 1024 * 1024;

/// Which files read for the plan are worth keeping in memory: a changed
/// file (some base lacks its new content) of at most the patch limit, which
/// is patched or compressed from these bytes (delta-v1.md DW2, DW3) and
/// which the ledger may keep (ledger-v1.md §7 O5).
struct Wanted<'a> {
    bases: Vec<&'a Manifest>,
}

impl Wanted<'_> {
    fn wants(&self, path: &RelPath, size: u64, digest: &Digest) -> bool {
        let changed = self.bases.iter().any(|base| base.file_at(path.as_str()).is_none_or(|old| old.digest != *digest));
        size <= crate::delta::patch::MAX_PATCH_INPUT && changed
    }
}

impl DeltaPlan {
    /// Hashes every file of `entries` below `source` that `cache` does not
    /// know unchanged (ledger-v1.md §8), then plans the carry from `bases`
    /// (delta-v1.md §3), taking old versions from the ledger's kept
    /// contents (ledger-v1.md §7). `sequence` is the new snapshot's.
    pub fn new(
        source: &Utf8Path,
        entries: &[SourceEntry],
        bases: &[VerifiedSnapshot],
        (ledger, cache): (&RepositoryLedger, &StatCache),
        sequence: u64,
    ) -> Result<DeltaPlan> {
        if let Some(newer) = bases.iter().find(|b| b.manifest().sequence >= sequence) {
            return Err(Error::InvalidArgument(format!(
                "--since names sequence {}, not older than this export's sequence {sequence}",
                newer.manifest().sequence
            )));
        }
        let wanted = Wanted { bases: bases.iter().map(|b| b.manifest()).collect() };
        let (files, cached, contents) = hash_all(source, entries, cache, &wanted)?;
        // The new snapshot's files, as planned, in path order.
        let new = entries.iter().zip(&files).filter_map(|(entry, file)| Some((&entry.path, file.as_ref()?)));
        let base_manifests: Vec<&Manifest> = bases.iter().map(|b| b.manifest()).collect();
        let carry = plan::plan_carry(new, &base_manifests, &|digest| ledger.object(digest), &|path| {
            // Read and hashed to the planned digest a moment ago.
            if let Some((_, bytes)) = contents.get(path) {
                return Ok(Cow::Borrowed(bytes.as_slice()));
            }
            let from = path.under(source);
            let bytes = std::fs::read(&from).ctx("read", &from)?;
            // A patch must turn the old version into the planned bytes,
            // whether the plan read them or took them from the stat cache.
            let at = entries.binary_search_by(|e| e.path.as_str().as_bytes().cmp(path.as_str().as_bytes()));
            match at.ok().and_then(|n| files[n].as_ref()) {
                Some(planned) if (bytes.len() as u64, Digest::of(&bytes)) == (planned.size, planned.digest) => {
                    Ok(Cow::Owned(bytes))
                }
                _ => Err(Error::SourceChanged { path: from, problem: CHANGED_SINCE_PLANNED.into() }),
            }
        })?;
        Ok(DeltaPlan { bases: bases.iter().map(|b| b.id()).collect(), files, carry, cached, contents })
    }

    /// The bytes of the changed files the plan read, by SHA-256, for the
    /// ledger to keep without reading the source again (ledger-v1.md §7 O1).
    pub fn contents(&self) -> HashMap<Digest, &[u8]> {
        self.contents.values().map(|(digest, bytes)| (*digest, bytes.as_slice())).collect()
    }

    /// How many files the plan took from the stat cache without reading
    /// them (ledger-v1.md §8).
    pub fn cached_files(&self) -> usize {
        self.cached
    }

    /// The entries the medium carries whole: every folder and the files
    /// neither left to the bases nor patched.
    pub fn carried(&self, entries: &[SourceEntry]) -> Vec<SourceEntry> {
        entries
            .iter()
            .filter(|e| e.file.is_none() || self.carry.carry.get(e.path.as_str()) == Some(&Carry::Whole))
            .cloned()
            .collect()
    }

    /// The patch files, by their path on the medium, once each, in the
    /// order the medium holds them (after every file).
    pub fn patch_files(&self) -> Vec<(RelPath, &[u8])> {
        let mut files: BTreeMap<RelPath, &[u8]> = BTreeMap::new();
        for (line, bytes) in &self.carry.patches {
            files.insert(medium::patch_path(line), bytes);
        }
        files.into_iter().collect()
    }

    /// Bytes on the medium: files carried whole and patch files.
    pub fn carried_bytes(&self) -> u64 {
        self.carry.whole_bytes + self.patch_files().iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    }

    /// The complete manifest: `written` (the snapshot of what was carried,
    /// hashed as written) with every other file as planned. A carried file
    /// whose bytes differ from the plan's changed while it was read. `all`
    /// is the scan the plan was made from.
    pub fn manifest(&self, written: Manifest, source: &Utf8Path, all: &[SourceEntry]) -> Result<SnapshotManifest> {
        assert_eq!(all.len(), self.files.len(), "a delta plan completes the manifest of the scan it was made from");
        let hashed: HashMap<&RelPath, &FileEntry> = written.files().collect();
        let mut entries = Vec::with_capacity(all.len());
        for (entry, planned) in all.iter().zip(&self.files) {
            let Some(planned) = planned else {
                entries.push(Entry { path: entry.path.clone(), kind: EntryKind::Dir });
                continue;
            };
            if let Some(seen) = hashed.get(&entry.path)
                && (seen.size, seen.digest) != (planned.size, planned.digest)
            {
                return Err(Error::SourceChanged {
                    path: entry.path.under(source),
                    problem: CHANGED_SINCE_PLANNED.into(),
                });
            }
            entries.push(Entry { path: entry.path.clone(), kind: EntryKind::File(planned.clone()) });
        }
        let patches = self.carry.patches.iter().map(|(line, _)| line.clone()).collect();
        // The manifest's flags: `p` for patched files, `b` for those the
        // plan left to the bases, nothing for files carried whole (D3).
        let carry: BTreeMap<String, Carry> = entries
            .iter()
            .filter(|entry| entry.file().is_some())
            .filter_map(|entry| match self.carry.carry.get(entry.path.as_str()) {
                None => Some((entry.path.to_string(), Carry::Base)),
                Some(Carry::Patched) => Some((entry.path.to_string(), Carry::Patched)),
                Some(_) => None,
            })
            .collect();
        let delta = Delta { bases: self.bases.clone(), patches, carry };
        Ok(SnapshotManifest { manifest: Manifest { entries, ..written }, delta: Some(delta), policy: None })
    }
}

/// The manifest of an export: `written` as it is for a full export, made
/// complete by `plan` for a delta ([`DeltaPlan::manifest`]).
pub fn complete(
    plan: Option<&DeltaPlan>,
    written: Manifest,
    source: &Utf8Path,
    all: &[SourceEntry],
) -> Result<SnapshotManifest> {
    match plan {
        None => Ok(written.into()),
        Some(plan) => plan.manifest(written, source, all),
    }
}

/// The ledger's stat cache when `use_cache` (ledger-v1.md §8); a damaged
/// one is reported and not used at all (S5), and the export rewrites it.
pub fn stat_cache(ledger: &RepositoryLedger, use_cache: bool, progress: &dyn Progress) -> StatCache {
    if !use_cache {
        return StatCache::default();
    }
    ledger.stat_cache().unwrap_or_else(|problem| {
        progress.attention(&format!("warning: ignoring the ledger's stat cache, every file is read: {problem}"));
        StatCache::default()
    })
}

/// Replaces the ledger's stat cache with the files of the export just
/// recorded, with the stat data of the scan (`entries`) that started at
/// `scanned_at` (ledger-v1.md §8 S3, S4). The export is complete by now:
/// a failure only warns.
pub fn record_stat_cache(
    ledger: &ExportLock,
    manifest: &Manifest,
    (entries, scanned_at): (Vec<SourceEntry>, SystemTime),
    progress: &dyn Progress,
) {
    let files = || cached_files(manifest, &entries, scanned_at);
    if let Err(error) = ledger.write_stat_cache(files().count(), files()) {
        progress.notice(&format!("warning: the ledger's stat cache was not written: {error}"));
    }
}

/// The files of `manifest` with the stat data the scan saw (`entries`),
/// those [`cacheable`] at `scanned_at`. Both lists are sorted by path
/// bytes and are joined side by side: no map of every path (issue 14).
fn cached_files<'a>(
    manifest: &'a Manifest,
    entries: &'a [SourceEntry],
    scanned_at: SystemTime,
) -> impl Iterator<Item = CachedFile<'a>> {
    let mut scanned = entries.iter().peekable();
    manifest.files().filter_map(move |(path, file)| {
        while scanned.next_if(|entry| entry.path.as_str().as_bytes() < path.as_str().as_bytes()).is_some() {}
        let entry = scanned.next_if(|entry| entry.path == *path)?;
        cacheable(&entry.stamp, scanned_at).then_some((path, entry.stamp, file.digest))
    })
}

/// Bytes of files read for a plan, with their SHA-256, by path.
type Contents = HashMap<RelPath, (Digest, Vec<u8>)>;

/// Size and SHA-256 of every file: from `cache` when its stat data match
/// the scan's (ledger-v1.md §8 S2), else read in parallel, checking with
/// `fstat` before and after that the bytes read are the scan's file (so a
/// digest recorded in the next cache belongs to its stat data). Returns
/// the files, how many came from the cache, and the bytes of the files
/// read that `wanted` wants (up to [`IN_MEMORY`] in total).
fn hash_all(
    source: &Utf8Path,
    entries: &[SourceEntry],
    cache: &StatCache,
    wanted: &Wanted<'_>,
) -> Result<(Vec<Option<FileEntry>>, usize, Contents)> {
    let mut hashed = vec![None; entries.len()];
    let mut to_read: Vec<(usize, &SourceEntry)> = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        let Some(scanned) = entry.file else { continue };
        match cache.lookup(&entry.path, &entry.stamp) {
            Some(digest) => {
                let file =
                    FileEntry { size: scanned.size, digest, executable: scanned.executable, index: scanned.index };
                hashed[n] = Some(file);
            }
            None => to_read.push((n, entry)),
        }
    }
    let cached = hashed.iter().flatten().count();
    let hashed = Mutex::new((hashed, HashMap::new()));
    let reserved = AtomicU64::new(0);
    let errors = crate::parallel::for_each(&to_read, true, |&(n, entry)| -> Result<()> {
        let Some(scanned) = entry.file else { return Ok(()) };
        let from: Utf8PathBuf = entry.path.under(source);
        let mut reader = std::fs::File::open(&from).ctx("open", &from)?;
        let unchanged = |reader: &std::fs::File| -> Result<()> {
            let now = Stamp::of(&reader.metadata().ctx("inspect", &from)?);
            match entry.stamp.difference(&now) {
                Some(problem) => Err(Error::SourceChanged { path: from.clone(), problem }),
                None => Ok(()),
            }
        };
        unchanged(&reader)?;
        // Files that may be patched or kept are read into memory while
        // hashed, so that the same bytes serve later (no second read).
        let mut bytes = Vec::with_capacity(usize::try_from(scanned.size.min(IN_MEMORY)).unwrap_or(0));
        let into = (scanned.size <= crate::delta::patch::MAX_PATCH_INPUT).then_some(&mut bytes as &mut dyn Write);
        let seen = copy_hashing(&mut reader, into, u64::MAX - 1, &|_| {}).ctx("read", &from)?;
        unchanged(&reader)?;
        let keep = wanted.wants(&entry.path, seen.size, &seen.digest)
            && reserved.fetch_add(seen.size, Ordering::Relaxed) + seen.size <= IN_MEMORY;
        let file =
            FileEntry { size: seen.size, digest: seen.digest, executable: scanned.executable, index: scanned.index };
        let mut done = hashed.lock().unwrap_or_else(|p| p.into_inner());
        done.0[n] = Some(file);
        if keep {
            done.1.insert(entry.path.clone(), (seen.digest, bytes));
        }
        Ok(())
    });
    if let Some(error) = errors.into_iter().next() {
        return Err(error);
    }
    let (hashed, contents) = hashed.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok((hashed, cached, contents))
}
