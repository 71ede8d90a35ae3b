//! The signed description of one snapshot: `formats/manifest-v1.md`.
//!
//! A manifest is encoded deterministically (same snapshot, same bytes) and
//! decoded strictly: every rule of the spec is checked, in the spec's order,
//! and the first broken one is reported with its line number. Decoding is
//! only ever done on bytes whose signature has already been verified
//! ([`crate::signing::Signed::verify`]) or whose digest the installed state
//! marker names ([`crate::signing::InstalledManifest`]): `decode` is not
//! public. This module does not know about keys.

use crate::clock;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::rel_path::RelPath;
use camino::Utf8Path;
use jiff::Timestamp;
use std::collections::HashSet;

/// First line of a v1 manifest: the payload is a plain tree on the media.
pub const MAGIC: &str = "ferry manifest v1";
/// First line of a v2 manifest: v1 plus the list of tar volumes.
pub const MAGIC_V2: &str = "ferry manifest v2";
/// Most tar volumes one manifest may list (formats/manifest-v2.md).
pub const MAX_VOLUMES: u64 = 100_000;
/// Largest manifest a reader accepts (formats/manifest-v1.md, reader rules).
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// A repository id: 1-64 characters of `[a-z0-9._-]`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepositoryId(String);

impl RepositoryId {
    /// Validates a repository id.
    pub fn new(text: &str) -> Result<Self, String> {
        let valid_chars = text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        let starts_well = text.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if (1..=64).contains(&text.len()) && valid_chars && starts_well {
            Ok(RepositoryId(text.to_owned()))
        } else {
            Err(format!(
                "`{}` is not a repository id (1-64 of a-z 0-9 . _ -, starting with a letter or digit)",
                crate::rel_path::escape(text)
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RepositoryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A regular file in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub digest: Digest,
    /// Whether the executable bit is set.
    pub executable: bool,
    /// Whether this is an index file, renamed into place after data files.
    pub index: bool,
}

impl FileEntry {
    /// The flags field of its manifest line: `-`, `x`, `i` or `xi`.
    pub fn flags(&self) -> &'static str {
        match (self.executable, self.index) {
            (false, false) => "-",
            (true, false) => "x",
            (false, true) => "i",
            (true, true) => "xi",
        }
    }
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File(FileEntry),
}

/// One line of the manifest's entry list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where the entry lives, relative to the repository root.
    pub path: RelPath,
    /// Directory or file.
    pub kind: EntryKind,
}

impl Entry {
    /// The file details, or `None` for a directory.
    pub fn file(&self) -> Option<&FileEntry> {
        match &self.kind {
            EntryKind::File(file) => Some(file),
            EntryKind::Dir => None,
        }
    }
}

/// One tar volume of a `layout: tar` snapshot; volume N (from 1) is stored
/// as `volumes/NNNN.tar` (formats/media-layout-v1.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the whole volume file.
    pub digest: Digest,
}

/// How the payload is stored on the media.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Layout {
    /// One plain file per entry under `payload/` (a v1 manifest).
    #[default]
    Tree,
    /// Deterministic tar volumes under `volumes/` (a v2 manifest).
    Tar(Vec<Volume>),
}

impl Layout {
    /// The layout's name in the manifest.
    pub fn name(&self) -> &'static str {
        match self {
            Layout::Tree => "tree",
            Layout::Tar(_) => "tar",
        }
    }
    /// The tar volumes; empty for a tree.
    pub fn volumes(&self) -> &[Volume] {
        match self {
            Layout::Tree => &[],
            Layout::Tar(volumes) => volumes,
        }
    }
}

/// The content of a manifest (formats/manifest-v1.md §2, manifest-v2.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Which repository this is a snapshot of.
    pub repository: RepositoryId,
    /// Increases with every export of the repository.
    pub sequence: u64,
    /// When the snapshot was taken.
    pub created: Timestamp,
    /// After this time the snapshot is refused (freeze protection); `None` = never.
    pub expires: Option<Timestamp>,
    /// How the payload is stored on the media.
    pub layout: Layout,
    /// Entries sorted by path bytes.
    pub entries: Vec<Entry>,
}

