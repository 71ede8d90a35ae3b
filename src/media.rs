//! The removable-drive side: `formats/media-layout-v1.md`.
//!
//! A drive holds snapshot folders `MEDIA/ferry/REPOSITORY/SEQUENCE/`, each
//! with `volumes/` (tar volumes, [`crate::volume`]) or `payload/` (a plain
//! tree), `manifest`, checksum files and `manifest.sig`. The signature is
//! written last, so a folder without one is an unfinished export and is
//! never installed. A snapshot may span several drives ([`locate_all`]).

use crate::beneath::{self, Kind};
use crate::digest::copy_hashing;
use crate::error::{Error, Result};
use crate::manifest::{EntryKind, FileEntry, MAX_MANIFEST_BYTES};
use crate::parallel;
use crate::payload::{FileSource, OpenedFile, Payload, mismatch};
use crate::rel_path::RelPath;
use crate::report::Progress;
use crate::signing::{self, MAX_SIGNATURE_BYTES, TrustStore, VerifiedSnapshot};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::HashMap;
use std::io::Read;

pub(crate) mod flush;
mod folders;
pub mod manifest_file;
use folders::FolderCache;
pub use manifest_file::MANIFEST_ZST_FILE;

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
/// The note export writes first into a snapshot folder, so that an export
/// killed before its manifest leaves a folder ferry can prove it wrote
/// (formats/media-layout-v1.md §4 E0).
pub const UNFINISHED_FILE: &str = "unfinished";
/// The exact content of [`UNFINISHED_FILE`].
pub const UNFINISHED_NOTE: &[u8] = b"ferry unfinished export v1\n";

/// Where a snapshot's tree, manifest and signature are: a snapshot folder
/// on a drive, or an update source ferry installed (the tree at its root,
/// manifest and signature in `.ferry/`), which `ferry publish` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDir {
    root: Utf8PathBuf,
    /// The folder named on the command line that `root` lies in: no link
    /// below it is followed (formats/threat-model.md §7).
    drive: Utf8PathBuf,
    installed: bool,
    /// The same snapshot's folders on the other drives it spans.
    parts: Vec<Utf8PathBuf>,
    /// The drive each of `parts` lies on.
    part_drives: Vec<Utf8PathBuf>,
}

impl SnapshotDir {
    /// The snapshot folder for `repository` and `sequence` on the drive at `media`.
    pub fn on_media(media: &Utf8Path, repository: &str, sequence: u64) -> Self {
        SnapshotDir {
            root: media.join(MEDIA_ROOT).join(repository).join(sequence.to_string()),
            drive: media.to_owned(),
            installed: false,
            parts: Vec::new(),
            part_drives: Vec::new(),
        }
    }

    /// A snapshot folder `root` found on (or given as) the drive `drive`.
    fn found(drive: &Utf8Path, root: Utf8PathBuf) -> Self {
        SnapshotDir { root, drive: drive.to_owned(), installed: false, parts: Vec::new(), part_drives: Vec::new() }
    }

    /// The snapshot served by an update source ferry installed at `root`.
    pub fn installed_source(root: &Utf8Path) -> Self {
        SnapshotDir {
            root: root.to_owned(),
            drive: root.to_owned(),
            installed: true,
            parts: Vec::new(),
            part_drives: Vec::new(),
        }
    }

    /// Whether `root` is an update source ferry installed (its state file
    /// is a regular file, reached without following links).
    pub fn is_installed_source(root: &Utf8Path) -> bool {
        let state = root.join(crate::backend::STATE_DIR).join(crate::install::state::STATE_FILE);
        matches!(beneath::kind(root, &state), Ok(Some(Kind::File)))
    }

    /// The folder named on the command line that the snapshot folder lies in.
    pub fn drive(&self) -> &Utf8Path {
        &self.drive
    }

    /// The snapshot folder, opened from its drive without following links.
    pub fn open_dir(&self) -> Result<beneath::Dir> {
        beneath::Dir::root(&self.drive)?.open(beneath::relative(&self.drive, &self.root)?)
    }

    /// The snapshot's folder on each drive (this one, then its parts), each
    /// opened from its drive without following links.
    pub fn open_dirs(&self) -> Result<Vec<beneath::Dir>> {
        self.folders().map(|(drive, root)| beneath::Dir::root(drive)?.open(beneath::relative(drive, root)?)).collect()
    }

