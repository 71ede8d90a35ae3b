//! `ferry export`: snapshot a source tree onto removable media.
//!
//! Order of writes (formats/media-layout-v1.md §4): the payload (tar
//! volumes, or a tree), then on each drive the manifest and checksum files
//! and one filesystem flush, then the signatures. A crash or a full drive
//! at any point leaves a folder without `manifest.sig`, which every reader
//! treats as incomplete. Before any of it, the drives' room and filesystem
//! limits are checked.

use crate::beneath::{self, Dir};
use crate::delta::export::DeltaPlan;
use crate::digest::copy_hashing;
use crate::drive::{self, DriveFs, PlannedWrite};
use crate::error::{Error, IoContext, Result};
use crate::ledger::Ledger;
use crate::manifest::{Entry, EntryKind, FileEntry, Layout, Manifest, RepositoryId};
use crate::manifest_v3::{PolicySection, SnapshotManifest};
use crate::media::{self, SnapshotDir};
use crate::media::{MEDIA_ROOT, PAYLOAD_DIR};
use crate::parallel;
use crate::rel_path::RelPath;
use crate::report::Progress;
use crate::scan::{self, SourceEntry, Stamp};
use crate::signing::SecretKey;
use crate::volume::{self, VolumeWriter};
use crate::workflow::keep::Kept;
use camino::{Utf8Path, Utf8PathBuf};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::fs::File;
use std::io::BufWriter;
use std::sync::Mutex;

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The repository tree to snapshot.
    pub source: Utf8PathBuf,
    /// The drive (or a folder on it).
    pub media: Utf8PathBuf,
    /// Further drives a tar snapshot continues onto when the first is full
    /// (spanning); empty for one drive.
    pub more_media: Vec<Utf8PathBuf>,
    /// Put at most this many bytes on each drive (`None`: its free space).
    pub drive_size: Option<u64>,
    /// The drives' filesystem; `None` detects it.
    pub target_fs: Option<DriveFs>,
    /// Repository id; `None` = the source folder's name.
    pub repository: Option<String>,
    /// Sequence number; `None` = the larger of the creation time in Unix
    /// seconds and one more than the newest snapshot of the repository on
    /// the media, so it goes up without anyone counting.
    pub sequence: Option<u64>,
    /// Creation time to record (`None` = now).
    pub created: Option<Timestamp>,
    /// How long the snapshot stays valid; `None` = never expires.
    pub expires_after: Option<SignedDuration>,
    /// Glob patterns naming index files.
    pub index_patterns: Vec<String>,
    /// Read the media back after writing and verify it.
    pub read_back: bool,
    /// How to store the payload on the media.
    pub layout: MediaLayout,
    /// After a successful export, keep only this many snapshots of the
    /// repository on the media (the newest ones); `None` keeps all.
    pub prune: Option<usize>,
    /// Create missing parents of each drive folder (`--mkpath`); without
    /// it only the last component may be missing.
    pub make_parents: bool,
    /// The media may be a folder on the system disk or the source's
    /// filesystem (`--not-a-drive`).
    pub not_a_drive: bool,
    /// The export ledger folder (formats/ledger-v1.md); `None` exports
    /// without one (§5 N2).
    pub ledger: Option<Utf8PathBuf>,
    /// `--since`: receipts, manifest files or snapshot ids of the snapshots
    /// the isolated sites hold; non-empty makes a delta
    /// (formats/delta-v1.md §3). Needs the ledger.
    pub since: Vec<String>,
    /// Keys of the isolated sites, to check signed receipts given to `since`.
    pub site_keys: Option<crate::signing::TrustStore>,
    /// `--base-trust`: public keys besides the exporting key whose
    /// signatures authenticate the ledger's copies of bases (keys used
    /// before a key rotation: formats/delta-v1.md DE1a).
    pub base_keys: Vec<crate::signing::PublicKey>,
    /// `--rehash`: read and hash every source file, ignoring the ledger's
    /// stat cache (formats/ledger-v1.md §8 S5).
    pub rehash: bool,
    /// Smallest file whose content the ledger keeps for later patches
    /// (formats/ledger-v1.md §7 O5); `None` keeps none.
    pub ledger_contents: Option<u64>,
}

/// Checks what can be checked before a key is unlocked or a byte written:
/// the source is a folder, and every drive folder exists (or only its last
/// component is missing) on a filesystem other than the system disk's and
/// the source's ([`crate::destination`]).
pub fn preflight(options: &ExportOptions) -> Result<()> {
    check_source(&options.source)?;
    for drive in std::iter::once(&options.media).chain(&options.more_media) {
        crate::destination::check_folder(drive, "MEDIA", options.make_parents)?;
        crate::destination::check_is_drive(drive, &options.source, options.not_a_drive)?;
    }
    Ok(())
}

/// Refuses a SOURCE that is not a folder, with the usual hint.
pub fn check_source(source: &Utf8Path) -> Result<()> {
    if !source.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "source `{source}` is not a folder\nhint: give the update repository's folder, then the drive: ferry export SOURCE MEDIA"
        )));
    }
    Ok(())
}

/// How export stores the payload on the media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaLayout {
    /// Plain files under `payload/`, to browse or copy by hand.
    Tree,
    /// Tar volumes of at most this many bytes under `volumes/`.
    Tar {
        /// Largest volume in bytes.
        volume_size: u64,
    },
}

impl Default for MediaLayout {
    fn default() -> Self {
        MediaLayout::Tar { volume_size: crate::volume::DEFAULT_VOLUME_SIZE }
    }
}

/// What an export did.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// Snapshot folder written (on the first drive).
    pub snapshot_dir: Utf8PathBuf,
    /// The snapshot folders on every drive it was written to, in part order.
    pub parts: Vec<Utf8PathBuf>,
    /// Repository id.
    pub repository: String,
    /// Sequence number.
    pub sequence: u64,
    /// SHA-256 of the manifest.
    pub snapshot_id: String,
    /// Signing key id.
    pub key_id: String,
    /// Files exported.
    pub files: usize,
    /// Folders exported.
    pub folders: usize,
    /// Payload bytes.
    pub bytes: u64,
    /// Creation time.
    pub created: String,
    /// Expiry time or `never`.
    pub expires: String,
    /// Whether the media was read back and verified.
    pub read_back_verified: bool,
    /// Older snapshot folders removed by `--prune`.
    pub pruned: Vec<Utf8PathBuf>,
    /// Entries beside the snapshots that `--prune` left alone because
    /// nothing proves ferry wrote them, each as `PATH: REASON`.
    pub left_alone: Vec<String>,
    /// What the approval policy shipped and held (`--policy`), else `None`.
    pub policy: Option<crate::ops::policy::PolicyReport>,
    /// Whether only requested components were exported (`--only`, `--inventory`).
    pub partial: bool,
    /// The patterns that requested them (empty for a full export).
    pub covers: Vec<String>,
    /// Snapshot ids of the bases a delta applies to; empty for a full export.
    pub bases: Vec<String>,
    /// Bytes of file contents on the medium: every file for a full export;
    /// for a delta the files carried whole plus the patches.
    pub carried_bytes: u64,
    /// Held and uncovered files kept at the version of the bases (`b`
    /// entries, formats/policy-v1.md §6 PS6); 0 without a base.
    pub kept_files: usize,
    /// Files whose SHA-256 a delta took from the ledger's stat cache
    /// without reading them (formats/ledger-v1.md §8); 0 for a full export.
    pub from_stat_cache: usize,
}

