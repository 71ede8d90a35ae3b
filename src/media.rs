//! The removable-drive side: `formats/media-layout-v1.md`.
//!
//! A drive holds snapshot folders `MEDIA/ferry/REPOSITORY/SEQUENCE/`, each
//! with `volumes/` (tar volumes, [`crate::volume`]) or `payload/` (a plain
//! tree), `manifest`, checksum files and `manifest.sig`. The signature is
//! written last, so a folder without one is an unfinished export and is
//! never installed. A snapshot may span several drives ([`locate_all`]).

use crate::digest::copy_hashing;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::manifest::{EntryKind, FileEntry, MAX_MANIFEST_BYTES};
use crate::parallel;
use crate::rel_path::RelPath;
use crate::report::Progress;
use crate::signing::{self, MAX_SIGNATURE_BYTES, TrustStore, VerifiedSnapshot};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};

/// File name of the manifest in a snapshot folder.
pub const MANIFEST_FILE: &str = "manifest";
/// File name of the signature file in a snapshot folder.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// Folder holding the repository tree in a snapshot folder.
pub const PAYLOAD_DIR: &str = "payload";
/// Folder on a drive under which snapshot folders live.
pub const MEDIA_ROOT: &str = "ferry";
/// Checksums of the snapshot folder's files, in the format `sha256sum -c` reads.
pub const CHECKSUMS_FILE: &str = "SHA256SUMS";
/// Checksums of the repository's files after extracting tar volumes by hand.
pub const CONTENT_CHECKSUMS_FILE: &str = "contents.SHA256SUMS";
/// On each drive of a snapshot that spans several: which part it is.
pub const PART_FILE: &str = "part";

/// Where a snapshot's tree, manifest and signature are: a snapshot folder
/// on a drive, or an update source ferry installed (the tree at its root,
/// manifest and signature in `.ferry/`), which `ferry publish` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDir {
    root: Utf8PathBuf,
    installed: bool,
    /// The same snapshot's folders on the other drives it spans.
    parts: Vec<Utf8PathBuf>,
}

impl SnapshotDir {
    /// The snapshot folder for `repository` and `sequence` on the drive at `media`.
    pub fn on_media(media: &Utf8Path, repository: &str, sequence: u64) -> Self {
        SnapshotDir {
            root: media.join(MEDIA_ROOT).join(repository).join(sequence.to_string()),
            installed: false,
            parts: Vec::new(),
        }
    }

    /// The snapshot served by an update source ferry installed at `root`.
    pub fn installed_source(root: &Utf8Path) -> Self {
        SnapshotDir { root: root.to_owned(), installed: true, parts: Vec::new() }
    }

    /// Whether `root` is an update source ferry installed.
    pub fn is_installed_source(root: &Utf8Path) -> bool {
        root.join(crate::backend::STATE_DIR).join(crate::install::state::STATE_FILE).is_file()
    }

    /// The folder itself.
    pub fn root(&self) -> &Utf8Path {
        &self.root
    }
    /// `payload/`.
    pub fn payload(&self) -> Utf8PathBuf {
        if self.installed { self.root.clone() } else { self.root.join(PAYLOAD_DIR) }
    }

    fn metadata_dir(&self) -> Utf8PathBuf {
        if self.installed { self.root.join(crate::backend::STATE_DIR) } else { self.root.clone() }
    }
    /// `manifest`.
    pub fn manifest_path(&self) -> Utf8PathBuf {
        self.metadata_dir().join(MANIFEST_FILE)
    }
    /// `manifest.sig`.
    pub fn signature_path(&self) -> Utf8PathBuf {
        self.metadata_dir().join(SIGNATURE_FILE)
    }

    /// Whether the export that wrote this folder finished (has a signature).
    pub fn is_complete(&self) -> bool {
        self.signature_path().is_file()
    }