    /// Removes the snapshot folder if it exists, without following a link
    /// anywhere below the drive (a link there is an error, nothing removed).
    pub fn remove(&self) -> Result<()> {
        let relative = beneath::relative(&self.drive, &self.root)?;
        let (Some(parent), Some(name)) = (relative.parent(), relative.file_name()) else {
            return Err(Error::InvalidArgument(format!("`{}` is the drive itself, not a snapshot folder", self.root)));
        };
        match beneath::Dir::root(&self.drive)?.open_if_present(parent)? {
            Some(parent) => parent.remove_tree(name),
            None => Ok(()),
        }
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
    /// `manifest`, or `manifest.zst` when that is what a snapshot folder
    /// holds (formats/manifest-v3.md §7).
    pub fn manifest_path(&self) -> Utf8PathBuf {
        match self.installed {
            true => self.metadata_dir().join(MANIFEST_FILE),
            false => manifest_file::path_below(&self.drive, &self.root),
        }
    }
    /// `manifest.sig`.
    pub fn signature_path(&self) -> Utf8PathBuf {
        self.metadata_dir().join(SIGNATURE_FILE)
    }

    /// Whether the export that wrote this folder finished: it has a
    /// signature that is a regular file, reached without following links
    /// (one that is a link or a FIFO makes [`SnapshotDir::open`] refuse the
    /// folder, naming it).
    pub fn is_complete(&self) -> bool {
        matches!(beneath::kind(&self.drive, &self.signature_path()), Ok(Some(Kind::File)))
    }

    /// Reads the manifest and signature and verifies them against `trust`.
    pub fn open(&self, trust: &TrustStore) -> Result<VerifiedSnapshot> {
        let signature_path = self.signature_path();
        let manifest = self.read_manifest()?;
        let signature = beneath::read_capped(&self.drive, &signature_path, MAX_SIGNATURE_BYTES)?;
        match (manifest, signature) {
            (Some((manifest_path, manifest)), Some(signature)) => {
                signing::verify(manifest, &manifest_path, signature, &signature_path, trust)
            }
            // The signature is written last: without it the export did not finish.
            (_, None) => Err(Error::MissingSignature(self.root.clone())),
            (None, Some(_)) => Err(Error::MissingManifest(self.root.clone())),
        }
    }

    /// The manifest's file and its uncompressed bytes, unverified; `None`
    /// without a manifest file (formats/manifest-v3.md §7 MZ3).
    pub fn read_manifest(&self) -> Result<Option<(Utf8PathBuf, Vec<u8>)>> {
        if self.installed {
            let path = self.manifest_path();
            return Ok(beneath::read_capped(&self.drive, &path, MAX_MANIFEST_BYTES)?.map(|bytes| (path, bytes)));
        }
        manifest_file::read_below(&self.drive, &self.root)
    }

    /// `volumes/`, where a `layout: tar` snapshot keeps its tar volumes.
    pub fn volumes_dir(&self) -> Utf8PathBuf {
        self.root.join(crate::volume::VOLUMES_DIR)
    }

    /// The folders of the same snapshot on the other drives it spans.
    pub fn parts(&self) -> &[Utf8PathBuf] {
        &self.parts
    }

    /// Whether the drives given hold every part of the snapshot (by the
    /// `part` notes; always for a snapshot on one drive).
    pub fn has_every_part(&self) -> bool {
        self.missing_parts().is_none()
    }

    /// Which drives of a spanned snapshot were not given, from the `part`
    /// notes of those that were (hints only: volumes are found by name).
    fn missing_parts(&self) -> Option<String> {
        let mut held = Vec::new();
        let mut total = 0;
        for (drive, root) in self.folders() {
            if let Some((part, of)) = part_of(drive, root) {
                held.push(part);
                total = total.max(of);
            }
        }
        let missing: Vec<String> = (1..=total).filter(|p| !held.contains(p)).map(|p| p.to_string()).collect();
        (!missing.is_empty()).then(|| {
            let parts = |numbers: &[String]| {
                format!("{} {}", if numbers.len() == 1 { "part" } else { "parts" }, numbers.join(", "))
            };
            let held: Vec<String> = held.iter().map(|p| p.to_string()).collect();
            let drives = if missing.len() == 1 { "drive" } else { "drives" };
            format!(
                "this snapshot spans {total} drives; the drives given hold {}: give the {drives} with {} too",
                parts(&held),
                parts(&missing)
            )
        })
    }

    /// Sets the folders of the same snapshot on other drives.
    pub fn set_parts(&mut self, parts: Vec<SnapshotDir>) {
        (self.parts, self.part_drives) = parts.into_iter().map(|part| (part.root, part.drive)).unzip();
    }

    /// (drive, snapshot folder) of this drive, then of the other drives in
    /// the order they were given.
    fn folders(&self) -> impl Iterator<Item = (&Utf8Path, &Utf8Path)> {
        std::iter::once((self.drive.as_path(), self.root.as_path()))
            .chain(self.part_drives.iter().map(Utf8PathBuf::as_path).zip(self.parts.iter().map(Utf8PathBuf::as_path)))
    }

    /// Every `volumes/` folder of the snapshot that exists, opened without
    /// following links: this drive's, then the other drives'.
    fn volume_dirs(&self) -> Result<Vec<beneath::Dir>> {
        let mut dirs = Vec::new();
        for (drive, root) in self.folders() {
            let volumes = root.join(crate::volume::VOLUMES_DIR);
            dirs.extend(beneath::Dir::root(drive)?.open_if_present(beneath::relative(drive, &volumes)?)?);
        }
        Ok(dirs)
    }

    /// Prepares the payload of a verified snapshot for reading, checking
    /// before anything is read that the media holds nothing the manifest
    /// does not list: for a tree, no extra file under `payload/`; for tar
    /// volumes, every header matches the manifest (`volume::index`).
    pub fn open_payload(&self, snapshot: &VerifiedSnapshot) -> Result<Payload> {
        Ok(match self.tar_index(snapshot)? {
            Some(index) => Payload::new(index),
            None => {
                let payload = self.payload_dir()?;
                let extra = self.unlisted_entries(&payload, snapshot)?;
                if !extra.is_empty() {
                    return Err(Error::Damaged { media: self.root.clone(), problems: extra });
                }
                Payload::new(TreeFiles { root: self.root.clone(), dir: payload, folders: FolderCache::default() })
            }
        })
    }

    /// What the medium holds: the manifest, or for a delta only what it
    /// carries (formats/delta-v1.md §5). An installed source holds it all.
    fn medium<'a>(&self, snapshot: &'a VerifiedSnapshot) -> std::borrow::Cow<'a, crate::manifest::Manifest> {
        if self.installed {
            return std::borrow::Cow::Borrowed(snapshot.manifest());
        }
        crate::delta::medium::view(snapshot.document())
    }

    /// The index of the snapshot's tar volumes, `None` for a tree. An
    /// installed source is always a plain tree, whatever the media was.
    fn tar_index(&self, snapshot: &VerifiedSnapshot) -> Result<Option<crate::volume::TarIndex>> {
        if self.installed || snapshot.manifest().layout.volumes().is_empty() {
            return Ok(None);
        }
        let dirs = self.volume_dirs()?;
        if dirs.is_empty() {
            let mut problems = vec![format!("missing: {}/", crate::volume::VOLUMES_DIR)];
            problems.extend(self.missing_parts());
            return Err(Error::Damaged { media: self.root.clone(), problems });
        }
        match crate::volume::index_in(&dirs, &self.medium(snapshot)) {
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
        let manifest = &*self.medium(snapshot);
        // Indexing the volumes takes seconds at a million files: it runs
        // under the caller's phase, not under an empty "verifying" bar.
        let index = self.tar_index(snapshot)?;
        progress.phase("verifying", manifest.payload_bytes());
        let mut problems = match index {
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

    /// `payload/` (the target folder itself for an installed source),
    /// opened from the drive without following links; `None` if missing.
    fn payload_if_present(&self) -> Result<Option<beneath::Dir>> {
        let payload = self.payload();
        beneath::Dir::root(&self.drive)?.open_if_present(beneath::relative(&self.drive, &payload)?)
    }

    /// [`SnapshotDir::payload_if_present`], a missing one being damage.
    fn payload_dir(&self) -> Result<beneath::Dir> {
        self.payload_if_present()?.ok_or_else(|| Error::Damaged {
            media: self.root.clone(),
            problems: vec![format!("missing: {PAYLOAD_DIR}/")],
        })
    }

    fn check_tree(
        &self,
        snapshot: &VerifiedSnapshot,
        progress: &dyn Progress,
        from_device: bool,
    ) -> Result<Vec<String>> {
        let manifest = &*self.medium(snapshot);
        let Some(payload) = self.payload_if_present()? else {
            // No payload folder: every entry is missing.
            return Ok(manifest
                .entries
                .iter()
                .map(|entry| match entry.kind {
                    EntryKind::Dir => format!("missing: {}/", entry.path),
                    EntryKind::File(_) => format!("missing: {}", entry.path),
                })
                .collect());
        };
        let walk = self.walk_payload(&payload, manifest)?;
        let mut problems = walk.extra;
        for entry in &manifest.entries {
            if let EntryKind::Dir = entry.kind {
                match walk.folders.get(entry.path.as_str()) {
                    Some(Kind::Dir) => {}
                    None => problems.push(format!("missing: {}/", entry.path)),
                    Some(other) => problems.push(format!("not a folder: {}/ ({})", entry.path, describe(other))),
                }
            }
        }

        let files = in_reading_order(manifest);
        let folders = FolderCache::default();
        let file_problems = parallel::for_each(&files, false, |(path, expected)| -> Result<(), String> {
            let mut file = match folders.open_file(&payload, path.as_path()) {
                Ok(file) => file,
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    return Err(format!("missing: {path}"));
                }
                Err(Error::SymbolicLink { target, .. }) => {
                    return Err(format!("not a regular file: {path} (a symbolic link to `{target}`)"));
                }
                Err(Error::WrongKind { found, .. }) => return Err(format!("not a regular file: {path} ({found})")),
                Err(e) => return Err(format!("unreadable: {path} ({e})")),
            };
            // The size is known before a byte is read: a file of the wrong
            // size is damaged without reading it.
            let size = file.metadata().map_err(|e| format!("unreadable: {path} ({e})"))?.len();
            if size != expected.size {
                let seen = crate::digest::Hashed { size, digest: expected.digest };
                return Err(format!("damaged: {path} ({})", mismatch(&seen, expected).unwrap_or_default()));
            }
            if from_device {
                crate::fsutil::drop_cache(&file);
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
    fn unlisted_entries(&self, payload: &beneath::Dir, snapshot: &VerifiedSnapshot) -> Result<Vec<String>> {
        Ok(self.walk_payload(payload, &self.medium(snapshot))?.extra)
    }

    /// Walks `payload/` once: what it holds that `medium` does not list,
    /// and what each listed folder is. Each folder is opened from its
    /// parent, already open (never from the root component by component).
    fn walk_payload<'m>(&self, payload: &beneath::Dir, medium: &'m crate::manifest::Manifest) -> Result<Walk<'m>> {
        let listed: HashMap<&str, bool> =
            medium.entries.iter().map(|e| (e.path.as_str(), matches!(e.kind, EntryKind::Dir))).collect();
        let mut walk = Walk { extra: Vec::new(), folders: HashMap::new() };
        let state_dir = self.installed.then_some(crate::backend::STATE_DIR);
        // Depth first, sorted by name, descending only into real folders.
        let mut pending = vec![(String::new(), None::<beneath::Dir>, payload.entries()?.into_iter())];
        while let Some((prefix, folder, mut entries)) = pending.pop() {
            let Some((name, kind)) = entries.next() else { continue };
            let relative = format!("{prefix}{name}");
            let child = match (&folder, kind == Kind::Dir && state_dir != Some(relative.as_str())) {
                (_, false) => None,
                (Some(parent), true) => Some(parent.open(Utf8Path::new(&name))?),
                (None, true) => Some(payload.open(Utf8Path::new(&relative))?),
            };
            pending.push((prefix, folder, entries));
            if state_dir == Some(relative.as_str()) {
                continue;
            }
            match listed.get_key_value(relative.as_str()) {
                None => walk.extra.push(format!("extra: {} (not in the manifest)", crate::rel_path::escape(&relative))),
                Some((path, true)) => {
                    walk.folders.insert(path, kind);
                }
                Some((_, false)) => {}
            }
            if let Some(child) = child {
                let entries = child.entries()?.into_iter();
                // Folders nested thousands deep on a hostile drive must not
                // use up the file handles: deeper ones are opened from the root.
                let keep = (pending.len() < beneath::MAX_OPEN_FOLDERS).then_some(child);
                pending.push((format!("{relative}/"), keep, entries));
            }
        }
        Ok(walk)
    }
}

/// What [`SnapshotDir::walk_payload`] found.
struct Walk<'m> {
    /// `extra: PATH` lines, in walk order.
    extra: Vec<String>,
    /// What each listed folder that the walk reached is.
    folders: HashMap<&'m str, Kind>,
}

/// The files of `manifest` in the order verify reads them: files of at
/// least 1 MiB first, largest first, so that the workers finish together;
/// then the rest in manifest order, so that files of one folder follow
/// each other and share its open handle ([`FolderCache`]).
fn in_reading_order(manifest: &crate::manifest::Manifest) -> Vec<(&RelPath, &FileEntry)> {
    const LARGE: u64 = 1024 * 1024;
    let mut files: Vec<_> = manifest.files().collect();
    // A stable sort: small files keep manifest order.
    files.sort_by_key(|(_, file)| std::cmp::Reverse(if file.size >= LARGE { file.size } else { 0 }));
    files
}

/// How an entry of the wrong kind reads in a problem line.
fn describe(kind: &Kind) -> String {
    match kind {
        Kind::File => "a regular file".into(),
        Kind::Dir => "a folder".into(),
        Kind::Link(target) => format!("a symbolic link to `{target}`"),
        Kind::Other(what) => (*what).into(),
    }
}

/// The files of a tree on a drive (`payload/`) or of an installed update
/// source, opened without following links and refused before reading when
/// their size is not the signed one.
#[derive(Debug)]
struct TreeFiles {
    /// The snapshot folder, for messages.
    root: Utf8PathBuf,
    /// The folder the files are in.
    dir: beneath::Dir,
    /// Its folders opened for recent files.
    folders: FolderCache,
}

impl FileSource for TreeFiles {
    fn open(&self, path: &RelPath, expected: &FileEntry) -> Result<OpenedFile<'_>> {
        let origin = path.under(self.dir.path());
        let file = self.folders.open_file(&self.dir, path.as_path()).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::Damaged { media: self.root.clone(), problems: vec![format!("missing: {path}")] }
            }
            other => other,
        })?;
        let size = file.metadata().map_err(|e| Error::io("inspect", &origin, e))?.len();
        if size != expected.size {
            let seen = crate::digest::Hashed { size, digest: expected.digest };
            let problem = mismatch(&seen, expected).unwrap_or_default();
            return Err(Error::Mismatch { path: origin, problem });
        }
        Ok(OpenedFile { reader: Box::new(file), shown_as: origin.clone(), origin })
    }
}