/// Runs an export of the whole source.
pub fn export(options: &ExportOptions, key: &SecretKey, progress: &dyn Progress) -> Result<ExportReport> {
    export_selected(options, Selection::default(), key, progress)
}

/// What an export carries of its source: the components requested
/// (formats/inventory-v1.md §2 I3), then what the policy ships of them
/// (formats/policy-v1.md §4). The default carries everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    /// The approval policy (`--policy`).
    pub policy: Option<&'a crate::policy::Policy>,
    /// The requested components (`--only`, `--inventory`): a partial export.
    pub only: Option<&'a crate::workflow::inventory::Coverage>,
    /// `--standalone`: keep nothing from what the site holds, so that the
    /// snapshot names no base and imports anywhere (formats/policy-v1.md
    /// §6 PS6); held and uncovered files are then absent.
    pub standalone: bool,
}

/// The creation time to record: `--created` as given, else the clock, but
/// never before the newest export of the repository in the ledger. Sites
/// refuse a snapshot created before the one they installed (freeze
/// protection, formats/target-state-v1.md §10), so after the clock stepped
/// back every export would be refused until it caught up; the newest
/// export's time is recorded instead (the same time is not refused), and said.
fn creation_time(
    options: &ExportOptions,
    newest: Option<&crate::ledger::Record>,
    progress: &dyn Progress,
) -> Timestamp {
    let now = crate::clock::now();
    match (options.created, newest) {
        (Some(created), _) => created,
        (None, Some(newest)) if newest.created > now => {
            let carried = newest.created;
            progress.attention(&format!(
                "the clock says {} but sequence {} was exported at {}: recording {} as the creation time, so that sites do not refuse this snapshot as older than the one they hold (check the clock)",
                crate::clock::format(now),
                newest.sequence,
                crate::clock::format(newest.created),
                crate::clock::format(carried)
            ));
            carried
        }
        (None, _) => now,
    }
}

/// Runs an export of what `selection` carries of the source.
pub fn export_selected(
    options: &ExportOptions,
    selection: Selection<'_>,
    key: &SecretKey,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    preflight(options)?;
    let repository = repository_of(options)?;
    // Held until the export is recorded: exports of one repository take turns.
    let mut ledger = options.ledger.as_ref().map(|root| Ledger::new(root).begin_export(&repository)).transpose()?;
    let created = creation_time(options, ledger.as_ref().and_then(|ledger| ledger.ledger().newest()), progress);
    let expires = options
        .expires_after
        .map(|after| created.checked_add(after).map_err(|e| Error::InvalidArgument(format!("expiry: {e}"))))
        .transpose()?;
    let sequence = sequence_for(options, ledger.as_ref(), &repository, created);
    let bases = since_bases(options, ledger.as_ref(), &repository, key)?;
    let keep_from = keep_bases(selection, ledger.as_ref(), &bases, &base_trust(options, key))?;
    let drives = drives_for(options)?;
    let folders: Vec<SnapshotDir> =
        drives.iter().map(|drive| SnapshotDir::on_media(drive, repository.as_str(), sequence)).collect();
    if let Some(ledger) = &mut ledger {
        ledger.reserve(sequence, created)?;
    }
    // A source that changes while it is read is read once more, then refused.
    let mut reread = false;
    let (mut policy_report, mut section) = (None, None);
    let (mut carried_bytes, mut kept): (Option<u64>, Option<Kept>);
    let mut from_stat_cache;
    let ((manifest, manifest_bytes, snapshot, signature), scanned, plan) = loop {
        progress.notice(&format!("scanning {}", options.source));
        // Walking and sorting a million files takes a while: a spinner (issue 14).
        progress.phase("scanning the source", 0);
        let scanned_at = std::time::SystemTime::now();
        let source = Source::open(&options.source)?;
        let entries;
        (kept, entries) = scan_selected(options, selection, &keep_from, (&mut policy_report, &mut section))?;
        // A second attempt reads every file: the cache may be what was wrong.
        let plan = match plan_delta(options, ledger.as_ref(), &bases, &entries, (sequence, !reread), progress) {
            Ok(plan) => plan,
            Err(error) => {
                retry_or_fail(error, (&[], &[]), &mut reread, &drives, options, progress)?;
                continue;
            }
        };
        from_stat_cache = plan.as_ref().map_or(0, DeltaPlan::cached_files);
        let carried = plan.as_ref().map(|plan| plan.carried(&entries));
        let carried_entries = carried.as_deref().unwrap_or(&entries);
        let patches = plan.as_ref().map(DeltaPlan::patch_files).unwrap_or_default();
        carried_bytes = plan.as_ref().map(DeltaPlan::carried_bytes);
        // Folders this export creates, removed again if it fails.
        let new_folders = prepare_folders(&folders, progress)?;
        let folder_on_drive = format!("{MEDIA_ROOT}/{repository}/{sequence}");
        progress.phase("checking the drives", 0);
        let budgets = check_drives(options, &drives, &folder_on_drive, carried_entries)?;
        // A failed export removes what it wrote: half a snapshot helps nobody,
        // and without a signature it could never be imported anyway.
        let written = write_snapshot(
            &folders,
            &budgets,
            &source,
            (carried_entries, &patches),
            options,
            key,
            progress,
            created,
            |layout, hashed| {
                let written =
                    Manifest { repository: repository.clone(), sequence, created, expires, layout, entries: hashed };
                let complete = crate::delta::export::complete(plan.as_ref(), written, &options.source, &entries)?;
                let complete = Kept::add(kept.as_ref(), complete)?;
                Ok(SnapshotManifest { policy: section.clone(), ..complete })
            },
        );
        match written {
            Ok(written) => break (written, (entries, scanned_at), plan),
            Err(error) => retry_or_fail(error, (&folders, &new_folders), &mut reread, &drives, options, progress)?,
        }
    };
    if options.read_back {
        read_back(&snapshot, &folders, key, progress)?;
    }
    if let Some(ledger) = &mut ledger {
        let known = plan.as_ref().map(DeltaPlan::contents).unwrap_or_default();
        record_in_ledger(ledger, options, (&manifest, &manifest_bytes, &signature), (&bases, &known), progress)?;
        crate::delta::export::record_stat_cache(ledger, &manifest, scanned, progress);
    }
    let pruned = match options.prune {
        Some(keep) => prune_drives(&drives, &snapshot, repository.as_str(), keep, progress)?,
        None => crate::ops::list::Pruned::default(),
    };
    let files = manifest.files().count();
    Ok(ExportReport {
        snapshot_dir: snapshot.root().to_owned(),
        parts: snapshot_folders(&snapshot),
        repository: repository.to_string(),
        sequence,
        snapshot_id: crate::digest::Digest::of(&manifest_bytes).to_hex(),
        key_id: key.id().to_string(),
        files,
        folders: manifest.entries.len() - files,
        bytes: manifest.payload_bytes(),
        created: crate::clock::format(created),
        expires: expires.map_or("never".into(), crate::clock::format),
        read_back_verified: options.read_back,
        pruned: pruned.removed,
        left_alone: pruned.left_alone,
        policy: policy_report,
        partial: selection.only.is_some(),
        covers: selection.only.map(|only| only.patterns.clone()).unwrap_or_default(),
        bases: if kept.is_some() { &keep_from } else { &bases }.iter().map(|base| base.id().to_hex()).collect(),
        carried_bytes: carried_bytes.unwrap_or_else(|| manifest.payload_bytes() - kept.as_ref().map_or(0, Kept::bytes)),
        kept_files: kept.as_ref().map_or(0, Kept::files),
        from_stat_cache,
    })
}