    /// Reads the manifest and signature and verifies them against `trust`.
    pub fn open(&self, trust: &TrustStore) -> Result<VerifiedSnapshot> {
        let manifest_path = self.manifest_path();
        let signature_path = self.signature_path();
        let Some(manifest) = fsutil::read_optional(&manifest_path, MAX_MANIFEST_BYTES)? else {
            return Err(Error::Damaged {
                media: self.root.clone(),
                problems: vec![format!("missing: {MANIFEST_FILE}")],
            });
        };
        let Some(signature) = fsutil::read_optional(&signature_path, MAX_SIGNATURE_BYTES)? else {
            return Err(Error::MissingSignature(self.root.clone()));
        };
        signing::verify(manifest, &manifest_path, signature, &signature_path, trust)
    }

    /// `volumes/`, where a `layout: tar` snapshot keeps its tar volumes.
    pub fn volumes_dir(&self) -> Utf8PathBuf {
        self.root.join(crate::volume::VOLUMES_DIR)
    }

    /// The folders of the same snapshot on the other drives it spans.
    pub fn parts(&self) -> &[Utf8PathBuf] {
        &self.parts
    }

    /// Which drives of a spanned snapshot were not given, from the `part`
    /// notes of those that were (hints only: volumes are found by name).
    fn missing_parts(&self) -> Option<String> {
        let mut held = Vec::new();
        let mut total = 0;
        for root in std::iter::once(&self.root).chain(&self.parts) {
            if let Some((part, of)) = part_of(root) {
                held.push(part);
                total = total.max(of);
            }
        }
        let missing: Vec<String> = (1..=total).filter(|p| !held.contains(p)).map(|p| p.to_string()).collect();
        (!missing.is_empty()).then(|| {
            format!(
                "this snapshot spans {total} drives; the drives given hold part(s) {}: give the drive(s) with part(s) {} too",
                held.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
                missing.join(", ")
            )
        })
    }

    /// Sets the folders of the same snapshot on other drives.
    pub fn set_parts(&mut self, parts: Vec<Utf8PathBuf>) {
        self.parts = parts;
    }

    /// Every `volumes/` folder of the snapshot: this drive's, then the
    /// other drives' in the order they were given.
    fn volume_dirs(&self) -> Vec<Utf8PathBuf> {
        std::iter::once(&self.root).chain(&self.parts).map(|root| root.join(crate::volume::VOLUMES_DIR)).collect()
    }

    /// Prepares the payload of a verified snapshot for reading, checking
    /// before anything is read that the media holds nothing the manifest
    /// does not list: for a tree, no extra file under `payload/`; for tar
    /// volumes, every header matches the manifest (`volume::index`).
    pub fn open_payload(&self, snapshot: &VerifiedSnapshot) -> Result<Payload> {
        let source = match self.tar_index(snapshot)? {
            Some(index) => PayloadSource::Tar(index),
            None => {
                let extra = self.unlisted_entries(snapshot)?;
                if !extra.is_empty() {
                    return Err(Error::Damaged { media: self.root.clone(), problems: extra });
                }
                PayloadSource::Tree(self.payload())
            }
        };
        Ok(Payload { root: self.root.clone(), source })
    }

    /// The index of the snapshot's tar volumes, `None` for a tree. An
    /// installed source is always a plain tree, whatever the media was.
    fn tar_index(&self, snapshot: &VerifiedSnapshot) -> Result<Option<crate::volume::TarIndex>> {
        if self.installed || snapshot.manifest().layout.volumes().is_empty() {
            return Ok(None);
        }
        match crate::volume::index(&self.volume_dirs(), snapshot.manifest()) {
            Ok(index) => Ok(Some(index)),
            Err(Error::Damaged { media, mut problems }) => {
                problems.extend(self.missing_parts());
                Err(Error::Damaged { media, problems })
            }
            Err(other) => Err(other),
        }
    }

    /// Checks every payload byte against the verified manifest and lists
    /// what is missing, damaged or extra. Writes nothing.
    ///
    /// With `from_device`, each file's cached pages are dropped first so the
    /// bytes come from the drive, not from memory (read-back after export).
    pub fn check_payload(&self, snapshot: &VerifiedSnapshot, progress: &dyn Progress, from_device: bool) -> Result<()> {
        let manifest = snapshot.manifest();
        progress.phase("verifying", manifest.payload_bytes());
        let mut problems = match self.tar_index(snapshot)? {
            Some(index) => crate::volume::check_all(&index, manifest, from_device, &|n| progress.advance(n))?,
            None => self.check_tree(snapshot, progress, from_device)?,
        };
        if problems.is_empty() {
            Ok(())
        } else {
            problems.sort();
            Err(Error::Damaged { media: self.root.clone(), problems })
        }
    }