impl Manifest {
    /// Encodes the manifest; the same manifest always gives the same bytes.
    /// Entries must already be sorted and valid (as [`crate::scan`] produces them).
    /// A tree is written as v1, so that readers of v1 still take it.
    pub fn encode(&self) -> Vec<u8> {
        use std::fmt::Write as _;
        // Sized exactly: at a million files the text is ~100 MB, and growing
        // it by doubling would hold twice that (issue 14).
        let mut out = String::with_capacity(256 + self.layout.volumes().len() * 94 + self.entries_text_len());
        out.push_str(if self.layout == Layout::Tree { MAGIC } else { MAGIC_V2 });
        out.push('\n');
        let expires = self.expires.map_or("never".to_owned(), clock::format);
        // Writing into a String cannot fail.
        let _ = write!(out, "repository: {}\nsequence: {}\n", self.repository, self.sequence);
        let _ = write!(out, "created: {}\nexpires: {expires}\n", clock::format(self.created));
        let _ = write!(out, "layout: {}\nbase: none\n", self.layout.name());
        if let Layout::Tar(volumes) = &self.layout {
            let _ = writeln!(out, "volumes: {}", volumes.len());
        }
        let _ = writeln!(out, "entries: {}", self.entries.len());
        for volume in self.layout.volumes() {
            let _ = writeln!(out, "volume {} {}", volume.size, volume.digest);
        }
        for entry in &self.entries {
            match &entry.kind {
                EntryKind::Dir => {
                    let _ = writeln!(out, "dir {}", entry.path);
                }
                EntryKind::File(file) => {
                    let _ = writeln!(out, "file {} {} {} {}", file.size, file.digest, file.flags(), entry.path);
                }
            }
        }
        out.into_bytes()
    }

    /// The length of the entry lines [`Manifest::encode`] writes.
    fn entries_text_len(&self) -> usize {
        let line = |entry: &Entry| match &entry.kind {
            EntryKind::Dir => "dir \n".len() + entry.path.as_str().len(),
            EntryKind::File(file) => {
                let digits = file.size.checked_ilog10().map_or(1, |log| log as usize + 1);
                "file   \n".len() + digits + 64 + file.flags().len() + 1 + entry.path.as_str().len()
            }
        };
        self.entries.iter().map(line).sum()
    }