/// Records a finished export in the ledger and keeps its file contents there.
fn record_in_ledger(
    ledger: &mut crate::ledger::ExportLock,
    options: &ExportOptions,
    (manifest, manifest_bytes, signature): (&Manifest, &[u8], &[u8]),
    (bases, known): (&[crate::signing::VerifiedSnapshot], &std::collections::HashMap<crate::digest::Digest, &[u8]>),
    progress: &dyn Progress,
) -> Result<()> {
    // At a million files this copies a million files: a phase of its own
    // on the progress line, not the tail of "flushing" (issue 14).
    progress.phase("keeping file contents in the ledger", 0);
    // The bytes of manifest.sig, as written to the media.
    ledger.record(manifest.sequence, manifest.created, manifest_bytes, signature)?;
    // The export is complete on the media: contents that could not be
    // kept only mean whole files instead of patches later (ledger-v1 §7 O2).
    let Some(floor) = options.ledger_contents else { return Ok(()) };
    let kept_before = bases.iter().flat_map(|base| base.manifest().files().map(|(_, file)| file.digest)).collect();
    if let Err(error) = ledger.keep_contents(&options.source, manifest, &kept_before, (floor, known)) {
        progress.notice(&format!("warning: file contents not kept in the ledger: {error}"));
    }
    Ok(())
}

/// Scans the source and selects what the export carries: the entries
/// [`select`] gives, plus the folders above the files it keeps from
/// `keep_from` (formats/policy-v1.md §6 PS6), and those files.
fn scan_selected(
    options: &ExportOptions,
    selection: Selection<'_>,
    keep_from: &[crate::signing::VerifiedSnapshot],
    decided: (&mut Option<crate::ops::policy::PolicyReport>, &mut Option<PolicySection>),
) -> Result<(Option<Kept>, Vec<SourceEntry>)> {
    let scanned = scan::scan(&options.source, &scan::index_matcher(&options.index_patterns)?)?;
    let selected = select(selection, scanned.clone(), decided)?;
    Kept::plan(selection.policy, keep_from, &scanned, selected)
}

/// The snapshots a policy or partial export keeps held and uncovered
/// files from (none with `--standalone`, or for a full export).
fn keep_bases(
    selection: Selection<'_>,
    ledger: Option<&crate::ledger::ExportLock>,
    since: &[crate::signing::VerifiedSnapshot],
    trust: &crate::signing::TrustStore,
) -> Result<Vec<crate::signing::VerifiedSnapshot>> {
    let keeps = (selection.policy.is_some() || selection.only.is_some()) && !selection.standalone;
    crate::workflow::keep::bases(keeps, since, ledger.map(|l| l.ledger()), trust)
}

/// What authenticates the ledger's copy of a base: the exporting key and
/// the keys of `--base-trust` (formats/delta-v1.md DE1a).
fn base_trust(options: &ExportOptions, key: &SecretKey) -> crate::signing::TrustStore {
    let mut keys = options.base_keys.clone();
    keys.push(key.public("the exporting key"));
    crate::signing::TrustStore::from_keys(keys)
}

/// The entries `selection` carries, keeping the policy's report and the
/// manifest's policy section; a partial export that requests no file is refused.
fn select(
    selection: Selection<'_>,
    mut scanned: Vec<SourceEntry>,
    (report, section): (&mut Option<crate::ops::policy::PolicyReport>, &mut Option<PolicySection>),
) -> Result<Vec<SourceEntry>> {
    if let Some(only) = selection.only {
        scanned = only.select(scanned);
        if !scanned.iter().any(|e| e.file.is_some_and(|f| !f.index)) {
            return Err(Error::InvalidArgument(format!(
                "no file of the source is requested by {}\nhint: check the patterns against the repository's paths",
                only.patterns.join(" ")
            )));
        }
    }
    let Some(policy) = selection.policy else {
        *section = crate::workflow::record::section(selection.only, None)?;
        return Ok(scanned);
    };
    let selected = crate::policy::select(policy, scanned);
    *report = Some(crate::ops::policy::summarize(policy, &selected));
    *section = crate::workflow::record::section(selection.only, Some((policy, &selected)))?;
    Ok(selected.entries)
}

/// `--sequence`, else the larger of the clock, the media and the ledger
/// (formats/ledger-v1.md §5).
fn sequence_for(
    options: &ExportOptions,
    ledger: Option<&crate::ledger::ExportLock>,
    repository: &RepositoryId,
    created: Timestamp,
) -> u64 {
    options.sequence.unwrap_or_else(|| {
        let floor = next_sequence(&options.media, repository.as_str(), created);
        ledger.map_or(floor, |ledger| ledger.ledger().next_sequence(floor))
    })
}

/// After a failed attempt, removes what it wrote; a source that changed
/// while it was read gets one more attempt (`Ok`), anything else fails.
fn retry_or_fail(
    error: Error,
    (folders, new_folders): (&[SnapshotDir], &[Utf8PathBuf]),
    reread: &mut bool,
    drives: &[&Utf8PathBuf],
    options: &ExportOptions,
    progress: &dyn Progress,
) -> Result<()> {
    for folder in folders {
        let _ = folder.remove();
    }
    crate::destination::remove_created(new_folders);
    match error {
        Error::SourceChanged { path, problem } if !*reread => {
            progress.notice(&format!("`{path}` changed while it was read ({problem}); reading it again"));
            *reread = true;
            Ok(())
        }
        error => Err(explain_full_drive(error, drives, options.target_fs)),
    }
}