/// Makes the entries of `folder` (open as `dir`), of its subfolder `inner`
/// and of every folder on the way from its drive durable: an `fsync` of
/// each, from the innermost out. The files in them are flushed by whoever
/// wrote them.
pub fn sync_folders(folder: &SnapshotDir, dir: &beneath::Dir, inner: &str) -> Result<()> {
    dir.open(Utf8Path::new(inner))?.sync()?;
    dir.sync()?;
    let drive = beneath::Dir::root(folder.drive())?;
    for on_the_way in beneath::relative(folder.drive(), folder.root())?.ancestors().skip(1) {
        drive.open(on_the_way)?.sync()?;
    }
    Ok(())
}

/// The `SHA256SUMS` of a snapshot folder: one `DIGEST  PATH` line per file
/// ferry wrote into it before the signature (payload files or volumes, then
/// the manifest file as stored: `manifest` or `manifest.zst`), so an auditor can check a drive with coreutils alone.
/// Paths never need `sha256sum`'s escaping: the manifest forbids `\` and
/// control characters.
/// On a drive holding part of a spanned snapshot, only the volumes for
/// which `here` (volume index from 0) is true are listed.
pub fn checksums(
    manifest: &crate::manifest::Manifest,
    stored_manifest: (&str, &[u8]),
    here: &dyn Fn(usize) -> bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a vector cannot fail.
    let _ = write_checksums(&mut out, manifest, stored_manifest, here);
    out
}