    fn check_tree(
        &self,
        snapshot: &VerifiedSnapshot,
        progress: &dyn Progress,
        from_device: bool,
    ) -> Result<Vec<String>> {
        let payload = self.payload();
        let manifest = snapshot.manifest();
        let mut problems = self.unlisted_entries(snapshot)?;
        for entry in &manifest.entries {
            if let EntryKind::Dir = entry.kind
                && !entry.path.under(&payload).is_dir()
            {
                problems.push(format!("missing: {}/", entry.path));
            }
        }

        let mut files: Vec<_> = manifest.files().collect();
        files.sort_by_key(|(_, file)| std::cmp::Reverse(file.size));
        let file_problems = parallel::for_each(&files, false, |(path, expected)| -> Result<(), String> {
            let full = path.under(&payload);
            let mut file = match File::open(&full) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(format!("missing: {path}")),
                Err(e) => return Err(format!("unreadable: {path} ({e})")),
            };
            if from_device {
                fsutil::drop_cache(&file);
            }
            let seen = copy_hashing(&mut file, None, expected.size, &|n| progress.advance(n))
                .map_err(|e| format!("unreadable: {path} ({e})"))?;
            if let Some(problem) = mismatch(&seen, expected) {
                return Err(format!("damaged: {path} ({problem})"));
            }
            Ok(())
        });
        problems.extend(file_problems);
        Ok(problems)
    }

    /// Lists what `payload/` holds that the signed manifest does not list,
    /// one `extra: PATH` line each. Import refuses such media like verify
    /// does: a drive carrying unlisted files was not written by ferry alone.
    fn unlisted_entries(&self, snapshot: &VerifiedSnapshot) -> Result<Vec<String>> {
        let payload = self.payload();
        let listed: HashSet<&str> = snapshot.manifest().entries.iter().map(|e| e.path.as_str()).collect();
        let mut problems = Vec::new();
        if payload.is_dir() {
            let walker = walkdir::WalkDir::new(&payload).min_depth(1).sort_by_file_name().into_iter();
            let state_dir = self.installed.then_some(crate::backend::STATE_DIR);
            for item in
                walker.filter_entry(|e| !(e.depth() == 1 && Some(e.file_name()) == state_dir.map(std::ffi::OsStr::new)))
            {
                let item = item.map_err(|e| Error::io("list", payload.clone(), e.into()))?;
                let relative = item.path().strip_prefix(&payload).unwrap_or(item.path());
                if !relative.to_str().is_some_and(|text| listed.contains(text)) {
                    problems.push(format!("extra: {} (not in the manifest)", relative.display()));
                }
            }
        }
        Ok(problems)
    }
}

/// Where an opened snapshot's file bytes are read from.
#[derive(Debug)]
enum PayloadSource {
    /// Plain files under this folder.
    Tree(Utf8PathBuf),
    /// Stretches of tar volumes.
    Tar(crate::volume::TarIndex),
}

/// The payload of a verified snapshot whose layout has been checked, ready
/// for import to read files from, in any order and in parallel.
#[derive(Debug)]
pub struct Payload {
    root: Utf8PathBuf,
    source: PayloadSource,
}

impl Payload {
    /// A key that orders files for reading: position in the volumes, so
    /// reads from a tar snapshot go forward through each volume; a tree has
    /// no useful order and every file gets the same key.
    pub fn read_position(&self, path: &RelPath) -> (usize, u64) {
        match &self.source {
            PayloadSource::Tree(_) => (0, 0),
            PayloadSource::Tar(index) => {
                index.segments(path).and_then(|s| s.first()).map_or((0, 0), |s| (s.volume, s.offset))
            }
        }
    }

