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
use crate::ledger::RepositoryLedger;
use crate::manifest::{Entry, EntryKind, FileEntry, Manifest, RepositoryId};
use crate::manifest_v3::{Carry, Delta, MAX_BASES, SnapshotManifest};
use crate::rel_path::RelPath;
use crate::scan::SourceEntry;
use crate::signing::{TrustStore, VerifiedSnapshot};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// The bases `since` names ([`resolve_ids`]), each read from the ledger
/// and verified with `trust`.
pub fn resolve_bases(
    since: &[String],
    ledger: &RepositoryLedger,
    repository: &RepositoryId,
    site_keys: Option<&TrustStore>,
    trust: &TrustStore,
) -> Result<Vec<VerifiedSnapshot>> {
    let ids = resolve_ids(since, ledger, repository, site_keys)?;
    ids.iter().map(|id| ledger.snapshot(id, trust)).collect()
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
    let mut ids = Vec::new();
    for value in since {
        let id = resolve_one(value, ledger, repository, site_keys)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > MAX_BASES {
        return Err(Error::InvalidArgument(format!(
            "--since names {} snapshots; one delta serves at most {MAX_BASES}",
            ids.len()
        )));
    }
    ids.sort_by_key(|id| id.0);
    Ok(ids)
}

fn resolve_one(
    value: &str,
    ledger: &RepositoryLedger,
    repository: &RepositoryId,
    site_keys: Option<&TrustStore>,
) -> Result<Digest> {
    let path = Utf8Path::new(value);
    if path.is_file() {
        let head = crate::fsutil::read_capped(path, crate::manifest::MAX_MANIFEST_BYTES)?;
        let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
        if first == RECEIPT_MAGIC.as_bytes() {
            let receipt = Receipt::read(path, site_keys)?.receipt;
            receipt.check_against(path, ledger, repository)?;
            return Ok(receipt.snapshot);
        }
        if std::str::from_utf8(first).is_ok_and(crate::manifest_v3::is_magic) {
            return known(Digest::of(&head), value, ledger);
        }
        return Err(Error::format(
            path,
            "neither a receipt (`ferry receipt v1`) nor a manifest (`ferry manifest v1` to `v3`)",
        ));
    }
    if let Some(id) = Digest::from_hex(value) {
        return known(id, value, ledger);
    }
    let hex = value.len() >= 8 && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let matches: Vec<Digest> =
        ledger.records().iter().filter_map(|r| r.snapshot).filter(|id| hex && id.to_hex().starts_with(value)).collect();
    match matches.as_slice() {
        [id] => Ok(*id),
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

/// What a delta carries, decided from the source's contents before
/// anything is written.
#[derive(Debug)]
pub struct DeltaPlan {
    bases: Vec<Digest>,
    /// Every file of the source as hashed for the plan.
    files: HashMap<RelPath, FileEntry>,
    carry: CarryPlan,
}

impl DeltaPlan {
    /// Hashes every file of `entries` below `source`, then plans the carry
    /// from `bases` (delta-v1.md §3), taking old versions from the ledger's
    /// kept contents (ledger-v1.md §7).
    pub fn new(
        source: &Utf8Path,
        entries: &[SourceEntry],
        bases: &[VerifiedSnapshot],
        ledger: &RepositoryLedger,
        sequence: u64,
    ) -> Result<DeltaPlan> {
        if let Some(newer) = bases.iter().find(|b| b.manifest().sequence >= sequence) {
            return Err(Error::InvalidArgument(format!(
                "--since names sequence {}, not older than this export's sequence {sequence}",
                newer.manifest().sequence
            )));
        }
        let files = hash_all(source, entries)?;
        let first = bases[0].manifest();
        let new = Manifest {
            repository: first.repository.clone(),
            sequence,
            created: first.created,
            expires: None,
            layout: crate::manifest::Layout::Tree,
            entries: entries
                .iter()
                .map(|e| Entry {
                    path: e.path.clone(),
                    kind: files.get(&e.path).map_or(EntryKind::Dir, |f| EntryKind::File(f.clone())),
                })
                .collect(),
        };
        let base_manifests: Vec<&Manifest> = bases.iter().map(|b| b.manifest()).collect();
        let carry = plan::plan_carry(&new, &base_manifests, &mut |digest| ledger.object(digest), &mut |path| {
            let from = path.under(source);
            std::fs::read(&from).ctx("read", &from)
        })?;
        Ok(DeltaPlan { bases: bases.iter().map(|b| b.id()).collect(), files, carry })
    }

    /// The entries the medium carries whole: every folder and the files
    /// neither left to the bases nor patched.
    pub fn carried(&self, entries: &[SourceEntry]) -> Vec<SourceEntry> {
        entries
            .iter()
            .filter(|e| e.file.is_none() || !self.carry.carry.contains_key(e.path.as_str()))
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
    /// whose bytes differ from the plan's changed while it was read.
    pub fn manifest(&self, written: Manifest, source: &Utf8Path, all: &[SourceEntry]) -> Result<SnapshotManifest> {
        let hashed: HashMap<&RelPath, &FileEntry> = written.files().collect();
        let mut entries = Vec::with_capacity(all.len());
        for entry in all {
            let Some(planned) = self.files.get(&entry.path) else {
                entries.push(Entry { path: entry.path.clone(), kind: EntryKind::Dir });
                continue;
            };
            if let Some(seen) = hashed.get(&entry.path)
                && (seen.size, seen.digest) != (planned.size, planned.digest)
            {
                return Err(Error::SourceChanged {
                    path: entry.path.under(source),
                    problem: "its content changed between planning the delta and writing it".into(),
                });
            }
            entries.push(Entry { path: entry.path.clone(), kind: EntryKind::File(planned.clone()) });
        }
        let patches = self.carry.patches.iter().map(|(line, _)| line.clone()).collect();
        let carry: BTreeMap<String, Carry> = self.carry.carry.clone();
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

/// Size and SHA-256 of every file, read in parallel.
fn hash_all(source: &Utf8Path, entries: &[SourceEntry]) -> Result<HashMap<RelPath, FileEntry>> {
    let files: Vec<&SourceEntry> = entries.iter().filter(|e| e.file.is_some()).collect();
    let hashed = Mutex::new(HashMap::with_capacity(files.len()));
    let errors = crate::parallel::for_each(&files, true, |entry| -> Result<()> {
        let Some(scanned) = entry.file else { return Ok(()) };
        let from: Utf8PathBuf = entry.path.under(source);
        let mut reader = std::fs::File::open(&from).ctx("open", &from)?;
        let seen = copy_hashing(&mut reader, None, u64::MAX - 1, &|_| {}).ctx("read", &from)?;
        let file =
            FileEntry { size: seen.size, digest: seen.digest, executable: scanned.executable, index: scanned.index };
        hashed.lock().unwrap_or_else(|p| p.into_inner()).insert(entry.path.clone(), file);
        Ok(())
    });
    if let Some(error) = errors.into_iter().next() {
        return Err(error);
    }
    Ok(hashed.into_inner().unwrap_or_else(|p| p.into_inner()))
}