    /// Decodes and checks manifest bytes read from `origin` (named in errors).
    /// Crate-private: bytes reach it only through the verifier
    /// ([`crate::signing::Signed::verify`]) or tied to a state marker
    /// ([`crate::signing::InstalledManifest`]).
    pub(crate) fn decode(bytes: &[u8], origin: &Utf8Path) -> Result<Manifest> {
        let fail = |line: usize, problem: String| Error::format(origin, format!("line {line}: {problem}"));
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::format(origin, format!("larger than the {MAX_MANIFEST_BYTES}-byte limit")));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| Error::format(origin, format!("not UTF-8 ({e})")))?;
        let Some(body) = text.strip_suffix('\n') else {
            return Err(Error::format(origin, "does not end with a newline (truncated?)"));
        };
        let mut lines = body.split('\n').enumerate().map(|(i, line)| (i + 1, line));

        let mut next_line = |expected: &str| -> Result<(usize, &str)> {
            lines.next().ok_or_else(|| Error::format(origin, format!("ends before the `{expected}` line")))
        };
        let (n, magic) = next_line(MAGIC)?;
        let version2 = match magic {
            MAGIC => false,
            MAGIC_V2 => true,
            _ => {
                let shown = crate::rel_path::escape(&magic.chars().take(60).collect::<String>());
                return Err(fail(
                    n,
                    format!(
                        "expected `{MAGIC}` or `{MAGIC_V2}`, found `{shown}` (not a ferry manifest, or an unsupported version)"
                    ),
                ));
            }
        };
        let mut header = |key: &str| -> Result<(usize, &str)> {
            let (n, line) = next_line(key)?;
            let value = line
                .strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(": "))
                .ok_or_else(|| fail(n, format!("expected `{key}: ...`")))?;
            Ok((n, value))
        };
        let (n, repository) = header("repository")?;
        let repository = RepositoryId::new(repository).map_err(|e| fail(n, e))?;
        let (n, sequence) = header("sequence")?;
        let sequence =
            parse_decimal(sequence).ok_or_else(|| fail(n, format!("`{sequence}` is not a sequence number")))?;
        let (n, created) = header("created")?;
        let created = clock::parse(created)
            .ok_or_else(|| fail(n, format!("`{created}` is not a time like 2026-11-24T13:00:00Z")))?;
        let (n, expires) = header("expires")?;
        let expires = match expires {
            "never" => None,
            text => Some(clock::parse(text).ok_or_else(|| fail(n, format!("`{text}` is not a time or `never`")))?),
        };
        let (n, layout_name) = header("layout")?;
        let tar = match (layout_name, version2) {
            ("tree", _) => false,
            ("tar", true) => true,
            ("tar", false) => return Err(fail(n, "layout `tar` needs a `ferry manifest v2`".into())),
            _ => {
                return Err(fail(
                    n,
                    format!("layout `{layout_name}` is not supported by this version of ferry (only `tree` and `tar`)"),
                ));
            }
        };
        let (n, base) = header("base")?;
        if base != "none" {
            return Err(fail(
                n,
                format!("base `{base}`: a v1 or v2 manifest has `base: none` (a delta is a `ferry manifest v3`)"),
            ));
        }
        let volume_count = if version2 {
            let (n, text) = header("volumes")?;
            let count = parse_decimal(text).ok_or_else(|| fail(n, format!("`{text}` is not a volume count")))?;
            if tar != (count > 0) || count > MAX_VOLUMES {
                return Err(fail(
                    n,
                    format!(
                        "{count} volumes: layout `{layout_name}` needs 1 to {MAX_VOLUMES} volumes, or 0 for a tree"
                    ),
                ));
            }
            count
        } else {
            0
        };
        let (n, count) = header("entries")?;
        let count = parse_decimal(count).ok_or_else(|| fail(n, format!("`{count}` is not an entry count")))?;
        let mut volumes = Vec::with_capacity(volume_count as usize);
        for _ in 0..volume_count {
            let (n, line) = next_line("volume")?;
            volumes.push(parse_volume(line).map_err(|e| fail(n, e))?);
        }
        let layout = if tar { Layout::Tar(volumes) } else { Layout::Tree };

        let entries = decode_entries(lines, count, bytes.len(), origin)?;
        Ok(Manifest { repository, sequence, created, expires, layout, entries })
    }

    /// The file entries, in manifest order.
    pub fn files(&self) -> impl Iterator<Item = (&RelPath, &FileEntry)> {
        self.entries.iter().filter_map(|entry| entry.file().map(|file| (&entry.path, file)))
    }

    /// The file entry of `path`, found by bisection: entries are sorted by
    /// path bytes (§4), so no map of every path is needed.
    pub fn file_at(&self, path: &str) -> Option<&FileEntry> {
        let at = self.entries.binary_search_by(|entry| entry.path.as_str().as_bytes().cmp(path.as_bytes()));
        at.ok().and_then(|n| self.entries[n].file())
    }

    /// Total payload bytes.
    pub fn payload_bytes(&self) -> u64 {
        self.files().map(|(_, file)| file.size).sum()
    }
}

fn parse_decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

fn parse_volume(line: &str) -> Result<Volume, String> {
    let mut fields = line.split(' ');
    let (Some("volume"), Some(size), Some(digest), None) = (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        let shown = crate::rel_path::escape(&line.chars().take(60).collect::<String>());
        return Err(format!("expected `volume SIZE SHA256`, found `{shown}`"));
    };
    let size = parse_decimal(size).ok_or_else(|| format!("`{size}` is not a volume size"))?;
    let digest = Digest::from_hex(digest).ok_or_else(|| format!("`{digest}` is not a SHA-256 in lowercase hex"))?;
    Ok(Volume { size, digest })
}