/// Writes [`checksums`] to `out` line by line (a tree of a million files
/// lists a million lines: ~100 MB never held in memory).
/// `(manifest_name, stored)`: the manifest file as stored on the medium.
pub fn write_checksums(
    out: &mut dyn std::io::Write,
    manifest: &crate::manifest::Manifest,
    (manifest_name, stored): (&str, &[u8]),
    here: &dyn Fn(usize) -> bool,
) -> std::io::Result<()> {
    match manifest.layout.volumes() {
        [] => {
            for (path, file) in manifest.files() {
                writeln!(out, "{}  {PAYLOAD_DIR}/{path}", file.digest)?;
            }
        }
        volumes => {
            for (i, volume) in volumes.iter().enumerate().filter(|(i, _)| here(*i)) {
                let name = crate::volume::volume_name(i + 1);
                writeln!(out, "{}  {}/{name}", volume.digest, crate::volume::VOLUMES_DIR)?;
            }
        }
    }
    writeln!(out, "{}  {manifest_name}", crate::digest::Digest::of(stored))
}

/// The `part` file of drive `part` of `parts`, holding `volumes` (from 1):
/// for people and `ferry list`; readers find volumes by name, not by it
/// (formats/tar-volumes-v1.md §6).
pub fn part_note(part: usize, parts: usize, volumes: &[usize]) -> Vec<u8> {
    let list: Vec<String> = volumes.iter().map(|v| crate::volume::volume_name(*v)).collect();
    format!("ferry part v1\npart: {part} of {parts}\nvolumes: {}\n", list.join(" ")).into_bytes()
}

