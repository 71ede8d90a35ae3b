//! `ferry import`: install a verified snapshot into an update source.
//!
//! Checks happen in this order, all before anything at the target changes
//! (formats/threat-model.md): signature by a trusted key, expiry, then under
//! the target lock: repository, sequence (no rollback, no reuse of a
//! sequence for other content). Payload bytes are verified while they
//! stream into staging; the commit strategy comes from the target's
//! capabilities.

use crate::audit::{Action, Record};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::install::change_set::ChangeSet;
use crate::install::history;
use crate::install::ordered::{self, OrderedInstall};
use crate::install::state::{InstalledState, SwitchKind};
use crate::install::tree::{self, TreeInstall};
use crate::media::{self, SnapshotDir};
use crate::ops::verify::SnapshotSummary;
use crate::report::Progress;
use crate::signing::{TrustStore, VerifiedSnapshot};
use crate::trust::rotation::AppliedRotation;
use jiff::Timestamp;
use serde::Serialize;

/// How to commit the new snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SwitchChoice {
    /// The whole-tree switch where the target allows it, else ordered.
    #[default]
    Auto,
    /// Insist on the whole-tree switch.
    Tree,
    /// Use the ordered switch even where a whole-tree switch is possible.
    Ordered,
}

/// Options of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Media: a snapshot folder or a folder above snapshot folders; one per
    /// drive when a snapshot spans several.
    pub media: Vec<camino::Utf8PathBuf>,
    /// Only consider this repository on the media.
    pub repository: Option<String>,
    /// Install this sequence instead of the newest.
    pub sequence: Option<u64>,
    /// Commit strategy.
    pub switch: SwitchChoice,
    /// Wait for another import to finish instead of failing.
    pub wait: bool,
    /// Replace the contents of a non-empty target that ferry did not fill.
    pub adopt: bool,
    /// Hash the files an import would keep and write again what differs;
    /// with the installed snapshot, restore its damaged files.
    pub repair: bool,
    /// Hash the files an import would keep in place and refuse it if one
    /// differs from the installed manifest (`--deep`, formats/delta-v1.md DI3).
    pub deep: bool,
    /// Check everything that can be checked without writing, and report
    /// what the import would change instead of changing it (`--dry-run`).
    pub dry_run: bool,
    /// The current time (for expiry checks).
    pub now: Timestamp,
    /// Install a snapshot whose expiry has passed (needs `reason`).
    pub allow_expired: bool,
    /// Install a snapshot further ahead than `max_jump` (needs `reason`).
    pub allow_jump: bool,
    /// Largest sequence jump over the installed one accepted without
    /// `allow_jump`, in sequence units (seconds): [`crate::freeze::DEFAULT_MAX_JUMP`].
    pub max_jump: u64,
    /// Who runs the import, for the audit journal.
    pub operator: Option<String>,
    /// Why, for the audit journal; required by the overrides.
    pub reason: Option<String>,
    /// Bytes of files a delta import rebuilds from patches that are kept
    /// in memory until the switch, in total; the rest are written to a
    /// temporary folder (formats/delta-v1.md DI4).
    pub rebuild_memory: u64,
    /// Set by `publish`: the journal records a publish, not an import.
    pub(crate) publishing: bool,
    /// Journal records of what happened before the import itself (key
    /// rotations applied from the media), written with its entry.
    pub(crate) pending: Vec<Record>,
}