/// With `--since`: what the delta carries (formats/delta-v1.md §3).
fn plan_delta(
    options: &ExportOptions,
    ledger: Option<&crate::ledger::ExportLock>,
    bases: &[crate::signing::VerifiedSnapshot],
    entries: &[SourceEntry],
    (sequence, use_cache): (u64, bool),
    progress: &dyn Progress,
) -> Result<Option<DeltaPlan>> {
    let Some(ledger) = ledger.filter(|_| !bases.is_empty()) else { return Ok(None) };
    progress.notice(&format!("planning a delta from {}", crate::report::counted(bases.len(), "base", "bases")));
    let cache = crate::delta::export::stat_cache(ledger.ledger(), use_cache && !options.rehash, progress);
    DeltaPlan::new(&options.source, entries, bases, (ledger.ledger(), &cache), sequence).map(Some)
}

/// The snapshots `--since` names, found in the ledger before anything is
/// written (formats/delta-v1.md §3); none without `--since`.
fn since_bases(
    options: &ExportOptions,
    ledger: Option<&crate::ledger::ExportLock>,
    repository: &RepositoryId,
    key: &SecretKey,
) -> Result<Vec<crate::signing::VerifiedSnapshot>> {
    if options.since.is_empty() {
        return Ok(Vec::new());
    }
    let Some(ledger) = ledger else {
        return Err(Error::InvalidArgument(
            "--since needs the export ledger, where the snapshots it names are recorded\nhint: pass --ledger DIR (or set FERRY_LEDGER)".into(),
        ));
    };
    let (site_keys, trust) = (options.site_keys.as_ref(), base_trust(options, key));
    crate::delta::export::resolve_bases(&options.since, ledger.ledger(), repository, site_keys, &trust)
}

/// The drives to write, once the layout is known to suit them: a valid
/// volume size, and only tar volumes spanning several drives.
fn drives_for(options: &ExportOptions) -> Result<Vec<&Utf8PathBuf>> {
    if let MediaLayout::Tar { volume_size } = options.layout {
        volume::check_volume_size(volume_size)?;
    }
    let drives: Vec<&Utf8PathBuf> = std::iter::once(&options.media).chain(&options.more_media).collect();
    if drives.len() > 1 && options.layout == MediaLayout::Tree {
        return Err(Error::InvalidArgument(
            "only tar volumes can span several drives; drop --layout tree or give one drive".into(),
        ));
    }
    Ok(drives)
}

/// Reads the drives back from the device and verifies them; when they do
/// not hold what was written, removes the signatures so that nobody takes
/// them for a complete snapshot.
fn read_back(snapshot: &SnapshotDir, folders: &[SnapshotDir], key: &SecretKey, progress: &dyn Progress) -> Result<()> {
    progress.notice("reading the media back");
    let verified = snapshot.open(&key.own_trust());
    if let Err(error) = verified.and_then(|verified| snapshot.check_payload(&verified, progress, true)) {
        for folder in folders {
            let _ = folder.open_dir().and_then(|dir| dir.remove_file(media::SIGNATURE_FILE));
        }
        return Err(error);
    }
    Ok(())
}

/// Checks before writing a byte that the snapshot fits the drives and their
/// filesystem (`drive::check_fit`); returns how many bytes of volumes each
/// drive may take. `folder` is the snapshot folder's path below a drive.
fn check_drives(
    options: &ExportOptions,
    drives: &[&Utf8PathBuf],
    folder: &str,
    entries: &[SourceEntry],
) -> Result<Vec<u64>> {
    let metadata = metadata_estimate(entries);
    let manifest = format!("{folder}/{}", media::MANIFEST_FILE);
    let fs_of = |drive: &Utf8Path| options.target_fs.unwrap_or_else(|| drive::detect(drive));
    let MediaLayout::Tar { volume_size } = options.layout else {
        // Every planned path in one string, the writes made as they are
        // checked: a million files need no String and no PlannedWrite each
        // (issue 14).
        let prefix = format!("{folder}/{PAYLOAD_DIR}/");
        let mut paths = String::with_capacity(entries.iter().map(|e| prefix.len() + e.path.as_str().len()).sum());
        for entry in entries {
            paths.push_str(&prefix);
            paths.push_str(entry.path.as_str());
        }
        let mut at = 0;
        let writes = entries.iter().map(|e| {
            let path = &paths[at..at + prefix.len() + e.path.as_str().len()];
            at += path.len();
            PlannedWrite { path, size: e.file.map_or(0, |f| f.size), is_dir: e.file.is_none() }
        });
        let manifest = PlannedWrite { path: &manifest, size: metadata, is_dir: false };
        drive::check_fit(drives[0], fs_of(drives[0]), writes.chain([manifest]))?;
        return Ok(vec![u64::MAX]);
    };
    let total = volume::estimate(entries.iter().map(|e| (e.path.as_str(), e.file.map(|f| f.size))), volume_size);
    let first_volume = format!("{folder}/{}/{}", volume::VOLUMES_DIR, volume::volume_name(1));
    let mut budgets = Vec::with_capacity(drives.len());
    for drive in drives {
        let fs = fs_of(drive);
        let free = drive::free_bytes(drive, fs)?.unwrap_or(u64::MAX).saturating_sub(metadata);
        let budget = options.drive_size.map_or(free, |cap| cap.saturating_sub(metadata).min(free));
        // Room is budgeted here, volume by volume; the drive's filesystem
        // still has its say on the largest volume's size and the path.
        let largest = volume_size.min(budget).min(total);
        let writes = [
            PlannedWrite { path: &first_volume, size: largest, is_dir: false },
            PlannedWrite { path: &manifest, size: metadata, is_dir: false },
        ];
        drive::check_limits(drive, fs, writes)?;
        budgets.push(budget);
    }
    // The end of a drive with less room than the smallest volume stays empty.
    let available: u64 = budgets.iter().map(|b| b.saturating_sub(volume::MIN_VOLUME_SIZE)).sum();
    if total > available {
        let plural = if drives.len() > 1 { "the drives have" } else { "the drive has" };
        return Err(Error::DriveUnfit {
            media: drives[0].to_owned(),
            problems: vec![format!(
                "needs {} more: about {} of volumes and {} of manifest and checksums per drive to write, {plural} room for {}{}",
                crate::report::human_bytes(total - available),
                crate::report::human_bytes(total),
                crate::report::human_bytes(metadata),
                crate::report::human_bytes(available),
                if options.drive_size.is_some() { " (with --drive-size)" } else { "" },
            )],
        });
    }
    Ok(budgets)
}

