//! `ferry diff`: what changed between two snapshots, and what a delta
//! between them would carry. Each side is a source folder, a drive (or
//! snapshot folder, verified with the trusted keys), or a receipt (its
//! snapshot found in the ledger, formats/receipt-v1.md §4).

use crate::delta::plan::{self, Comparison, FileChange};
use crate::delta::{patch, receipt::Receipt};
use crate::error::{Error, IoContext, Result};
use crate::ledger::{Ledger, RepositoryLedger};
use crate::manifest::{FileEntry, Layout, Manifest, RepositoryId};
use crate::rel_path::RelPath;
use crate::signing::TrustStore;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::HashMap;

/// What to compare.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// The older side: a source folder, a drive or snapshot folder, or a receipt.
    pub old: Utf8PathBuf,
    /// The newer side, of the same kinds.
    pub new: Utf8PathBuf,
    /// Keys that signed the snapshots (drives and ledger copies).
    pub trust: Option<TrustStore>,
    /// Keys of the isolated sites, to check signed receipts.
    pub site_keys: Option<TrustStore>,
    /// The export ledger, for receipts.
    pub ledger: Option<Utf8PathBuf>,
    /// The repository to pick on drives holding several.
    pub repository: Option<String>,
    /// Also measure the bytes with binary patches (reads both versions of
    /// each changed file where both sides have contents).
    pub measure_patches: bool,
}

/// What `ferry diff` found.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    /// The older side, described.
    pub old: String,
    /// The newer side, described.
    pub new: String,
    /// Files only in the new side.
    pub added: Vec<FileChange>,
    /// Files only in the old side.
    pub removed: Vec<FileChange>,
    /// Files in both with other content (or only another mode).
    pub changed: Vec<FileChange>,
    /// Files identical on both sides.
    pub unchanged: usize,
    /// Bytes of every file of the new side (what a full export carries).
    pub full_bytes: u64,
    /// Bytes a delta carries with every added or changed file whole.
    pub delta_bytes_whole: u64,
    /// Bytes a delta carries with binary patches where they pay; `None`
    /// when one side has no file contents here (tar volumes). A receipt's
    /// side has the contents the ledger kept (ledger-v1.md §7).
    pub delta_bytes_with_patches: Option<u64>,
    /// Changed files that would ship as patches.
    pub patched_files: usize,
}

/// One side of the comparison.
struct Side {
    label: String,
    files: Vec<(RelPath, FileEntry)>,
    contents: Contents,
}

/// Where a side's file contents can be read, if anywhere.
enum Contents {
    /// Nowhere here (tar volumes).
    None,
    /// A folder holding the files at their paths.
    Folder(Utf8PathBuf),
    /// The ledger's kept contents, by SHA-256 (ledger-v1.md §7).
    Ledger(RepositoryLedger),
}

impl Contents {
    fn read(&self, path: &RelPath, file: &FileEntry) -> Result<Option<Vec<u8>>> {
        match self {
            Contents::None => Ok(None),
            Contents::Folder(root) => {
                let from = path.under(root);
                std::fs::read(&from).ctx("read", &from).map(Some)
            }
            Contents::Ledger(ledger) => ledger.object(&file.digest),
        }
    }
}

/// Compares the two sides.
pub fn diff(options: &DiffOptions) -> Result<DiffReport> {
    let old = open_side(&options.old, options)?;
    let new = open_side(&options.new, options)?;
    let comparison = plan::compare(old.files.iter().map(|(p, f)| (p, f)), new.files.iter().map(|(p, f)| (p, f)));
    let whole = comparison.whole_bytes();
    let (with_patches, patched_files) = match (&old.contents, &new.contents, options.measure_patches) {
        (Contents::None, _, _) | (_, Contents::None, _) | (_, _, false) => (None, 0),
        _ => {
            let (saved, patched) = measure_patches(&old, &new, &comparison)?;
            (Some(whole - saved), patched)
        }
    };
    Ok(DiffReport {
        old: old.label,
        new: new.label,
        full_bytes: new.files.iter().map(|(_, f)| f.size).sum(),
        delta_bytes_whole: whole,
        delta_bytes_with_patches: with_patches,
        patched_files,
        added: comparison.added,
        removed: comparison.removed,
        changed: comparison.changed,
        unchanged: comparison.unchanged,
    })
}