    /// Copies the payload file `path` into `writer`, checking it against
    /// `expected` on the way; the error names the media file and what differs.
    pub fn copy_verified(
        &self,
        path: &RelPath,
        expected: &FileEntry,
        writer: &mut dyn Write,
        progress: &dyn Progress,
    ) -> Result<()> {
        let (mut reader, source): (Box<dyn Read + '_>, Utf8PathBuf) = match &self.source {
            PayloadSource::Tree(payload) => {
                let source = path.under(payload);
                let file = File::open(&source).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        Error::Damaged { media: self.root.clone(), problems: vec![format!("missing: {path}")] }
                    }
                    _ => Error::io("open", source.clone(), e),
                })?;
                (Box::new(file), source)
            }
            PayloadSource::Tar(index) => {
                let volume = index.segments(path).and_then(|s| s.first()).map_or(0, |s| s.volume);
                (Box::new(index.open(path)), index.volume_path(volume))
            }
        };
        // A failed write is the target's fault, a failed read the drive's:
        // the message must send the operator to the right one.
        let mut tracked = TrackedWriter { inner: writer, failed: false };
        let seen =
            copy_hashing(&mut reader, Some(&mut tracked), expected.size, &|n| progress.advance(n)).map_err(|e| {
                if tracked.failed {
                    Error::io("write to the target", path.as_path(), e)
                } else {
                    Error::io("read", source.clone(), e)
                }
            })?;
        match mismatch(&seen, expected) {
            Some(problem) => {
                let source = match &self.source {
                    PayloadSource::Tree(_) => source,
                    PayloadSource::Tar(_) => Utf8PathBuf::from(format!("{source}: {path}")),
                };
                Err(Error::Mismatch { path: source, problem })
            }
            None => Ok(()),
        }
    }
}

/// The `SHA256SUMS` of a snapshot folder: one `DIGEST  PATH` line per file
/// ferry wrote into it before the signature (payload files or volumes, then
/// the manifest), so an auditor can check a drive with coreutils alone.
/// Paths never need `sha256sum`'s escaping: the manifest forbids `\` and
/// control characters.
/// On a drive holding part of a spanned snapshot, only the volumes for
/// which `here` (volume index from 0) is true are listed.
pub fn checksums(manifest: &crate::manifest::Manifest, manifest_bytes: &[u8], here: &dyn Fn(usize) -> bool) -> Vec<u8> {
    let mut out = String::new();
    match manifest.layout.volumes() {
        [] => {
            for (path, file) in manifest.files() {
                out.push_str(&format!("{}  {PAYLOAD_DIR}/{path}\n", file.digest));
            }
        }
        volumes => {
            for (i, volume) in volumes.iter().enumerate().filter(|(i, _)| here(*i)) {
                let name = crate::volume::volume_name(i + 1);
                out.push_str(&format!("{}  {}/{name}\n", volume.digest, crate::volume::VOLUMES_DIR));
            }
        }
    }
    out.push_str(&format!("{}  {MANIFEST_FILE}\n", crate::digest::Digest::of(manifest_bytes)));
    out.into_bytes()
}

/// The `part` file of drive `part` of `parts`, holding `volumes` (from 1):
/// for people and `ferry list`; readers find volumes by name, not by it
/// (formats/tar-volumes-v1.md §6).
pub fn part_note(part: usize, parts: usize, volumes: &[usize]) -> Vec<u8> {
    let list: Vec<String> = volumes.iter().map(|v| crate::volume::volume_name(*v)).collect();
    format!("ferry part v1\npart: {part} of {parts}\nvolumes: {}\n", list.join(" ")).into_bytes()
}

/// Reads `part: K of N` from the `part` note of a snapshot folder, if any.
pub fn part_of(snapshot_folder: &Utf8Path) -> Option<(usize, usize)> {
    let note = fsutil::read_optional(&snapshot_folder.join(PART_FILE), 4096).ok().flatten()?;
    let text = String::from_utf8_lossy(&note);
    let (part, of) = text.lines().find_map(|l| l.strip_prefix("part: "))?.split_once(" of ")?;
    Some((part.parse().ok()?, of.parse().ok()?))
}