/// Whether the snapshot folders on the drives given are a spanned export
/// that was interrupted between the drives' signatures: some signed, one
/// saying it is part K of N, and fewer than N signed. Such a snapshot is
/// imported nowhere (a drive is missing its signature), so exporting again
/// replaces it instead of calling it finished.
fn is_unfinished_span(folders: &[SnapshotDir]) -> bool {
    let signed = folders.iter().filter(|folder| folder.is_complete()).count();
    folders
        .iter()
        .filter(|folder| folder.is_complete())
        .any(|folder| media::part_of(folder.drive(), folder.root()).is_some_and(|(_, parts)| signed < parts))
}

/// A write that failed because a drive filled up although the check before
/// writing found room (something else wrote to it): say so, naming the
/// drive. FAT reports a full drive as "Operation not permitted".
fn explain_full_drive(error: Error, drives: &[&Utf8PathBuf], target_fs: Option<DriveFs>) -> Error {
    let Error::Io { path, source, .. } = &error else { return error };
    let Some(drive) = drives.iter().find(|drive| path.starts_with(drive)) else { return error };
    let full = source.kind() == std::io::ErrorKind::StorageFull
        || (source.kind() == std::io::ErrorKind::PermissionDenied
            && target_fs.unwrap_or_else(|| drive::detect(drive)) == DriveFs::Fat32);
    if !full {
        return error;
    }
    Error::DriveUnfit {
        media: (*drive).clone(),
        problems: vec![format!(
            "{error}: the drive filled up during the export although it had room when the export began \
             (is something else writing to it?); the unfinished snapshot was removed and nothing on the drive looks complete"
        )],
    }
}

/// Room for the manifest, the signature and the checksum files on a drive:
/// a generous bound (a manifest line is about 90 bytes plus the path).
fn metadata_estimate(entries: &[SourceEntry]) -> u64 {
    let per_entry: u64 = entries.iter().map(|e| 2 * (e.path.as_str().len() as u64 + 100)).sum();
    per_entry + 64 * 1024
}

/// Writes payload, manifest and signature, in that order, each flushed
/// before the next begins (formats/media-layout-v1.md), every file through
/// folders opened without following links. Returns the manifest and the
/// snapshot as written: its first drive's folder, with the other drives it
/// spans as parts.
#[allow(clippy::too_many_arguments)]
fn write_snapshot(
    folders: &[SnapshotDir],
    budgets: &[u64],
    source: &Source,
    (entries, patches): (&[SourceEntry], &[(RelPath, &[u8])]),
    options: &ExportOptions,
    key: &SecretKey,
    progress: &dyn Progress,
    created: Timestamp,
    manifest_for: impl FnOnce(Layout, Vec<Entry>) -> Result<SnapshotManifest>,
) -> Result<(Manifest, Vec<u8>, SnapshotDir, Vec<u8>)> {
    let dirs: Vec<Dir> = folders.iter().map(create_folder).collect::<Result<_>>()?;
    // Which drive each volume went to; a tree is all on the first.
    let mut placement = Vec::new();
    let manifest = match options.layout {
        MediaLayout::Tree => {
            let payload = dirs[0].create(Utf8Path::new(PAYLOAD_DIR))?;
            for entry in entries.iter().filter(|e| e.file.is_none()) {
                payload.create(entry.path.as_path())?;
            }
            let hashed = copy_payload(source, &payload, entries, progress)?;
            crate::delta::medium::write_patches(&payload, patches)?;
            manifest_for(Layout::Tree, hashed)?
        }
        MediaLayout::Tar { volume_size } => {
            let mut destinations = Vec::new();
            for (dir, budget) in dirs.iter().zip(budgets) {
                destinations.push((dir.create(Utf8Path::new(volume::VOLUMES_DIR))?, *budget));
            }
            // Tar entries carry the snapshot's creation time, so the
            // volumes depend on nothing but the snapshot.
            let mtime = u64::try_from(created.as_second()).unwrap_or(0);
            let (volumes, hashed) =
                write_volumes(source, destinations, volume_size, mtime, (entries, patches), progress)?;
            placement = volumes.iter().map(|placed| placed.destination).collect();
            manifest_for(Layout::Tar(volumes.into_iter().map(|placed| placed.volume).collect()), hashed)?
        }
    };
    source.check_folders(entries)?;
    crate::crash::point("export-payload-written");
    let parts = placement.iter().max().map_or(1, |last| last + 1);
    // Drives the snapshot did not reach get nothing.
    for folder in &folders[parts..] {
        folder.remove()?;
    }
    let manifest_bytes = manifest.encode();
    // A delta's checksum files list what its medium carries (delta-v1.md DM3).
    let carried = crate::delta::medium::view(&manifest);
    // A delta's manifest is stored compressed (formats/manifest-v3.md §7).
    let (manifest_name, stored) = media::manifest_file::stored(&manifest_bytes, manifest.delta.is_some())?;
    for (part, dir) in dirs[..parts].iter().enumerate() {
        dir.write_atomic(manifest_name, &stored)?;
        crate::crash::point("export-manifest-written");
        let here = |volume: usize| placement.get(volume).is_none_or(|drive| *drive == part);
        dir.write_atomic_with(media::CHECKSUMS_FILE, &mut |out| {
            media::write_checksums(out, &carried, (manifest_name, &stored), &here)
        })?;
        if !carried.layout.volumes().is_empty() {
            dir.write_atomic_with(media::CONTENT_CHECKSUMS_FILE, &mut |out| media::content_checksums(out, &carried))?;
        }
        if parts > 1 {
            let volumes: Vec<usize> = (0..placement.len()).filter(|v| here(*v)).map(|v| v + 1).collect();
            dir.write_atomic(media::PART_FILE, &media::part_note(part + 1, parts, &volumes))?;
        }
        crate::crash::point("export-checksums-written");
        // One flush makes payload and manifest durable before the signature
        // exists; the signature itself is flushed with its folder by write_atomic.
        // On a USB stick it can take minutes: shown as a phase of its own.
        progress.phase("flushing to the drive", 0);
        flush_payload(&folders[part], dir, options)?;
    }
    crate::crash::point("export-before-signature");
    let signature = key.sign_manifest(&manifest_bytes);
    for dir in &dirs[..parts] {
        dir.write_atomic(media::SIGNATURE_FILE, &signature)?;
        // Reached first with the first drive signed and the next not yet.
        if parts > 1 {
            crate::crash::point("export-between-drive-signatures");
        }
    }
    // Signed, the folders no longer need the note (E4): its removal is
    // tidiness, and a crash before it leaves a complete snapshot anyway.
    for dir in &dirs[..parts] {
        dir.remove_file(media::UNFINISHED_FILE)?;
    }
    crate::crash::point("export-signed");
    let mut used = folders[0].clone();
    used.set_parts(folders[1..parts].to_vec());
    Ok((manifest.manifest, manifest_bytes, used, signature))
}