/// Bytes saved by patches and compression (formats/delta-v1.md DW2, DW3)
/// over whole files, and how many changed files get a patch from their
/// old version.
fn measure_patches(old: &Side, new: &Side, comparison: &Comparison) -> Result<(u64, usize)> {
    let entries = |side: &Side| -> HashMap<String, (RelPath, FileEntry)> {
        side.files.iter().map(|(path, file)| (path.to_string(), (path.clone(), file.clone()))).collect()
    };
    let (old_files, new_files) = (entries(old), entries(new));
    let (mut saved, mut patched) = (0, 0);
    let changes = comparison.added.iter().chain(comparison.changed.iter().filter(|c| !c.mode_only));
    for change in changes {
        let Some((path, new_file)) = new_files.get(&change.path) else { continue };
        if new_file.size > patch::MAX_PATCH_INPUT {
            continue;
        }
        let Some(new_bytes) = new.contents.read(path, new_file)? else { continue };
        let old_bytes = match old_files.get(&change.path) {
            Some((_, old_file)) if old_file.size <= patch::MAX_PATCH_INPUT => old.contents.read(path, old_file)?,
            _ => None,
        };
        let from_old = match &old_bytes {
            Some(old_bytes) => patch::make(old_bytes, &new_bytes)?,
            None => None,
        };
        patched += usize::from(from_old.is_some());
        if let Some(made) = from_old.map_or_else(|| patch::compress(&new_bytes), |made| Ok(Some(made)))? {
            saved += new_file.size.saturating_sub(made.len() as u64);
        }
    }
    Ok((saved, patched))
}

fn open_side(path: &Utf8Path, options: &DiffOptions) -> Result<Side> {
    let metadata = std::fs::metadata(path).ctx("open", path)?;
    if metadata.is_file() {
        return open_receipt(path, options);
    }
    let on_media = match crate::media::locate(path) {
        Ok(dirs) => dirs.iter().any(|dir| dir.is_complete()),
        Err(Error::NoSnapshot(_)) => false,
        Err(error) => return Err(error),
    };
    if !on_media {
        return open_source(path);
    }
    let trust = options.trust.as_ref().ok_or(Error::NoTrust)?;
    let (dir, snapshot) =
        crate::ops::import::choose_snapshot(&[path.to_owned()], options.repository.as_deref(), None, trust)?;
    let manifest = snapshot.manifest();
    Ok(Side {
        label: format!("{} sequence {} on {}", manifest.repository, manifest.sequence, dir.root()),
        files: files_of(manifest),
        // A delta's tree holds only what it carries, not every file.
        contents: match (&manifest.layout, snapshot.delta()) {
            (Layout::Tree, None) => Contents::Folder(dir.payload()),
            _ => Contents::None,
        },
    })
}

fn open_receipt(path: &Utf8Path, options: &DiffOptions) -> Result<Side> {
    let read = Receipt::read(path, options.site_keys.as_ref())?;
    let receipt = read.receipt;
    let repository = match &options.repository {
        Some(text) => RepositoryId::new(text).map_err(Error::InvalidArgument)?,
        None => receipt.repository.clone(),
    };
    let ledger_root = options.ledger.as_ref().ok_or_else(|| {
        Error::InvalidArgument(format!("`{path}` is a receipt: the ledger is needed to read it (--ledger DIR)"))
    })?;
    let ledger = Ledger::new(ledger_root).read(&repository)?;
    receipt.check_against(path, &ledger, &repository)?;
    let trust = options.trust.as_ref().ok_or(Error::NoTrust)?;
    let snapshot = ledger.snapshot(&receipt.snapshot, trust)?;
    let manifest = snapshot.manifest();
    Ok(Side {
        label: format!("{} sequence {} per receipt {path}", manifest.repository, manifest.sequence),
        files: files_of(manifest),
        contents: Contents::Ledger(ledger),
    })
}

fn open_source(root: &Utf8Path) -> Result<Side> {
    let entries = crate::scan::scan(root, &crate::scan::index_matcher(&[])?)?;
    let mut files = Vec::new();
    for entry in entries {
        let Some(scanned) = entry.file else { continue };
        let from = entry.path.under(root);
        let mut reader = std::fs::File::open(&from).ctx("open", &from)?;
        let hashed = crate::digest::copy_hashing(&mut reader, None, u64::MAX - 1, &|_| {}).ctx("read", &from)?;
        let file = FileEntry { size: hashed.size, digest: hashed.digest, executable: scanned.executable, index: false };
        files.push((entry.path, file));
    }
    Ok(Side { label: format!("source folder {root}"), files, contents: Contents::Folder(root.to_owned()) })
}

fn files_of(manifest: &Manifest) -> Vec<(RelPath, FileEntry)> {
    manifest.files().map(|(path, file)| (path.clone(), file.clone())).collect()
}