/// Decodes the entry lines that follow the header (§4): each valid, sorted
/// strictly by path, inside a listed folder, and exactly `count` of them.
fn decode_entries<'a>(
    lines: impl Iterator<Item = (usize, &'a str)>,
    count: u64,
    manifest_bytes: usize,
    origin: &Utf8Path,
) -> Result<Vec<Entry>> {
    let fail = |line: usize, problem: String| Error::format(origin, format!("line {line}: {problem}"));
    // The count is untrusted only until the signature check, which has
    // passed by now; still, never reserve more than the bytes could hold.
    let mut entries: Vec<Entry> = Vec::with_capacity((count as usize).min(manifest_bytes / 6));
    // Folders only: a million files would cost tens of megabytes in a set
    // (issue 14), and a parent that is a file is found in `entries` instead.
    let mut directories: HashSet<&str> = HashSet::new();
    let mut total_bytes = 0u64;
    for (n, line) in lines {
        if entries.len() as u64 == count {
            return Err(fail(n, format!("more entry lines than the {count} announced")));
        }
        let entry = parse_entry(line).map_err(|e| fail(n, e))?;
        // Every sum of sizes in ferry stays below 2^64 if the total does.
        if let Some(file) = entry.file() {
            total_bytes = total_bytes
                .checked_add(file.size)
                .ok_or_else(|| fail(n, "the files add up to more than 2^64 bytes".into()))?;
        }
        if let Some(previous) = entries.last()
            && entry.path.as_str().as_bytes() <= previous.path.as_str().as_bytes()
        {
            return Err(fail(
                n,
                format!("`{}` is out of order or duplicated (entries must be sorted by path)", entry.path),
            ));
        }
        if let Some(parent) = entry.path.parent() {
            let parent = parent.as_str();
            if !directories.contains(parent) {
                // Entries are sorted, so a listed parent is found by bisection.
                let listed = entries.binary_search_by(|e| e.path.as_str().as_bytes().cmp(parent.as_bytes())).is_ok();
                return Err(fail(
                    n,
                    match listed {
                        true => format!("`{}` is inside `{parent}`, which is a file", entry.path),
                        false => format!("`{}`: its folder `{parent}` is not listed before it", entry.path),
                    },
                ));
            }
        }
        if matches!(entry.kind, EntryKind::Dir) {
            // Borrow the path text from `body` so the set costs no allocation.
            directories.insert(&line[line.len() - entry.path.as_str().len()..]);
        }
        entries.push(entry);
    }
    if entries.len() as u64 != count {
        return Err(Error::format(origin, format!("announces {count} entries but lists {}", entries.len())));
    }
    Ok(entries)
}

fn parse_entry(line: &str) -> Result<Entry, String> {
    if let Some(path) = line.strip_prefix("dir ") {
        return Ok(Entry { path: RelPath::new(path)?, kind: EntryKind::Dir });
    }
    let Some(rest) = line.strip_prefix("file ") else {
        let shown = crate::rel_path::escape(&line.chars().take(60).collect::<String>());
        return Err(format!("expected a `dir` or `file` entry, found `{shown}`"));
    };
    let mut fields = rest.splitn(4, ' ');
    let (Some(size), Some(digest), Some(flags), Some(path)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("a `file` entry needs SIZE SHA256 FLAGS PATH".into());
    };
    let size = parse_decimal(size).ok_or_else(|| format!("`{size}` is not a file size"))?;
    let digest = Digest::from_hex(digest).ok_or_else(|| format!("`{digest}` is not a SHA-256 in lowercase hex"))?;
    let (executable, index) = match flags {
        "-" => (false, false),
        "x" => (true, false),
        "i" => (false, true),
        "xi" => (true, true),
        _ => return Err(format!("`{flags}` is not a flags field (-, x, i or xi)")),
    };
    Ok(Entry { path: RelPath::new(path)?, kind: EntryKind::File(FileEntry { size, digest, executable, index }) })
}