/// Makes the payload written into `dir`, the snapshot folder `folder`,
/// durable (E3 of formats/media-layout-v1.md). A tree's thousands of files
/// take one `syncfs` of the drive; tar volumes were each flushed by the
/// writer when complete, so only the folders holding them are left: a
/// `syncfs` would also wait for every other program's writes to that
/// filesystem (all of them, when the media is a folder on the system disk).
fn flush_payload(folder: &SnapshotDir, dir: &Dir, options: &ExportOptions) -> Result<()> {
    match options.layout {
        MediaLayout::Tree => dir.sync_filesystem(),
        MediaLayout::Tar { .. } => media::sync_folders(folder, dir, volume::VOLUMES_DIR),
    }
}

/// Creates a snapshot folder (and `ferry/REPOSITORY/` on the way) without
/// following links, and writes ferry's `unfinished` note into it first, so
/// that an export killed at any later point leaves a folder ferry can prove
/// it wrote (formats/media-layout-v1.md §4 E1, E7).
fn create_folder(folder: &SnapshotDir) -> Result<Dir> {
    // The drive (or folder on it) named on the command line is trusted.
    std::fs::create_dir_all(folder.drive()).ctx("create folder", folder.drive())?;
    let dir = Dir::root(folder.drive())?.create(beneath::relative(folder.drive(), folder.root())?)?;
    dir.write_atomic(media::UNFINISHED_FILE, media::UNFINISHED_NOTE)?;
    Ok(dir)
}

/// Checks each drive before anything is written to it: no link (nor file,
/// FIFO, ...) on the way to the snapshot folder (E0); no drive holds this
/// snapshot complete (E1). Then an unfinished export at the exact path is
/// removed, if ferry can prove it wrote it; anything else there is refused.
/// Returns the folders on the way that it creates, to remove on failure.
fn prepare_folders(folders: &[SnapshotDir], progress: &dyn Progress) -> Result<Vec<Utf8PathBuf>> {
    for folder in folders {
        if let Some(drive) = Dir::root_if_present(folder.drive())? {
            drive.check(beneath::relative(folder.drive(), folder.root())?)?;
        }
    }
    if let Some(done) = folders.iter().find(|folder| folder.is_complete())
        && !is_unfinished_span(folders)
    {
        return Err(Error::AlreadyExists(done.root().to_owned()));
    }
    for folder in folders {
        let relative = beneath::relative(folder.drive(), folder.root())?;
        let (Some(parent), Some(name)) = (relative.parent(), relative.file_name()) else { continue };
        let Some(drive) = Dir::root_if_present(folder.drive())? else { continue };
        let Some(repository_dir) = drive.open_if_present(parent)? else { continue };
        let Some(kind) = repository_dir.kind(Utf8Path::new(name))? else { continue };
        let repository = parent.file_name().unwrap_or_default();
        match media::ownership(&repository_dir, repository, name, &kind)? {
            media::Ownership::NotProven(why) => {
                progress.notice(&format!("{} was not written by ferry: {why}", folder.root()));
                return Err(Error::AlreadyExists(folder.root().to_owned()));
            }
            // An unfinished folder can never be imported: it goes first
            // (E1), so that the room it takes counts as free.
            _ => {
                progress.notice(&format!("removing unfinished export {}", folder.root()));
                repository_dir.remove_tree(name)?;
            }
        }
    }
    let mut created = Vec::new();
    for folder in folders {
        created.extend(crate::destination::check_folder(folder.root(), "MEDIA", true)?);
    }
    Ok(created)
}

/// The repository id given, or the source folder's name in lower case.
fn repository_of(options: &ExportOptions) -> Result<RepositoryId> {
    let repository_text = match &options.repository {
        Some(id) => id.clone(),
        None => options
            .source
            .canonicalize_utf8()
            .ctx("open source folder", &options.source)?
            .file_name()
            .unwrap_or("repository")
            .to_lowercase(),
    };
    RepositoryId::new(&repository_text).map_err(Error::InvalidArgument)
}

/// `--prune KEEP` on every drive the snapshot was written to (E6).
fn prune_drives(
    drives: &[&Utf8PathBuf],
    snapshot: &SnapshotDir,
    repository: &str,
    keep: usize,
    progress: &dyn Progress,
) -> Result<crate::ops::list::Pruned> {
    let mut pruned = crate::ops::list::Pruned::default();
    for (drive, folder) in drives.iter().zip(snapshot_folders(snapshot)) {
        let done = crate::ops::list::prune(drive, repository, keep, &folder)?;
        for entry in &done.left_alone {
            progress.notice(&format!("left alone {entry}"));
        }
        pruned.removed.extend(done.removed);
        pruned.left_alone.extend(done.left_alone);
    }
    Ok(pruned)
}

/// The snapshot folder on every drive it was written to, in part order.
fn snapshot_folders(snapshot: &SnapshotDir) -> Vec<Utf8PathBuf> {
    std::iter::once(snapshot.root().to_owned()).chain(snapshot.parts().iter().cloned()).collect()
}

/// The source folder, open: files are opened below it without following
/// links and non-blocking, and compared with what the scan saw before and
/// after they are read (a file or folder that changed is `SourceChanged`).
struct Source {
    dir: Dir,
    /// The source folder's own stamp, taken before the scan: a change of
    /// its entries shows in it.
    stamp: Stamp,
}

impl Source {
    fn open(path: &Utf8Path) -> Result<Source> {
        let stamp = Stamp::of(&std::fs::metadata(path).ctx("open source folder", path)?);
        Ok(Source { dir: Dir::root(path)?, stamp })
    }

    /// Opens a scanned file through `folder`, already open, with `relative`
    /// the file's path below it; refuses it if it is no longer what the
    /// scan saw.
    fn open_file_in(&self, folder: &Dir, relative: &Utf8Path, entry: &SourceEntry) -> Result<(File, Stamp)> {
        let path = entry.path.under(self.dir.path());
        let file = folder.open_file(relative)?;
        let now = Stamp::of(&file.metadata().ctx("inspect", &path)?);
        match entry.stamp.difference(&now) {
            Some(problem) => Err(Error::SourceChanged { path, problem }),
            None => Ok((file, now)),
        }
    }

    /// Refuses a file that changed while it was read (`fstat` of the same
    /// handle before and after).
    fn check_file(&self, entry: &SourceEntry, file: &File, before: &Stamp) -> Result<()> {
        let path = entry.path.under(self.dir.path());
        let now = Stamp::of(&file.metadata().ctx("inspect", &path)?);
        match before.difference(&now) {
            Some(problem) => Err(Error::SourceChanged { path, problem }),
            None => Ok(()),
        }
    }

    /// Refuses a folder (the source itself included) whose entries changed
    /// since the scan: its modification or change time moved.
    fn check_folders(&self, entries: &[SourceEntry]) -> Result<()> {
        let root = self.dir.path();
        let mut folders = vec![(root.to_owned(), self.stamp)];
        folders.extend(entries.iter().filter(|e| e.file.is_none()).map(|e| (e.path.under(root), e.stamp)));
        for (path, stamp) in folders {
            let now = Stamp::of(&std::fs::metadata(&path).ctx("inspect", &path)?);
            if let Some(problem) = stamp.difference(&now) {
                return Err(Error::SourceChanged { path, problem: format!("{problem}: its entries changed") });
            }
        }
        Ok(())
    }
}

