//! `ferry export`: snapshot a source tree onto removable media.
//!
//! Order of writes (formats/media-layout-v1.md §3): every payload file, a
//! filesystem flush, the manifest, another flush, the signature. A crash or
//! a full drive at any point leaves a folder without `manifest.sig`, which
//! every reader treats as incomplete.

use crate::digest::copy_hashing;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::manifest::{Entry, EntryKind, FileEntry, Layout, Manifest, RepositoryId};
use crate::media::{self, SnapshotDir};
use crate::parallel;
use crate::report::Progress;
use crate::scan::{self, SourceEntry};
use crate::signing::SecretKey;
use crate::volume::VolumeWriter;
use camino::{Utf8Path, Utf8PathBuf};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::sync::Mutex;

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The repository tree to snapshot.
    pub source: Utf8PathBuf,
    /// The drive (or a folder on it).
    pub media: Utf8PathBuf,
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
    /// Snapshot folder written.
    pub snapshot_dir: Utf8PathBuf,
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
}

/// Runs an export.
pub fn export(options: &ExportOptions, key: &SecretKey, progress: &dyn Progress) -> Result<ExportReport> {
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
    let repository = RepositoryId::new(&repository_text).map_err(Error::InvalidArgument)?;
    if !options.source.is_dir() {
        return Err(Error::io(
            "open source folder",
            &options.source,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let created = options.created.unwrap_or_else(crate::clock::now);
    let expires = match options.expires_after {
        None => None,
        Some(after) => Some(created.checked_add(after).map_err(|e| Error::InvalidArgument(format!("expiry: {e}")))?),
    };
    let sequence = match options.sequence {
        Some(sequence) => sequence,
        None => next_sequence(&options.media, repository.as_str(), created),
    };

    progress.notice(&format!("scanning {}", options.source));
    let index = scan::index_matcher(&options.index_patterns)?;
    let entries = scan::scan(&options.source, &index)?;

    let snapshot = SnapshotDir::on_media(&options.media, repository.as_str(), sequence);
    if snapshot.is_complete() {
        return Err(Error::AlreadyExists(snapshot.root().to_owned()));
    }
    if snapshot.root().exists() {
        progress.notice(&format!("removing unfinished export {}", snapshot.root()));
        fsutil::remove_tree(snapshot.root())?;
    }
    // A failed export removes what it wrote: half a snapshot helps nobody,
    // and without a signature it could never be imported anyway.
    let written = write_snapshot(&snapshot, &entries, options, key, progress, created, |layout, hashed| Manifest {
        repository: repository.clone(),
        sequence,
        created,
        expires,
        layout,
        entries: hashed,
    });
    let (manifest, manifest_bytes) = match written {
        Ok(written) => written,
        Err(error) => {
            let _ = fsutil::remove_tree(snapshot.root());
            return Err(error);
        }
    };
    if options.read_back {
        progress.notice("reading the media back");
        let verified = snapshot.open(&key.own_trust());
        if let Err(error) = verified.and_then(|verified| snapshot.check_payload(&verified, progress, true)) {
            // The drive does not hold what was written: make sure nobody
            // mistakes it for a complete snapshot.
            let _ = fsutil::remove_file(&snapshot.signature_path());
            return Err(error);
        }
    }
    let pruned = match options.prune {
        Some(keep) => crate::ops::list::prune(&options.media, repository.as_str(), keep, snapshot.root())?,
        None => Vec::new(),
    };
    let files = manifest.files().count();
    Ok(ExportReport {
        snapshot_dir: snapshot.root().to_owned(),
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
        pruned,
    })
}

/// Writes payload, manifest and signature, in that order, each flushed
/// before the next begins (formats/media-layout-v1.md).
fn write_snapshot(
    snapshot: &SnapshotDir,
    entries: &[SourceEntry],
    options: &ExportOptions,
    key: &SecretKey,
    progress: &dyn Progress,
    created: Timestamp,
    manifest_for: impl FnOnce(Layout, Vec<Entry>) -> Manifest,
) -> Result<(Manifest, Vec<u8>)> {
    let manifest = match options.layout {
        MediaLayout::Tree => {
            let payload = snapshot.payload();
            fsutil::create_dir_all(&payload)?;
            for entry in entries.iter().filter(|e| e.file.is_none()) {
                fsutil::create_dir_all(&entry.path.under(&payload))?;
            }
            manifest_for(Layout::Tree, copy_payload(&options.source, &payload, entries, progress)?)
        }
        MediaLayout::Tar { volume_size } => {
            let dir = snapshot.volumes_dir();
            fsutil::create_dir_all(&dir)?;
            // Tar entries carry the snapshot's creation time, so the
            // volumes depend on nothing but the snapshot.
            let mtime = u64::try_from(created.as_second()).unwrap_or(0);
            let (volumes, hashed) = write_volumes(&options.source, &dir, volume_size, mtime, entries, progress)?;
            manifest_for(Layout::Tar(volumes), hashed)
        }
    };
    let manifest_bytes = manifest.encode();
    fsutil::write_atomic(&snapshot.manifest_path(), &manifest_bytes)?;
    fsutil::write_atomic(&snapshot.root().join(media::CHECKSUMS_FILE), &media::checksums(&manifest, &manifest_bytes))?;
    if !manifest.layout.volumes().is_empty() {
        let contents = snapshot.root().join(media::CONTENT_CHECKSUMS_FILE);
        fsutil::write_atomic(&contents, &media::content_checksums(&manifest))?;
    }
    // One flush makes payload and manifest durable before the signature
    // exists; the signature itself is flushed with its folder by write_atomic.
    fsutil::sync_filesystem(snapshot.root())?;
    fsutil::write_atomic(&snapshot.signature_path(), &key.sign_manifest(&manifest_bytes))?;
    Ok((manifest, manifest_bytes))
}

/// Writes the payload as tar volumes, one file after another in manifest
/// order (the order readers expect), hashing each file on its way in.
fn write_volumes(
    source: &Utf8Path,
    dir: &Utf8Path,
    volume_size: u64,
    mtime: u64,
    entries: &[SourceEntry],
    progress: &dyn Progress,
) -> Result<(Vec<crate::manifest::Volume>, Vec<Entry>)> {
    progress.phase("exporting", entries.iter().filter_map(|e| e.file.map(|f| f.size)).sum());
    let mut writer = VolumeWriter::new(dir, volume_size, mtime)?;
    let mut hashed = Vec::with_capacity(entries.len());
    for entry in entries {
        let kind = match entry.file {
            None => {
                writer.add_dir(&entry.path)?;
                EntryKind::Dir
            }
            Some(scanned) => {
                let from = entry.path.under(source);
                let mut reader = File::open(&from).ctx("open", &from)?;
                let seen =
                    writer.add_file(&entry.path, scanned.size, scanned.executable, &mut reader, &from, &|n| {
                        progress.advance(n)
                    })?;
                EntryKind::File(FileEntry {
                    size: seen.size,
                    digest: seen.digest,
                    executable: scanned.executable,
                    index: scanned.index,
                })
            }
        };
        hashed.push(Entry { path: entry.path.clone(), kind });
    }
    Ok((writer.finish()?, hashed))
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
    source: &Utf8Path,
    payload: &Utf8Path,
    entries: &[SourceEntry],
    progress: &dyn Progress,
) -> Result<Vec<Entry>> {
    let mut jobs: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].file.is_some()).collect();
    jobs.sort_by_key(|&i| std::cmp::Reverse(entries[i].file.map_or(0, |f| f.size)));
    progress.phase("exporting", jobs.iter().map(|&i| entries[i].file.map_or(0, |f| f.size)).sum());
    let results: Mutex<Vec<Option<FileEntry>>> = Mutex::new(vec![None; entries.len()]);
    let errors = parallel::for_each(&jobs, true, |&i| -> Result<()> {
        let entry = &entries[i];
        let Some(scanned) = entry.file else { return Ok(()) };
        let from = entry.path.under(source);
        let to = entry.path.under(payload);
        let mut reader = File::open(&from).ctx("open", &from)?;
        let writer = OpenOptions::new().write(true).create_new(true).open(&to).ctx("create", &to)?;
        let mut writer = BufWriter::with_capacity(256 * 1024, writer);
        // Whatever the file holds when read is what gets recorded: the
        // digest and the copy come from the same bytes.
        let mut tracked = crate::media::TrackedWriter { inner: &mut writer, failed: false };
        let hashed =
            copy_hashing(&mut reader, Some(&mut tracked), u64::MAX - 1, &|n| progress.advance(n)).map_err(|e| {
                // Tell a full drive from an unreadable source.
                if tracked.failed { Error::io("write", to.clone(), e) } else { Error::io("read", from.clone(), e) }
            })?;
        let writer = writer.into_inner().map_err(|e| Error::io("write", to.clone(), e.into_error()))?;
        drop(writer);
        let file = FileEntry {
            size: hashed.size,
            digest: hashed.digest,
            executable: scanned.executable,
            index: scanned.index,
        };
        results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(file);
        Ok(())
    });
    if let Some(error) = errors.into_iter().next() {
        return Err(error);
    }
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(entries
        .iter()
        .zip(results)
        .map(|(entry, file)| Entry { path: entry.path.clone(), kind: file.map_or(EntryKind::Dir, EntryKind::File) })
        .collect())
}
