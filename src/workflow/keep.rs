//! Held and uncovered files stay installed (formats/policy-v1.md §6 PS6,
//! formats/inventory-v1.md §4): an export with a policy or a partial
//! selection that knows what the site holds (its `--since` receipt, else
//! the previous export of the repository in the ledger) names that snapshot
//! as its base, and lists every held or uncovered file the base has as a
//! `b` entry, with the base's size and digest. The site then keeps those
//! files exactly as a delta import keeps unchanged ones
//! (formats/delta-v1.md §6), and the installed tree still equals one signed
//! manifest. A declined file is never kept: declined means removed.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Entry, EntryKind, FileEntry, Manifest};
use crate::manifest_v3::{Carry, Delta, SnapshotManifest};
use crate::policy::{HoldReason, Policy};
use crate::rel_path::RelPath;
use crate::scan::SourceEntry;
use crate::signing::VerifiedSnapshot;
use std::collections::{BTreeMap, BTreeSet};

/// The files a policy or partial export keeps from its bases.
#[derive(Debug, Clone)]
pub struct Kept {
    /// Snapshot ids of the bases, strictly ascending.
    bases: Vec<Digest>,
    /// The kept files, as the bases hold them.
    files: BTreeMap<RelPath, FileEntry>,
}

impl Kept {
    /// What an export of `entries` (the selection of `policy` and `only`
    /// from `scanned`) keeps from `bases`: each file of the source that it
    /// does not carry and the policy does not decline, at the version the
    /// bases hold (PS6). Returns the kept files (`None` when nothing is
    /// kept: the snapshot then names no base) and `entries` with the
    /// folders above kept files added, in manifest order. Every base must
    /// hold a kept file with the same size and digest (delta-v1.md D3),
    /// else the export is refused.
    pub fn plan(
        policy: Option<&Policy>,
        bases: &[VerifiedSnapshot],
        scanned: &[SourceEntry],
        mut entries: Vec<SourceEntry>,
    ) -> Result<(Option<Kept>, Vec<SourceEntry>)> {
        if bases.is_empty() {
            return Ok((None, entries));
        }
        let carried: BTreeSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        let declined = |path: &str| policy.is_some_and(|p| p.decide(path).held == Some(HoldReason::Declined));
        let candidates: BTreeSet<&str> = scanned
            .iter()
            .filter(|e| e.file.is_some() && !carried.contains(e.path.as_str()) && !declined(e.path.as_str()))
            .map(|e| e.path.as_str())
            .collect();
        let held_by: Vec<BTreeMap<&str, &FileEntry>> =
            bases.iter().map(|b| b.manifest().files().map(|(p, f)| (p.as_str(), f)).collect()).collect();
        let mut files = BTreeMap::new();
        for (path, file) in held_by.iter().flatten().filter(|(path, _)| candidates.contains(*path)) {
            let same = |held: &BTreeMap<&str, &FileEntry>| {
                held.get(path).is_some_and(|f| (f.size, f.digest) == (file.size, file.digest))
            };
            if let Some((base, _)) = bases.iter().zip(&held_by).find(|(_, held)| !same(held)) {
                return Err(Error::InvalidArgument(format!(
                    "`{path}` is held or not covered, and the sites this export serves hold different versions of it (snapshot {} differs): one snapshot cannot keep it at each of them\nhint: export for each site separately (one --since each)",
                    base.id().short()
                )));
            }
            files.insert(RelPath::new(path).map_err(Error::InvalidArgument)?, (*file).clone());
        }
        if files.is_empty() {
            return Ok((None, entries));
        }
        // The folders above a kept file are folders of the source.
        let folders: BTreeSet<&str> =
            files.keys().flat_map(|path| crate::policy::ancestors(path.as_str()).skip(1)).collect();
        let missing = scanned
            .iter()
            .filter(|e| e.file.is_none() && folders.contains(e.path.as_str()) && !carried.contains(e.path.as_str()));
        entries.extend(missing.cloned().collect::<Vec<_>>());
        entries.sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
        Ok((Some(Kept { bases: bases.iter().map(VerifiedSnapshot::id).collect(), files }), entries))
    }

    /// The files kept.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// Bytes of the files kept (on no medium).
    pub fn bytes(&self) -> u64 {
        self.files.values().map(|file| file.size).sum()
    }

    /// `snapshot` with the files `kept` added as `b` entries; unchanged
    /// when nothing is kept.
    pub fn add(kept: Option<&Kept>, snapshot: SnapshotManifest) -> Result<SnapshotManifest> {
        match kept {
            Some(kept) => kept.add_to(snapshot),
            None => Ok(snapshot),
        }
    }

    /// `snapshot` (the manifest of what was exported, a delta from the same
    /// bases or no delta) with the kept files added as `b` entries.
    fn add_to(&self, snapshot: SnapshotManifest) -> Result<SnapshotManifest> {
        let SnapshotManifest { manifest, delta, policy } = snapshot;
        let mut delta = delta.unwrap_or_else(|| Delta { bases: self.bases.clone(), ..Delta::default() });
        if delta.bases != self.bases {
            return Err(Error::InvalidArgument("the delta's bases are not the snapshots kept from".into()));
        }
        let mut entries = manifest.entries;
        for (path, file) in &self.files {
            delta.carry.insert(path.as_str().to_owned(), Carry::Base);
            entries.push(Entry { path: path.clone(), kind: EntryKind::File(file.clone()) });
        }
        entries.sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
        Ok(SnapshotManifest { manifest: Manifest { entries, ..manifest }, delta: Some(delta), policy })
    }
}

/// The snapshots an export with a policy or a partial selection keeps held
/// and uncovered files from: none when `wanted` is false (neither, or
/// `--standalone`); the `--since` bases (`since`) when there are any, as
/// they name what the sites hold; else the newest export of the repository
/// in the ledger, verified with `trust` (the exporting key).
pub fn bases(
    wanted: bool,
    since: &[VerifiedSnapshot],
    ledger: Option<&crate::ledger::RepositoryLedger>,
    trust: &crate::signing::TrustStore,
) -> Result<Vec<VerifiedSnapshot>> {
    if !wanted || !since.is_empty() {
        return Ok(if wanted { since.to_vec() } else { Vec::new() });
    }
    let Some(ledger) = ledger else { return Ok(Vec::new()) };
    let Some(id) = ledger.newest().and_then(|record| record.snapshot) else { return Ok(Vec::new()) };
    Ok(vec![ledger.snapshot(&id, trust)?])
}
