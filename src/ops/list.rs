//! `ferry list`: what a drive holds, without reading any payload.
//!
//! A manifest is parsed only after its signature verified with a trusted
//! key (formats/manifest-v1.md §9), so without a trust store the list shows
//! what folder names and file presence say, marked as unchecked.

use crate::beneath::Dir;
use crate::error::Result;
use crate::media::{self, Ownership, SnapshotDir};
use crate::signing::TrustStore;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// One snapshot folder on the drive.
#[derive(Debug, Clone, Serialize)]
pub struct ListedSnapshot {
    /// The snapshot folder.
    pub dir: Utf8PathBuf,
    /// `trusted`, `expired` (trusted, but past its expiry: import refuses
    /// it), `unchecked` (no trust store given), `incomplete` (no signature:
    /// an unfinished export), or `refused` (see `problem`).
    pub status: &'static str,
    /// Repository id: from the verified manifest, else the folder name.
    pub repository: String,
    /// Sequence: from the verified manifest, else the folder name if numeric.
    pub sequence: Option<u64>,
    /// `tree` or `tar`, when verified.
    pub layout: Option<&'static str>,
    /// Tar volumes, when verified.
    pub volumes: Option<usize>,
    /// Files, when verified.
    pub files: Option<usize>,
    /// Payload bytes, when verified.
    pub bytes: Option<u64>,
    /// Creation time, when verified.
    pub created: Option<String>,
    /// Expiry time or `never`, when verified.
    pub expires: Option<String>,
    /// The key whose signature verified.
    pub signed_by: Option<String>,
    /// SHA-256 of the manifest, when verified.
    pub snapshot_id: Option<String>,
    /// When verified: the snapshot ids a delta applies to; empty for a
    /// full snapshot.
    pub bases: Option<Vec<String>>,
    /// For a snapshot spanning several drives: this drive's part, `K of N`.
    pub part: Option<String>,
    /// Why a snapshot was refused.
    pub problem: Option<String>,
}

/// What `ferry list` found.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    /// The drive listed.
    pub media: Utf8PathBuf,
    /// Every snapshot folder, in locate order (by repository, then sequence).
    pub snapshots: Vec<ListedSnapshot>,
}

/// Lists the snapshot folders on `media`; with `trust`, each complete one is
/// opened and verified (signature only, not the payload: that is `verify`)
/// and judged expired or not as of `now`.
pub fn list(media: &Utf8Path, trust: Option<&TrustStore>, now: jiff::Timestamp) -> Result<ListReport> {
    let mut snapshots = Vec::new();
    for dir in media::locate(media)? {
        snapshots.push(describe(&dir, trust, now));
    }
    Ok(ListReport { media: media.to_owned(), snapshots })
}

fn describe(dir: &SnapshotDir, trust: Option<&TrustStore>, now: jiff::Timestamp) -> ListedSnapshot {
    let root = dir.root();
    let named_sequence = root.file_name().and_then(|name| name.parse().ok());
    let named_repository = root.parent().and_then(Utf8Path::file_name).unwrap_or("?").to_owned();
    let mut listed = ListedSnapshot {
        dir: root.to_owned(),
        status: "unchecked",
        repository: named_repository,
        sequence: named_sequence,
        layout: None,
        volumes: None,
        files: None,
        bytes: None,
        created: None,
        expires: None,
        signed_by: None,
        snapshot_id: None,
        bases: None,
        part: media::part_of(dir.drive(), root).map(|(part, of)| format!("{part} of {of}")),
        problem: None,
    };
    if !dir.is_complete() {
        listed.status = "incomplete";
        return listed;
    }
    let Some(trust) = trust else { return listed };
    match dir.open(trust) {
        Ok(snapshot) => {
            let manifest = snapshot.manifest();
            listed.status = "trusted";
            listed.repository = manifest.repository.to_string();
            listed.sequence = Some(manifest.sequence);
            listed.layout = Some(manifest.layout.name());
            listed.volumes = Some(manifest.layout.volumes().len());
            listed.files = Some(manifest.files().count());
            listed.bytes = Some(manifest.payload_bytes());
            listed.created = Some(crate::clock::format(manifest.created));
            listed.expires = Some(manifest.expires.map_or("never".into(), crate::clock::format));
            listed.signed_by = Some(snapshot.signed_by());
            listed.snapshot_id = Some(snapshot.id().to_hex());
            listed.bases = Some(snapshot.document().bases().iter().map(|id| id.to_hex()).collect());
            if let Err(expired) = crate::ops::verify::check_expiry(dir, &snapshot, now) {
                listed.status = "expired";
                listed.problem = Some(expired.to_string());
            }
        }
        Err(error) => {
            listed.status = "refused";
            listed.problem = Some(error.to_string());
        }
    }
    listed
}

/// What `--prune` did on one drive.
#[derive(Debug, Clone, Default)]
pub struct Pruned {
    /// Snapshot folders removed.
    pub removed: Vec<Utf8PathBuf>,
    /// Entries of the repository's folder left alone because nothing proves
    /// ferry wrote them, each with why (`PATH: REASON`).
    pub left_alone: Vec<String>,
}

/// Removes all but the newest `keep` complete snapshots of `repository`
/// on `media`, and every unfinished one except `keep_dir` (the snapshot just
/// written). Only folders ferry can prove it wrote are candidates
/// ([`media::ownership`], formats/media-layout-v1.md §4 E6, E7); anything
/// else in `ferry/REPOSITORY/` is left alone and reported. No link below
/// `media` is followed. Sequences come from folder names: this runs on the
/// connected side, on the operator's own drive.
pub fn prune(media: &Utf8Path, repository: &str, keep: usize, keep_dir: &Utf8Path) -> Result<Pruned> {
    prune_or_plan(media, repository, keep, keep_dir, true)
}

/// What [`prune`] would remove and leave alone, removing nothing
/// (`export --prune N --dry-run`).
pub fn prune_plan(media: &Utf8Path, repository: &str, keep: usize, keep_dir: &Utf8Path) -> Result<Pruned> {
    prune_or_plan(media, repository, keep, keep_dir, false)
}

fn prune_or_plan(media: &Utf8Path, repository: &str, keep: usize, keep_dir: &Utf8Path, remove: bool) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    let relative = Utf8PathBuf::from(media::MEDIA_ROOT).join(repository);
    if !media.exists() {
        return Ok(pruned);
    }
    let Some(repository_dir) = Dir::root(media)?.open_if_present(&relative)? else { return Ok(pruned) };
    let mut complete = Vec::new();
    let mut unfinished = Vec::new();
    for (name, kind) in repository_dir.entries()? {
        let path = repository_dir.path().join(&name);
        match media::ownership(&repository_dir, repository, &name, &kind)? {
            _ if path == keep_dir => {}
            Ownership::Complete => complete.push((name.parse::<u64>().unwrap_or(0), name)),
            Ownership::Unfinished => unfinished.push(name),
            Ownership::NotProven(why) => pruned.left_alone.push(format!("{path}: {why}")),
        }
    }
    // The folder just written counts as the newest complete one.
    complete.sort();
    let doomed = complete.len().saturating_sub(keep.max(1) - 1);
    for name in complete.into_iter().take(doomed).map(|(_, name)| name).chain(unfinished) {
        if remove {
            repository_dir.remove_tree(&name)?;
        }
        pruned.removed.push(repository_dir.path().join(name));
    }
    pruned.removed.sort();
    Ok(pruned)
}