/// Writes the payload as tar volumes, one file after another in manifest
/// order (the order readers expect), hashing each file on its way in.
fn write_volumes(
    source: &Source,
    destinations: Vec<(Dir, u64)>,
    volume_size: u64,
    mtime: u64,
    (entries, patches): (&[SourceEntry], &[(RelPath, &[u8])]),
    progress: &dyn Progress,
) -> Result<(Vec<volume::PlacedVolume>, Vec<Entry>)> {
    progress.phase("exporting", entries.iter().filter_map(|e| e.file.map(|f| f.size)).sum());
    progress.files(entries.iter().filter(|e| e.file.is_some()).count());
    let mut writer = VolumeWriter::in_dirs(destinations, volume_size, mtime)?;
    // The source folder of the last file, open: files come in manifest
    // order, so most follow one of the same folder.
    let mut folder: Option<(Utf8PathBuf, Dir)> = None;
    for entry in entries {
        match entry.file {
            None => writer.add_dir(&entry.path)?,
            Some(scanned) => {
                let from = entry.path.under(source.dir.path());
                let relative = entry.path.as_path();
                let parent = relative.parent().unwrap_or(Utf8Path::new(""));
                if folder.as_ref().is_none_or(|(open, _)| open != parent) {
                    folder = Some((parent.to_owned(), source.dir.open(parent)?));
                }
                let in_folder = folder.as_ref().map(|(_, dir)| dir).unwrap_or(&source.dir);
                let name = Utf8Path::new(relative.file_name().unwrap_or_default());
                let (mut reader, before) = source.open_file_in(in_folder, name, entry)?;
                writer.add_file(&entry.path, scanned.size, scanned.executable, &mut reader, &from, &|n| {
                    progress.advance(n)
                })?;
                source.check_file(entry, &reader, &before)?;
                progress.file_done();
            }
        }
    }
    crate::delta::medium::add_patches(&mut writer, patches)?;
    // The writer hashed each file while writing it (exactly the scanned
    // size, or the export failed), in the order they were added.
    let (volumes, digests) = writer.finish_hashed()?;
    let mut digests = digests.into_iter();
    let mut hashed = Vec::with_capacity(entries.len());
    for entry in entries {
        let kind = match entry.file {
            None => EntryKind::Dir,
            Some(scanned) => EntryKind::File(FileEntry {
                size: scanned.size,
                digest: digests.next().ok_or_else(|| Error::io("hash", entry.path.as_str(), lost_digest()))?,
                executable: scanned.executable,
                index: scanned.index,
            }),
        };
        hashed.push(Entry { path: entry.path.clone(), kind });
    }
    Ok((volumes, hashed))
}

/// A file's digest missing from the writer's: only if its hashing thread
/// died, which must fail the export rather than sign a wrong digest.
fn lost_digest() -> std::io::Error {
    std::io::Error::other("the hashing thread stopped early")
}

fn next_sequence(media: &Utf8Path, repository: &str, created: Timestamp) -> u64 {
    let from_clock = u64::try_from(created.as_second()).unwrap_or(0);
    let newest_on_media = media::locate(media)
        .unwrap_or_default()
        .iter()
        .filter(|dir| dir.root().parent().and_then(|p| p.file_name()) == Some(repository))
        .filter_map(|dir| dir.root().file_name()?.parse::<u64>().ok())
        .max();
    newest_on_media.map_or(from_clock, |newest| from_clock.max(newest + 1))
}

fn copy_payload(
    source: &Source,
    payload: &Dir,
    entries: &[SourceEntry],
    progress: &dyn Progress,
) -> Result<Vec<Entry>> {
    let jobs = copy_jobs(entries);
    progress.phase("exporting", entries.iter().filter_map(|e| e.file.map(|f| f.size)).sum());
    progress.files(entries.iter().filter(|e| e.file.is_some()).count());
    let results: Mutex<Vec<Option<FileEntry>>> = Mutex::new(vec![None; entries.len()]);
    let open_folders = FolderCache::default();
    let flush = media::flush::BackgroundFlush::new();
    let copy_file = |i: usize| -> Result<()> {
        let entry = &entries[i];
        let Some(scanned) = entry.file else { return Ok(()) };
        let from = entry.path.under(source.dir.path());
        let to = entry.path.under(payload.path());
        let relative = entry.path.as_path();
        let name = relative.file_name().unwrap_or_default();
        let folders = open_folders.take(source, payload, relative.parent().unwrap_or(Utf8Path::new("")))?;
        let (mut reader, before) = source.open_file_in(&folders.from, Utf8Path::new(name), entry)?;
        let writer = folders.to.create_file(name)?;
        open_folders.keep(folders);
        let mut writer = BufWriter::with_capacity(256 * 1024, writer);
        // Whatever the file holds when read is what gets recorded: the
        // digest and the copy come from the same bytes.
        let mut tracked = crate::payload::TrackedWriter { inner: &mut writer, failed: false };
        let hashed =
            copy_hashing(&mut reader, Some(&mut tracked), u64::MAX - 1, &|n| progress.advance(n)).map_err(|e| {
                // Tell a full drive from an unreadable source.
                if tracked.failed { Error::io("write", to.clone(), e) } else { Error::io("read", from.clone(), e) }
            })?;
        let writer = writer.into_inner().map_err(|e| Error::io("write", to.clone(), e.into_error()))?;
        // Large files come first: the drive writes them while the rest is copied.
        if hashed.size >= LARGE_FILE {
            flush.push(to.clone(), writer);
        } else {
            drop(writer);
        }
        source.check_file(entry, &reader, &before)?;
        let file = FileEntry {
            size: hashed.size,
            digest: hashed.digest,
            executable: scanned.executable,
            index: scanned.index,
        };
        results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(file);
        progress.file_done();
        Ok(())
    };
    let errors = parallel::for_each(&jobs, true, |job: &Vec<usize>| job.iter().try_for_each(|&i| copy_file(i)));
    let flushed = flush.finish();
    if let Some(error) = errors.into_iter().next() {
        return Err(error);
    }
    flushed?;
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(entries
        .iter()
        .zip(results)
        .map(|(entry, file)| Entry { path: entry.path.clone(), kind: file.map_or(EntryKind::Dir, EntryKind::File) })
        .collect())
}

/// Files of at least this size are copied first, largest first, so that
/// the workers finish together.
const LARGE_FILE: u64 = 1024 * 1024;

/// Most small files one job copies.
const FILES_PER_JOB: usize = 256;