impl ImportOptions {
    /// An import of the newest trusted snapshot on `media` as of `now`,
    /// with the automatic switch and no waiting, adopting or repairing.
    pub fn new(media: Vec<camino::Utf8PathBuf>, now: Timestamp) -> Self {
        ImportOptions {
            media,
            repository: None,
            sequence: None,
            switch: SwitchChoice::Auto,
            wait: false,
            adopt: false,
            repair: false,
            deep: false,
            dry_run: false,
            now,
            allow_expired: false,
            allow_jump: false,
            max_jump: crate::freeze::DEFAULT_MAX_JUMP,
            operator: None,
            reason: None,
            rebuild_memory: crate::delta::import::DEFAULT_REBUILD_MEMORY,
            publishing: false,
            pending: Vec::new(),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The target.
    pub target: String,
    /// The snapshot installed.
    pub snapshot: SnapshotSummary,
    /// Sequence installed before, if any.
    pub previous_sequence: Option<u64>,
    /// How the snapshot was switched in, or `none` when it was already installed.
    pub switch: SwitchUsed,
    /// Files added.
    pub added: usize,
    /// Files whose content or mode changed.
    pub changed: usize,
    /// Files removed.
    pub removed: usize,
    /// Of the files removed, those the new snapshot names as declined
    /// (formats/policy-v1.md §6 PS5).
    pub removed_declined: usize,
    /// Files of the installed snapshot found damaged at the target and
    /// restored (`--repair`); also counted in `changed`.
    pub repaired: usize,
    /// Bytes of the files added or changed.
    pub bytes_transferred: u64,
    /// What recovery of an earlier interrupted run did, if anything.
    pub recovered: Vec<String>,
    /// Whether this only says what the import would do (`--dry-run`):
    /// then nothing was written and `switch` is `none`.
    pub dry_run: bool,
    /// Key rotations on the media applied to the trust store first
    /// ([`import_with_store`]).
    pub rotations: Vec<AppliedRotation>,
}

impl ImportReport {
    /// Whether the import changes (or, in a dry run, would change) any file.
    pub fn changes_anything(&self) -> bool {
        self.added + self.changed + self.removed > 0
    }
}

/// How an import switched its snapshot in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchUsed {
    /// The whole tree was exchanged in one step.
    Tree,
    /// Files were renamed into place under a journal.
    Ordered,
    /// Nothing: the snapshot was already installed, or `--dry-run`.
    None,
}

impl SwitchUsed {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchUsed::Tree => "tree",
            SwitchUsed::Ordered => "ordered",
            SwitchUsed::None => "none",
        }
    }
}

impl From<SwitchKind> for SwitchUsed {
    fn from(kind: SwitchKind) -> Self {
        match kind {
            SwitchKind::Tree => SwitchUsed::Tree,
            SwitchKind::Ordered => SwitchUsed::Ordered,
        }
    }
}

/// Installs the newest trusted snapshot from the media into `target`.
pub fn import(
    target: &dyn Backend,
    options: &ImportOptions,
    trust: &TrustStore,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    // Everything about the media is checked before the target is touched;
    // only the state marker is read here, to know which repository to pick.
    let installed = crate::install::installed_state(target).ok().flatten();
    // The installed manifest is decoded before the new one is read, so that
    // both manifests' bytes are never held at once (issue 14); a target
    // whose state cannot be read here reports it under the lock.
    let early = installed.as_ref().and_then(|_| {
        progress.phase("reading the installed manifest", 0);
        crate::install::installed(target).ok().flatten()
    });
    let wanted_repository = options.repository.clone().or(installed.as_ref().map(|state| state.repository.to_string()));
    crate::freeze::check_options(options)?;
    let wanted = (wanted_repository.as_deref(), options.sequence);
    let for_target = (installed.map(|state| state.snapshot), progress);
    progress.phase("checking the signed manifest", 0);
    let (dir, snapshot) = choose_snapshot_for(&options.media, wanted, trust, for_target)
        .map_err(|error| journal_refusal(target, options, None, error))?;
    install_after(target, (&dir, &snapshot), options, progress, early)
}

/// [`import`] with the trust store in `store_dir`: the key rotations on the
/// media are applied to the store first (formats/rotation-v1.md §6) and
/// journaled with the import, then the snapshot is checked against the
/// store as they left it. What `ferry import` does without `--trust`.
pub fn import_with_store(
    target: &dyn Backend,
    options: &ImportOptions,
    store_dir: &camino::Utf8Path,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let (trust, rotations) = store_after_rotations(store_dir, &options.media, options.dry_run, progress)?;
    let records: Vec<Record> = rotations.iter().map(|applied| rotation_record(applied, options)).collect();
    let mut options = options.clone();
    options.pending.extend(records);
    let mut report = import(target, &options, &trust, progress)?;
    report.rotations = rotations;
    Ok(report)
}