/// Reads `part: K of N` from the `part` note of a snapshot folder on
/// `drive`, if any (a note that is a link or not a regular file is none).
pub fn part_of(drive: &Utf8Path, snapshot_folder: &Utf8Path) -> Option<(usize, usize)> {
    let note = beneath::read_capped(drive, &snapshot_folder.join(PART_FILE), 4096).ok().flatten()?;
    let text = String::from_utf8_lossy(&note);
    let (part, of) = text.lines().find_map(|l| l.strip_prefix("part: "))?.split_once(" of ")?;
    Some((part.parse().ok()?, of.parse().ok()?))
}

/// Writes `contents.SHA256SUMS` of a tar snapshot to `out`: one line per repository file,
/// relative to the folder the volumes were extracted into (split files
/// joined first; `docs/guide/audit.md`).
pub fn content_checksums(out: &mut dyn std::io::Write, manifest: &crate::manifest::Manifest) -> std::io::Result<()> {
    for (path, file) in manifest.files() {
        writeln!(out, "{}  {path}", file.digest)?;
    }
    Ok(())
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
                true => dir.read_manifest().ok().flatten().map(|(_, bytes)| crate::digest::Digest::of(&bytes)),
                false => None,
            };
            match found.iter_mut().find(|(seen, _)| id.is_some() && *seen == id) {
                Some((_, first)) => {
                    first.parts.push(dir.root);
                    first.part_drives.push(dir.drive);
                }
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
    let drive = match beneath::Dir::root(media) {
        Ok(drive) => drive,
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {
            return Err(Error::InvalidArgument(format!(
                "MEDIA `{media}` is a file, not a drive or snapshot folder\nhint: give the drive's mount point"
            )));
        }
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::InvalidArgument(format!(
                "MEDIA `{media}` does not exist\nhint: is the drive plugged in and mounted? `lsblk` and `findmnt` show where"
            )));
        }
        Err(Error::Io { source, .. }) => return Err(Error::io("open media folder", media, source)),
        Err(other) => return Err(other),
    };
    let direct = SnapshotDir::found(media, media.to_owned());
    let has = |name: &str| drive.kind(Utf8Path::new(name)).map(|kind| kind.is_some());
    if has(MANIFEST_FILE)? || has(MANIFEST_ZST_FILE)? || has(SIGNATURE_FILE)? {
        return Ok(vec![direct]);
    }
    let mut found = Vec::new();
    // `ferry` itself must be a real folder: a link there (`ferry -> /srv`)
    // is refused, never followed (formats/media-layout-v1.md §5 L2).
    if let Some(root) = drive.open_if_present(Utf8Path::new(MEDIA_ROOT))? {
        for repository in sorted_dirs(&root)? {
            let repository_dir = root.open(Utf8Path::new(&repository))?;
            for sequence in sorted_dirs(&repository_dir)? {
                found.push(SnapshotDir::found(media, media.join(MEDIA_ROOT).join(&repository).join(sequence)));
            }
        }
    }
    if found.is_empty() {
        if SnapshotDir::is_installed_source(media) {
            return Err(Error::InvalidArgument(format!(
                "`{media}` is an update source ferry installed, not a drive\nhint: MEDIA comes first, then TARGET: ferry import /media/usb {media}"
            )));
        }
        return Err(Error::NoSnapshot(media.to_owned()));
    }
    Ok(found)
}