/// The files of `entries` (indexes) in the jobs the copy workers take:
/// each large file alone, largest first, for balance; then the small ones
/// in manifest order, a folder's files in one job (at most
/// [`FILES_PER_JOB`]). Two workers creating files in one folder at once
/// spent a quarter of the export's CPU time spinning on that folder's
/// lock in the kernel; one worker per folder shares its open handles too.
fn copy_jobs(entries: &[SourceEntry]) -> Vec<Vec<usize>> {
    let size_of = |i: usize| entries[i].file.map_or(0, |f| f.size);
    let files = (0..entries.len()).filter(|&i| entries[i].file.is_some());
    let (mut large, small): (Vec<usize>, Vec<usize>) = files.partition(|&i| size_of(i) >= LARGE_FILE);
    large.sort_by_key(|&i| std::cmp::Reverse(size_of(i)));
    let mut jobs: Vec<Vec<usize>> = large.into_iter().map(|i| vec![i]).collect();
    let folder_of = |i: usize| entries[i].path.as_path().parent();
    for i in small {
        match jobs.last_mut() {
            Some(job)
                if job.len() < FILES_PER_JOB && size_of(job[0]) < LARGE_FILE && folder_of(job[0]) == folder_of(i) =>
            {
                job.push(i)
            }
            _ => jobs.push(vec![i]),
        }
    }
    jobs
}

/// A folder of the source and the same folder of the media, both open
/// (without following links).
struct OpenFolders {
    relative: Utf8PathBuf,
    from: Dir,
    to: Dir,
}

/// Folders opened for recent files, kept for the next files of the same
/// folder: opening both sides component by component for every file cost
/// about a dozen system calls per file.
#[derive(Default)]
struct FolderCache(Mutex<Vec<OpenFolders>>);

impl FolderCache {
    /// Folders kept: a few per worker.
    const KEEP: usize = 8;

    /// The folder `relative` of both sides, from the cache or opened now.
    fn take(&self, source: &Source, payload: &Dir, relative: &Utf8Path) -> Result<OpenFolders> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = kept.iter().position(|open| open.relative == relative) {
            return Ok(kept.swap_remove(at));
        }
        drop(kept);
        Ok(OpenFolders { relative: relative.to_owned(), from: source.dir.open(relative)?, to: payload.open(relative)? })
    }

    /// Keeps `folders` for the next file, dropping the oldest kept.
    fn keep(&self, folders: OpenFolders) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= Self::KEEP {
            kept.remove(0);
        }
        kept.push(folders);
    }
}

/// What `export --dry-run` found: the export as it would run, checked as
/// far as it can be without writing or unlocking the key.
#[derive(Debug, Clone, Serialize)]
pub struct ExportPlan {
    /// The repository id.
    pub repository: String,
    /// The sequence the export would get.
    pub sequence: u64,
    /// The snapshot folder it would write on each drive, in part order
    /// (spanning may leave later drives unused).
    pub parts: Vec<Utf8PathBuf>,
    /// `tar` or `tree`.
    pub layout: &'static str,
    /// Files it would export.
    pub files: usize,
    /// Folders it would export.
    pub folders: usize,
    /// Payload bytes.
    pub bytes: u64,
    /// Snapshot folders `--prune` would remove.
    pub would_prune: Vec<Utf8PathBuf>,
    /// Entries `--prune` would leave alone, each `PATH: REASON`.
    pub left_alone: Vec<String>,
    /// Always true: nothing was written.
    pub dry_run: bool,
}

/// Checks what [`export`] checks before writing (source, drives, their
/// room and filesystem limits, names) and says what it would write, without
/// writing anything, taking the ledger's lock or needing the key.
pub fn plan(options: &ExportOptions) -> Result<ExportPlan> {
    plan_selected(options, Selection::default())
}

/// [`plan`] of an export of what `selection` carries.
pub fn plan_selected(options: &ExportOptions, selection: Selection<'_>) -> Result<ExportPlan> {
    preflight(options)?;
    let repository = repository_of(options)?;
    let created = options.created.unwrap_or_else(crate::clock::now);
    let sequence = match options.sequence {
        Some(sequence) => sequence,
        None => {
            let floor = next_sequence(&options.media, repository.as_str(), created);
            let ledger = options.ledger.as_ref().map(|root| Ledger::new(root).read(&repository)).transpose()?;
            ledger.map_or(floor, |ledger| ledger.next_sequence(floor))
        }
    };
    if !options.since.is_empty() {
        // The bases must be known; what the delta carries needs the
        // contents hashed, which a dry run does not do.
        let ledger = options.ledger.as_ref().map(|root| Ledger::new(root).read(&repository)).transpose()?;
        let ledger =
            ledger.ok_or_else(|| Error::InvalidArgument("--since needs the export ledger (--ledger DIR)".into()))?;
        crate::delta::export::resolve_ids(&options.since, &ledger, &repository, options.site_keys.as_ref())?;
    }
    let drives = drives_for(options)?;
    let scanned = scan::scan(&options.source, &scan::index_matcher(&options.index_patterns)?)?;
    let entries = select(selection, scanned, (&mut None, &mut None))?;
    // A drive folder the export would create is measured by its parent.
    let existing: Vec<Utf8PathBuf> = drives.iter().map(|drive| nearest_existing(drive)).collect();
    check_drives(
        options,
        &existing.iter().collect::<Vec<_>>(),
        &format!("{MEDIA_ROOT}/{repository}/{sequence}"),
        &entries,
    )?;
    let parts: Vec<Utf8PathBuf> = drives
        .iter()
        .map(|drive| SnapshotDir::on_media(drive, repository.as_str(), sequence).root().to_owned())
        .collect();
    let mut pruned = crate::ops::list::Pruned::default();
    if let Some(keep) = options.prune {
        for (drive, part) in drives.iter().zip(&parts) {
            let plan = crate::ops::list::prune_plan(drive, repository.as_str(), keep, part)?;
            pruned.removed.extend(plan.removed);
            pruned.left_alone.extend(plan.left_alone);
        }
    }
    let files = entries.iter().filter(|entry| entry.file.is_some()).count();
    Ok(ExportPlan {
        repository: repository.to_string(),
        sequence,
        parts,
        layout: if options.layout == MediaLayout::Tree { "tree" } else { "tar" },
        files,
        folders: entries.len() - files,
        bytes: entries.iter().filter_map(|entry| entry.file.map(|file| file.size)).sum(),
        would_prune: pruned.removed,
        left_alone: pruned.left_alone,
        dry_run: true,
    })
}

/// `path`, or its nearest ancestor that exists.
fn nearest_existing(path: &Utf8Path) -> Utf8PathBuf {
    let existing = path.ancestors().find(|ancestor| ancestor.as_str().is_empty() || ancestor.exists());
    match existing {
        Some(found) if !found.as_str().is_empty() => found.to_owned(),
        _ => Utf8PathBuf::from("."),
    }
}