/// A manifest of repository `r`, sequence 1, for the engine's unit tests,
/// its entries sorted by path bytes as every manifest's are.
#[cfg(test)]
pub(crate) fn for_tests(mut entries: Vec<Entry>) -> Manifest {
    entries.sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    Manifest {
        repository: RepositoryId::new("r").expect("a valid id"),
        sequence: 1,
        created: Timestamp::UNIX_EPOCH,
        expires: None,
        layout: Layout::Tree,
        entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let file = |size, byte: u8, executable, index| {
            EntryKind::File(FileEntry { size, digest: Digest([byte; 32]), executable, index })
        };
        Manifest {
            repository: RepositoryId::new("av-bases").unwrap(),
            sequence: 42,
            created: clock::parse("2026-11-24T13:00:00Z").unwrap(),
            expires: None,
            layout: Layout::Tree,
            entries: vec![
                Entry { path: RelPath::new("a").unwrap(), kind: EntryKind::Dir },
                Entry { path: RelPath::new("a/x y.bin").unwrap(), kind: file(3, 1, true, false) },
                Entry { path: RelPath::new("index.xml").unwrap(), kind: file(0, 2, false, true) },
            ],
        }
    }

    fn decode(bytes: &[u8]) -> Result<Manifest> {
        Manifest::decode(bytes, Utf8Path::new("manifest"))
    }

    #[test]
    fn round_trip() {
        let manifest = sample();
        let bytes = manifest.encode();
        assert_eq!(decode(&bytes).unwrap(), manifest);
        assert_eq!(decode(&bytes).unwrap().encode(), bytes);
    }

    #[test]
    fn refuses_each_broken_rule() {
        let good = String::from_utf8(sample().encode()).unwrap();
        let cases: Vec<(String, &str)> = vec![
            (good.replace("ferry manifest v1", "ferry manifest v4"), "unsupported version"),
            (good.replace("sequence: 42", "sequence: 042"), "not a sequence"),
            (good.replace("layout: tree", "layout: tar"), "layout `tar` needs"),
            (good.replace("layout: tree", "layout: zip"), "layout `zip`"),
            (good.replace("base: none", "base: abc"), "a delta is a `ferry manifest v3`"),
            (good.replace("entries: 3", "entries: 4"), "announces 4"),
            (good.replace("entries: 3", "entries: 2"), "more entry lines"),
            (good.replace("dir a\n", "dir a\ndir a\n").replace("entries: 3", "entries: 4"), "out of order"),
            (good.replace("a/x y.bin", "../x"), "`..`"),
            (good.replace("a/x y.bin", "/etc/x"), "absolute"),
            (good.replace(" x a/", " q a/"), "flags"),
            (good.trim_end().to_owned(), "newline"),
        ];
        for (text, expected) in cases {
            let error = decode(text.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(expected), "expected {expected:?} in {error:?}");
        }
    }

    #[test]
    fn tar_layout_round_trips_as_v2() {
        let mut manifest = sample();
        manifest.layout = Layout::Tar(vec![
            Volume { size: 10240, digest: Digest([7; 32]) },
            Volume { size: 512, digest: Digest([8; 32]) },
        ]);
        let bytes = manifest.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("ferry manifest v2\n"), "{text}");
        assert!(text.contains("layout: tar\nbase: none\nvolumes: 2\nentries: 3\nvolume 10240 "), "{text}");
        assert_eq!(decode(&bytes).unwrap(), manifest);

        let cases: Vec<(String, &str)> = vec![
            (text.replace("volumes: 2", "volumes: 0"), "needs 1 to"),
            (text.replace("volumes: 2", "volumes: 3"), "expected `volume SIZE SHA256`"),
            (text.replace("volume 512 ", "volume 0512 "), "not a volume size"),
            (text.replace("layout: tar", "layout: tree"), "or 0 for a tree"),
        ];
        for (text, expected) in cases {
            let error = decode(text.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(expected), "expected {expected:?} in {error:?}");
        }
    }

    #[test]
    fn refuses_missing_parent() {
        let text =
            String::from_utf8(sample().encode()).unwrap().replace("dir a\n", "").replace("entries: 3", "entries: 2");
        assert!(decode(text.as_bytes()).unwrap_err().to_string().contains("is not listed before it"));
    }
}