/// The trust store's policy once the rotation statements on `drives` are
/// applied, and those statements. A dry run applies them in memory only:
/// it writes nothing, the store included.
pub(crate) fn store_after_rotations(
    store_dir: &camino::Utf8Path,
    drives: &[camino::Utf8PathBuf],
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<(TrustStore, Vec<AppliedRotation>)> {
    let (store, rotations) = crate::trust::rotation::preview_from_media(store_dir, drives)?;
    if !dry_run && !rotations.is_empty() {
        store.save()?;
    }
    for applied in &rotations {
        let done = if dry_run { "would apply" } else { "applied" };
        progress.attention(&format!("{done} {}", applied.describe()));
    }
    Ok((store.policy()?, rotations))
}

/// The journal record of a rotation applied to the trust store.
pub(crate) fn rotation_record(applied: &AppliedRotation, options: &ImportOptions) -> Record {
    let what = format!(
        "rotation {}: added [{}], removed [{}], threshold {}",
        applied.number,
        applied.added.join(","),
        applied.removed.join(","),
        applied.threshold
    );
    Record {
        repository: crate::manifest::RepositoryId::new(&applied.repository).ok(),
        signers: applied.signed_by.split(',').filter_map(crate::signing::KeyId::from_hex).collect(),
        ..Record::new(options.now, Action::Rotation).by(options.operator.as_deref(), Some(&what))
    }
}

/// Records a refusal in the journal of a target that has one (taking the
/// lock as the import would) and gives the error back. A target without an
/// installed snapshot is left untouched: nothing is written anywhere.
fn journal_refusal(
    target: &dyn Backend,
    options: &ImportOptions,
    snapshot: Option<&VerifiedSnapshot>,
    error: Error,
) -> Error {
    if options.dry_run
        || error.class() != crate::error::ErrorClass::Refused
        || !matches!(crate::install::installed_state(target), Ok(Some(_)))
    {
        return error;
    }
    if let Ok(_lock) = crate::install::lock(target, options.wait, &crate::report::Silent) {
        // The refusal stands whether or not it could be recorded.
        let records: Vec<Record> =
            options.pending.iter().cloned().chain([refusal(options, snapshot, &error)]).collect();
        let _ = history::append(target, &records);
    }
    error
}

/// The journal record of a refusal: the snapshot if it was verified, and
/// the error's first line as the reason.
fn refusal(options: &ImportOptions, snapshot: Option<&VerifiedSnapshot>, error: &Error) -> Record {
    let record = Record::new(options.now, Action::Refusal);
    let record = match snapshot {
        Some(snapshot) => record.about(snapshot),
        None => record,
    };
    let text = error.to_string();
    record.by(options.operator.as_deref(), text.lines().next())
}

/// Installs a snapshot whose signature is already verified: checks expiry
/// and the media's file list, then, under the target lock, recovery,
/// repository and sequence, and switches it in. `ferry publish` calls this
/// once per distribution point.
pub fn install(
    target: &dyn Backend,
    dir: &SnapshotDir,
    snapshot: &VerifiedSnapshot,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    install_after(target, (dir, snapshot), options, progress, None)
}

/// [`install`] with what the target held installed when the import began
/// (`early`), reused if the target still holds it.
fn install_after(
    target: &dyn Backend,
    (dir, snapshot): (&SnapshotDir, &VerifiedSnapshot),
    options: &ImportOptions,
    progress: &dyn Progress,
    early: Option<crate::install::Installed>,
) -> Result<ImportReport> {
    crate::freeze::check_options(options)?;
    let refused = |error| journal_refusal(target, options, Some(snapshot), error);
    let overrides = crate::freeze::check_expiry(dir, snapshot, options).map_err(refused)?;
    progress.phase("indexing the media", 0);
    let payload = dir.open_payload(snapshot).map_err(refused)?;
    if options.dry_run {
        return plan(target, (dir, snapshot), options, early);
    }
    let created = target.create()?;
    let lock = crate::install::lock(target, options.wait, progress)?;
    let records = [options.pending.clone(), overrides].concat();
    let installed = install_locked(target, (dir, snapshot), (payload, early), options, records, progress);
    if let Err(error) = &installed {
        if created {
            // A refused or failed first import leaves no empty folder behind.
            let _ = target.discard();
        } else if error.class() == crate::error::ErrorClass::Refused
            && matches!(crate::install::installed_state(target), Ok(Some(_)))
        {
            // Still under the lock: the refusal is recorded where it happened
            // (only where a snapshot is installed: nothing is written elsewhere).
            let refused = refusal(options, Some(snapshot), error);
            let _ = history::append(target, &[options.pending.clone(), vec![refused]].concat());
        }
    }
    drop(lock);
    installed
}

/// [`install`] once the target exists and its lock is held.
fn install_locked(
    target: &dyn Backend,
    (dir, snapshot): (&SnapshotDir, &VerifiedSnapshot),
    (payload, early): (crate::payload::Payload, Option<crate::install::Installed>),
    options: &ImportOptions,
    mut records: Vec<Record>,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let manifest = snapshot.manifest();
    let recovered: Vec<String> = crate::install::recover(target)?.into_iter().map(|r| r.description).collect();
    history::check(target)?;
    if early.is_none() {
        progress.phase("reading the installed manifest", 0);
    }
    let installed = crate::install::installed_since(target, early)?;
    let summary = SnapshotSummary::new(dir, snapshot);
    if let Some((state, installed_manifest)) = &installed {
        check_policy(dir, snapshot, state)?;
        records.extend(crate::freeze::check_installed(dir, snapshot, state, options)?);
        if state.snapshot == snapshot.id() {
            let offered = (dir, snapshot, &payload);
            return reinstall(target, offered, options, progress, (state, installed_manifest.manifest()), recovered);
        }
    }
    let held = installed.as_ref().map(|(state, _)| (state.snapshot, state.sequence));
    crate::delta::import::check_base(&dir.manifest_path(), snapshot, held)?;
    let adopted = if installed.is_some() { Vec::new() } else { adoptable_tree(target, options.adopt)? };
    let installed_manifest = installed.as_ref().map(|(_, m)| m.manifest());
    progress.phase("planning the changes", 0);
    let mut changes = ChangeSet::between(installed_manifest, manifest);
    let offered = (dir.manifest_path(), snapshot);
    crate::delta::import::confirm_kept(target, (&offered.0, snapshot), installed_manifest, &mut changes, options)?;
    let payload = &crate::delta::import::payload(
        target,
        (&offered.0, offered.1),
        installed_manifest,
        &changes,
        (payload, options.rebuild_memory),
        progress,
    )?;

    target.check_space()?;
    let switch = choose_switch(target, crate::delta::import::switch_choice(snapshot, options.switch))?;
    let now = options.now;
    let state = InstalledState {
        repository: manifest.repository.clone(),
        sequence: manifest.sequence,
        snapshot: snapshot.id(),
        created: manifest.created,
        expires: manifest.expires,
        installed: now,
        switch,
        previous: installed.as_ref().map(|(s, _)| s.snapshot),
        rolled_back_from: None,
    };
    let action = if options.publishing { Action::Publish } else { Action::Import };
    let declined = crate::workflow::record::declined(snapshot, &changes.removed().collect::<Vec<_>>());
    records.push(
        Record::new(now, action)
            .about(snapshot)
            .by(options.operator.as_deref(), options.reason.as_deref())
            .removed_declined(declined),
    );
    match (switch, target.tree_exchange()) {
        (SwitchKind::Tree, Some(trees)) => tree::install(
            target,
            trees,
            &TreeInstall { snapshot, media: payload, changes: &changes, state: &state, records: &records, progress },
        )?,
        _ => ordered::install(
            target,
            &OrderedInstall {
                snapshot,
                media: payload,
                installed: installed_manifest,
                changes: &changes,
                adopted: &adopted,
                state: &state,
                records: &records,
                progress,
                repair: false,
            },
        )
        .map(|()| tree::remove_stale_previous(target, progress))?,
    }
    Ok(ImportReport {
        target: target.location(),
        snapshot: summary,
        previous_sequence: installed.as_ref().map(|(s, _)| s.sequence),
        switch: switch.into(),
        added: changes.added().len(),
        changed: changes.changed().len(),
        removed: changes.removed().len(),
        removed_declined: declined,
        repaired: 0,
        bytes_transferred: changes.bytes_to_write(),
        recovered,
        dry_run: false,
        rotations: Vec::new(),
    })
}

/// What [`install`] would do, found without writing to the target, taking
/// its lock or probing its switch (`--dry-run`): the checks against the
/// installed snapshot, and the files that would be added, changed and
/// removed. The media's bytes are hashed by the import itself (or now by
/// `ferry verify`), not here.
fn plan(
    target: &dyn Backend,
    (dir, snapshot): (&SnapshotDir, &VerifiedSnapshot),
    options: &ImportOptions,
    early: Option<crate::install::Installed>,
) -> Result<ImportReport> {
    let missing = target.is_missing()?;
    let installed = if missing { None } else { crate::install::installed_since(target, early)? };
    match &installed {
        Some((state, _)) => {
            check_policy(dir, snapshot, state)?;
            crate::freeze::check_installed(dir, snapshot, state, options)?;
        }
        None if !missing => {
            adoptable_tree(target, options.adopt)?;
        }
        None => {}
    }
    let installed_manifest = installed.as_ref().map(|(_, m)| m.manifest());
    let mut changes = ChangeSet::between(installed_manifest, snapshot.manifest());
    if installed.is_some() {
        let offered = (dir.manifest_path(), snapshot);
        crate::delta::import::confirm_kept(target, (&offered.0, snapshot), installed_manifest, &mut changes, options)?;
    }
    let reinstall = installed.as_ref().is_some_and(|(state, _)| state.snapshot == snapshot.id());
    if reinstall && changes.changed().len() > 0 && !options.repair {
        return Err(Error::Drift {
            target: target.location(),
            problems: changes.changed().map(|(path, file)| drift_problem(target, path, file)).collect(),
        });
    }
    Ok(ImportReport {
        target: target.location(),
        snapshot: SnapshotSummary::new(dir, snapshot),
        previous_sequence: installed.as_ref().map(|(s, _)| s.sequence),
        switch: SwitchUsed::None,
        added: changes.added().len(),
        changed: changes.changed().len(),
        removed: changes.removed().len(),
        removed_declined: crate::workflow::record::declined(snapshot, &changes.removed().collect::<Vec<_>>()),
        repaired: if reinstall { changes.changed().len() } else { 0 },
        bytes_transferred: changes.bytes_to_write(),
        recovered: Vec::new(),
        dry_run: true,
        rotations: Vec::new(),
    })
}

/// The snapshot offered is the one installed: nothing to do, unless files
/// of it are no longer intact at the target. Those are named (and, with
/// `--repair`, restored in place from the media).
fn reinstall(
    target: &dyn Backend,
    (dir, snapshot, payload): (&SnapshotDir, &VerifiedSnapshot, &crate::payload::Payload),
    options: &ImportOptions,
    progress: &dyn Progress,
    (state, installed): (&InstalledState, &crate::manifest::Manifest),
    recovered: Vec<String>,
) -> Result<ImportReport> {
    let manifest = snapshot.manifest();
    let mut changes = ChangeSet::between(Some(installed), manifest);
    changes.confirm_in_place(target, options.repair)?;
    let damaged = changes.changed().len();
    let report = |switch, bytes| ImportReport {
        target: target.location(),
        snapshot: SnapshotSummary::new(dir, snapshot),
        previous_sequence: Some(state.sequence),
        switch,
        added: 0,
        changed: damaged,
        removed: 0,
        removed_declined: 0,
        repaired: damaged,
        bytes_transferred: bytes,
        recovered: recovered.clone(),
        dry_run: false,
        rotations: Vec::new(),
    };
    if damaged == 0 {
        return Ok(ImportReport { changed: 0, repaired: 0, ..report(SwitchUsed::None, 0) });
    }
    if !options.repair {
        return Err(Error::Drift {
            target: target.location(),
            problems: changes.changed().map(|(path, file)| drift_problem(target, path, file)).collect(),
        });
    }
    let restored = format!("{} restored", crate::report::counted(damaged, "file", "files"));
    let records = [Record::new(options.now, Action::Repair)
        .about(snapshot)
        .by(options.operator.as_deref(), Some(options.reason.as_deref().unwrap_or(&restored)))];
    ordered::install(
        target,
        &OrderedInstall {
            snapshot,
            media: payload,
            installed: Some(installed),
            changes: &changes,
            adopted: &[],
            state,
            records: &records,
            progress,
            repair: true,
        },
    )?;
    Ok(report(SwitchUsed::Ordered, changes.bytes_to_write()))
}

/// What is wrong with one file of the installed snapshot at the target.
fn drift_problem(target: &dyn Backend, path: &crate::rel_path::RelPath, file: &crate::manifest::FileEntry) -> String {
    match target.file_size(path) {
        Ok(None) => format!("{path}: missing"),
        Ok(Some(size)) if size != file.size => format!("{path}: {size} bytes, installed as {}", file.size),
        _ => format!("{path}: contents differ from the installed manifest"),
    }
}

/// What a target without ferry's state holds, which an import may replace
/// only when asked to (`--adopt`).
fn adoptable_tree(target: &dyn Backend, adopt: bool) -> Result<Vec<(crate::rel_path::RelPath, bool)>> {
    let found = target.list_tree()?;
    if !found.is_empty() && !adopt {
        return Err(Error::InvalidArgument(format!(
            "`{}` already holds {} entries that ferry did not install; refusing to replace them\nhint: check the path, then pass --adopt to replace its contents with the snapshot",
            target.location(),
            found.len()
        )));
    }
    Ok(found)
}

/// The switch to use: the whole-tree one where the back end can exchange
/// trees (unless `--switch ordered`), else the ordered one.
fn choose_switch(target: &dyn Backend, choice: SwitchChoice) -> Result<SwitchKind> {
    match (choice, target.tree_exchange()) {
        (SwitchChoice::Ordered, _) | (SwitchChoice::Auto, None) => Ok(SwitchKind::Ordered),
        (_, Some(_)) => Ok(SwitchKind::Tree),
        (SwitchChoice::Tree, None) => Err(Error::InvalidArgument(format!(
            "`{}` cannot be switched as a whole tree (a mount point, a network filesystem, or --state-dir outside it); use --switch ordered",
            target.location()
        ))),
    }
}

/// Refuses another repository, an older sequence, or a reused sequence.
fn check_policy(dir: &SnapshotDir, snapshot: &VerifiedSnapshot, installed: &InstalledState) -> Result<()> {
    let manifest = snapshot.manifest();
    if manifest.repository != installed.repository {
        return Err(Error::WrongRepository {
            manifest: dir.manifest_path(),
            offered: manifest.repository.to_string(),
            installed: installed.repository.to_string(),
        });
    }
    if manifest.sequence < installed.sequence {
        return Err(Error::Rollback {
            manifest: dir.manifest_path(),
            repository: manifest.repository.to_string(),
            offered: manifest.sequence,
            installed: installed.sequence,
        });
    }
    if manifest.sequence == installed.sequence && snapshot.id() != installed.snapshot {
        return Err(Error::SequenceReuse {
            manifest: dir.manifest_path(),
            sequence: manifest.sequence,
            installed_id: installed.snapshot.short(),
            offered_id: snapshot.id().short(),
        });
    }
    Ok(())
}

/// Picks the snapshot to install: the only one, or the newest trusted one
/// of the wanted repository (or the wanted sequence). A bad single snapshot
/// reports its own error. With several drives, the folders of one snapshot
/// spread over them are joined (`media::locate_all`), and the choice among
/// several snapshots is the one made on one drive (formats/delta-v1.md
/// DI6): every drive must hold part of the chosen snapshot or a whole
/// trusted snapshot of its repository; any other drive is named.
pub(crate) fn choose_snapshot(
    drives: &[camino::Utf8PathBuf],
    repository: Option<&str>,
    sequence: Option<u64>,
    trust: &TrustStore,
) -> Result<(SnapshotDir, VerifiedSnapshot)> {
    choose_snapshot_for(drives, (repository, sequence), trust, (None, &crate::report::Silent))
}

/// [`choose_snapshot`] for a target holding the snapshot `installed`: of
/// several, the newest that applies to it (formats/delta-v1.md DI6),
/// saying which through `progress`.
fn choose_snapshot_for(
    drives: &[camino::Utf8PathBuf],
    (repository, sequence): (Option<&str>, Option<u64>),
    trust: &TrustStore,
    for_target: (Option<crate::digest::Digest>, &dyn Progress),
) -> Result<(SnapshotDir, VerifiedSnapshot)> {
    let shown = drives.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(" ");
    let dirs = media::locate_all(drives)?;
    let (chosen, others) = match (dirs.as_slice(), sequence) {
        ([only], None) => {
            let snapshot = only.open(trust)?;
            ((only.clone(), snapshot), Vec::new())
        }
        _ => newest(&shown, dirs, (repository, sequence), trust, for_target)?,
    };
    check_every_drive_holds_a_part(drives, &chosen.0, &chosen.1, &others)?;
    Ok(chosen)
}

/// The folders, every part included, of the trusted snapshots of
/// `repository` among `found` whose every part was given: on several
/// drives, a drive holding one of them holds a separate snapshot the choice
/// passed over, not a stray (a part of an incomplete one is a stray).
fn folders_of(found: &[(String, SnapshotDir)], repository: &str) -> Vec<camino::Utf8PathBuf> {
    found
        .iter()
        .filter(|(id, dir)| id == repository && dir.has_every_part())
        .flat_map(|(_, dir)| std::iter::once(dir.root().to_owned()).chain(dir.parts().iter().cloned()))
        .collect()
}

fn newest(
    shown: &str,
    dirs: Vec<SnapshotDir>,
    (repository, sequence): (Option<&str>, Option<u64>),
    trust: &TrustStore,
    (installed, progress): (Option<crate::digest::Digest>, &dyn Progress),
) -> Result<((SnapshotDir, VerifiedSnapshot), Vec<camino::Utf8PathBuf>)> {
    let mut first_error = None;
    let mut offered: Vec<(SnapshotDir, VerifiedSnapshot)> = Vec::new();
    let mut trusted: Vec<(String, SnapshotDir)> = Vec::new();
    let mut repositories = Vec::new();
    let mut present = std::collections::BTreeSet::new();
    for dir in dirs {
        match dir.open(trust) {
            Ok(snapshot) => {
                let id = snapshot.manifest().repository.to_string();
                present.insert(id.clone());
                trusted.push((id.clone(), dir.clone()));
                if repository.is_some_and(|wanted| wanted != id)
                    || sequence.is_some_and(|wanted| wanted != snapshot.manifest().sequence)
                {
                    continue;
                }
                if !repositories.contains(&id) {
                    repositories.push(id);
                }
                offered.push((dir, snapshot));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if repositories.len() > 1 {
        return Err(Error::InvalidArgument(format!(
            "`{shown}` holds snapshots of several repositories ({}); choose one with --repository",
            repositories.join(", ")
        )));
    }
    let best = crate::delta::medium::pick(offered, installed, progress);
    if let (None, Some(wanted)) = (&best, repository)
        && !present.is_empty()
        && !present.contains(wanted)
    {
        return Err(Error::InvalidArgument(format!(
            "`{shown}` holds no trusted snapshot of repository `{wanted}`; it holds: {}\nhint: pass one of them with --repository",
            present.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    if let (None, Some(wanted)) = (&best, sequence) {
        return Err(Error::InvalidArgument(format!(
            "`{shown}` holds no trusted snapshot with sequence {wanted}{}; `ferry list {shown}` shows what it holds",
            repository.map(|r| format!(" of repository {r}")).unwrap_or_default()
        )));
    }
    let best = best.ok_or_else(|| first_error.unwrap_or_else(|| Error::NoSnapshot(shown.into())))?;
    let others = folders_of(&trusted, best.1.manifest().repository.as_str());
    Ok((best, others))
}

/// With several drives, each must carry part of the chosen snapshot or a
/// whole trusted snapshot of its repository (`others`: the choice among
/// them was said, DI6): a drive from another export, of another
/// repository or with only an unfinished folder would otherwise be
/// silently ignored, and the operator would think it had been read.
fn check_every_drive_holds_a_part(
    drives: &[camino::Utf8PathBuf],
    chosen: &SnapshotDir,
    snapshot: &VerifiedSnapshot,
    others: &[camino::Utf8PathBuf],
) -> Result<()> {
    if drives.len() < 2 {
        return Ok(());
    }
    let folders: Vec<&camino::Utf8Path> = std::iter::once(chosen.root())
        .chain(chosen.parts().iter().map(|p| p.as_path()))
        .chain(others.iter().map(|p| p.as_path()))
        .collect();
    for drive in drives {
        if !folders.iter().any(|folder| folder.starts_with(drive)) {
            let manifest = snapshot.manifest();
            let same = SnapshotDir::on_media(drive, manifest.repository.as_str(), manifest.sequence);
            let problem = if same.root().exists() {
                format!(
                    "holds an unfinished part of {} sequence {} ({} has no manifest.sig): the export did not finish; run it again",
                    manifest.repository,
                    manifest.sequence,
                    same.root()
                )
            } else {
                format!(
                    "holds no part of {} sequence {} (snapshot {}): a drive from another export?",
                    manifest.repository,
                    manifest.sequence,
                    snapshot.id().short()
                )
            };
            return Err(Error::Damaged { media: drive.clone(), problems: vec![problem] });
        }
    }
    Ok(())
}