/// The names of the real folders (not links) directly in `dir`, names that
/// are not a decimal number first, then numbers in numeric order.
fn sorted_dirs(dir: &beneath::Dir) -> Result<Vec<String>> {
    let mut dirs = Vec::new();
    for (name, kind) in dir.entries()? {
        if name.contains(char::REPLACEMENT_CHARACTER) {
            return Err(Error::io("list", dir.path().join(&name), std::io::ErrorKind::InvalidData.into()));
        }
        if kind == Kind::Dir {
            dirs.push(name);
        }
    }
    // Sequence folders sort numerically so the newest is last.
    dirs.sort_by_key(|name| (name.parse::<u64>().ok(), name.clone()));
    Ok(dirs)
}

/// What a folder `ferry/REPOSITORY/NAME` on a drive is to `--prune` and to
/// the clean-up of unfinished exports (formats/media-layout-v1.md §4 E7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// A snapshot folder ferry wrote whose export finished (it has a signature).
    Complete,
    /// A snapshot folder ferry wrote whose export did not finish.
    Unfinished,
    /// Nothing proves ferry wrote it: it is left alone, for this reason.
    NotProven(String),
}

/// Decides whether the entry `name` (of kind `kind`) in `repository_dir`,
/// the drive's `ferry/REPOSITORY/` folder, is a snapshot folder of
/// `repository` that ferry wrote: a real folder named by a sequence number
/// that is empty, or holds a regular `manifest` whose first lines name this
/// repository and sequence, or holds ferry's `unfinished` note. Reads at
/// most a few kilobytes and follows no link.
pub fn ownership(repository_dir: &beneath::Dir, repository: &str, name: &str, kind: &Kind) -> Result<Ownership> {
    if *kind != Kind::Dir {
        return Ok(Ownership::NotProven(format!("{} where ferry writes folders", describe(kind))));
    }
    if name.parse::<u64>().map(|n| n.to_string()).as_deref() != Ok(name) {
        return Ok(Ownership::NotProven("its name is not a sequence number".into()));
    }
    let folder = repository_dir.open(Utf8Path::new(name))?;
    let entries = folder.entries()?;
    if entries.is_empty() {
        return Ok(Ownership::Unfinished);
    }
    let has = |wanted: &str| entries.iter().any(|(name, kind)| name == wanted && *kind == Kind::File);
    let signed = entries.iter().any(|(name, _)| name == SIGNATURE_FILE);
    if let Some(head) = manifest_file::head(&folder, 4096)? {
        let text = String::from_utf8_lossy(&head);
        let mut lines = text.lines();
        let magic = lines.next().is_some_and(crate::manifest_v3::is_magic);
        if magic
            && lines.next() == Some(&format!("repository: {repository}"))
            && lines.next() == Some(&format!("sequence: {name}"))
        {
            return Ok(if signed { Ownership::Complete } else { Ownership::Unfinished });
        }
    }
    if has(UNFINISHED_FILE) && read_head(&folder, UNFINISHED_FILE, 64)? == UNFINISHED_NOTE {
        return Ok(Ownership::Unfinished);
    }
    Ok(Ownership::NotProven(format!(
        "it holds neither a manifest of {repository} sequence {name} nor ferry's `{UNFINISHED_FILE}` note"
    )))
}

/// The first `limit` bytes of the regular file `name` in `dir`.
fn read_head(dir: &beneath::Dir, name: &str, limit: u64) -> Result<Vec<u8>> {
    let path = dir.path().join(name);
    let mut head = Vec::new();
    dir.open_file(Utf8Path::new(name))?.take(limit).read_to_end(&mut head).map_err(|e| Error::io("read", path, e))?;
    Ok(head)
}