/// `contents.SHA256SUMS` of a tar snapshot: one line per repository file,
/// relative to the folder the volumes were extracted into (split files
/// joined first; `docs/guide/audit.md`).
pub fn content_checksums(manifest: &crate::manifest::Manifest) -> Vec<u8> {
    let mut out = String::new();
    for (path, file) in manifest.files() {
        out.push_str(&format!("{}  {path}\n", file.digest));
    }
    out.into_bytes()
}

/// How the bytes read differ from the manifest entry, if they do: the one
/// wording verify, read-back and import share.
pub(crate) fn mismatch(seen: &crate::digest::Hashed, expected: &FileEntry) -> Option<String> {
    if seen.size != expected.size {
        let actual = if seen.size > expected.size { "larger".to_owned() } else { format!("{} bytes", seen.size) };
        return Some(format!("size is {actual}, the signed manifest says {} bytes", expected.size));
    }
    (seen.digest != expected.digest)
        .then(|| format!("sha256 is {}, the signed manifest says {}", seen.digest.short(), expected.digest.short()))
}

/// Remembers whether writing failed, to tell target errors from media errors.
pub(crate) struct TrackedWriter<'a> {
    /// Where the bytes go.
    pub(crate) inner: &'a mut dyn Write,
    /// Set when a write or flush failed.
    pub(crate) failed: bool,
}

impl Write for TrackedWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.inner.write(bytes).inspect_err(|_| self.failed = true)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

/// Finds the snapshot folders on several drives, as [`locate`] does on
/// each, and joins the folders of one snapshot spread over several drives
/// (the same manifest bytes, so the same snapshot id) into one
/// [`SnapshotDir`] whose parts are the later drives' folders.
pub fn locate_all(drives: &[Utf8PathBuf]) -> Result<Vec<SnapshotDir>> {
    let mut found: Vec<(Option<crate::digest::Digest>, SnapshotDir)> = Vec::new();
    for drive in drives {
        for dir in locate(drive)? {
            // Hashing the bytes names the snapshot without parsing anything
            // unverified; the signature is checked when the snapshot is opened.
            let id = match dir.is_complete() {
                true => fsutil::read_optional(&dir.manifest_path(), MAX_MANIFEST_BYTES)?
                    .map(|bytes| crate::digest::Digest::of(&bytes)),
                false => None,
            };
            match found.iter_mut().find(|(seen, _)| id.is_some() && *seen == id) {
                Some((_, first)) => first.parts.push(dir.root),
                None => found.push((id, dir)),
            }
        }
    }
    Ok(found.into_iter().map(|(_, dir)| dir).collect())
}

/// Finds the snapshot folders at or below `media`: `media` itself if it is
/// a snapshot folder, else every `media/ferry/*/*` folder, sorted. Folders
/// without a signature are included (callers report them as incomplete).
pub fn locate(media: &Utf8Path) -> Result<Vec<SnapshotDir>> {
    if !media.is_dir() {
        return Err(Error::io("open media folder", media, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    let direct = SnapshotDir { root: media.to_owned(), installed: false, parts: Vec::new() };
    if direct.manifest_path().exists() || direct.signature_path().exists() {
        return Ok(vec![direct]);
    }
    let mut found = Vec::new();
    let root = media.join(MEDIA_ROOT);
    if root.is_dir() {
        for repository in sorted_dirs(&root)? {
            for sequence in sorted_dirs(&repository)? {
                found.push(SnapshotDir { root: sequence, installed: false, parts: Vec::new() });
            }
        }
    }
    if found.is_empty() {
        return Err(Error::NoSnapshot(media.to_owned()));
    }
    Ok(found)
}

fn sorted_dirs(dir: &Utf8Path) -> Result<Vec<Utf8PathBuf>> {
    let mut dirs = Vec::new();
    for entry in dir.read_dir_utf8().ctx("list", dir)? {
        let entry = entry.ctx("list", dir)?;
        if entry.file_type().ctx("inspect", entry.path())?.is_dir() {
            dirs.push(entry.path().to_owned());
        }
    }
    // Sequence folders sort numerically so the newest is last.
    dirs.sort_by_key(|d| (d.file_name().and_then(|n| n.parse::<u64>().ok()), d.clone()));
    Ok(dirs)
}
