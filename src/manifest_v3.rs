//! `ferry manifest v3` (`formats/manifest-v3.md`): v2 plus optional
//! sections, and [`SnapshotManifest`], the manifest of a snapshot whatever
//! its version, which is what [`crate::signing::Signed::verify`] decodes.
//!
//! Decoding a v3 manifest takes the v3 additions out (base digests, the
//! optional header fields, their section lines, the extra entry flags) and
//! hands the rest, as v2 text, to [`Manifest::decode`], so every rule the
//! versions share is checked by one reader; errors keep the v3 line
//! numbers. Then the additions are checked (manifest-v3.md §4, and for the
//! delta section `formats/delta-v1.md` §2).
//!
//! Adding a section: a field name in [`FIELDS`] (registry order), its
//! lines in `decode_sections`, its flag letters in `strip_flags`, its data
//! in [`SnapshotManifest`] and its encoding in [`SnapshotManifest::encode`].

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::ledger::index::parse_number;
use crate::manifest::{EntryKind, MAGIC, MAGIC_V2, MAX_MANIFEST_BYTES, Manifest};
use crate::rel_path::RelPath;
use camino::Utf8Path;
use std::collections::BTreeMap;

/// First line of a v3 manifest.
pub const MAGIC_V3: &str = "ferry manifest v3";
/// Most bases one delta may name (formats/delta-v1.md D1).
pub const MAX_BASES: usize = 64;
/// The optional header fields this reader knows, in the order they must
/// appear (formats/manifest-v3.md §3).
pub const FIELDS: &[&str] = &["patches"];

/// Where the bytes of a file entry come from (formats/delta-v1.md D3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Carry {
    /// The medium carries the file whole.
    #[default]
    Whole,
    /// Every base holds it with this content (flag `b`).
    Base,
    /// Patches from the bases' versions (flag `p`).
    Patched,
}

/// One `patch SIZE SHA256 FROM PATH` line (formats/delta-v1.md D2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchLine {
    /// Size of the patch file.
    pub size: u64,
    /// SHA-256 of the patch file.
    pub digest: Digest,
    /// SHA-256 of the old content the patch applies to.
    pub from: Digest,
    /// The file it produces.
    pub path: RelPath,
}

/// What makes a snapshot a delta: its bases, its patches and where each
/// file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delta {
    /// Snapshot ids of the bases, strictly ascending, 1 to [`MAX_BASES`].
    pub bases: Vec<Digest>,
    /// Patch lines, sorted by (path bytes, from).
    pub patches: Vec<PatchLine>,
    /// Files not carried whole, by path (absent: [`Carry::Whole`]).
    pub carry: BTreeMap<String, Carry>,
}

impl Delta {
    /// Where the bytes of `path` come from.
    pub fn carry_of(&self, path: &str) -> Carry {
        self.carry.get(path).copied().unwrap_or_default()
    }

    /// The patch of `path` that applies to content with SHA-256 `from`.
    pub fn patch_for(&self, path: &str, from: &Digest) -> Option<&PatchLine> {
        self.patches.iter().find(|p| p.path.as_str() == path && p.from == *from)
    }
}

/// The manifest of a snapshot of any version: the complete snapshot, and
/// the v3 sections it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotManifest {
    /// The complete snapshot; its layout describes what the medium carries.
    pub manifest: Manifest,
    /// Present when the snapshot is a delta (`base:` names snapshots).
    pub delta: Option<Delta>,
}

impl From<Manifest> for SnapshotManifest {
    fn from(manifest: Manifest) -> Self {
        SnapshotManifest { manifest, delta: None }
    }
}

impl SnapshotManifest {
    /// The bases this snapshot applies to; empty for a full snapshot.
    pub fn bases(&self) -> &[Digest] {
        self.delta.as_ref().map_or(&[], |d| &d.bases)
    }

    /// Encodes: v1 or v2 when nothing needs v3 (manifest-v3.md V1), else
    /// v3. Same snapshot, same bytes.
    pub fn encode(&self) -> Vec<u8> {
        let Some(delta) = &self.delta else { return self.manifest.encode() };
        let m = &self.manifest;
        let mut out = format!("{MAGIC_V3}\nrepository: {}\nsequence: {}\n", m.repository, m.sequence);
        out.push_str(&format!("created: {}\n", crate::clock::format(m.created)));
        out.push_str(&format!("expires: {}\n", m.expires.map_or("never".to_owned(), crate::clock::format)));
        let bases: Vec<String> = delta.bases.iter().map(Digest::to_hex).collect();
        out.push_str(&format!("layout: {}\nbase: {}\n", m.layout.name(), bases.join(" ")));
        out.push_str(&format!("volumes: {}\n", m.layout.volumes().len()));
        if !delta.patches.is_empty() {
            out.push_str(&format!("patches: {}\n", delta.patches.len()));
        }
        out.push_str(&format!("entries: {}\n", m.entries.len()));
        for volume in m.layout.volumes() {
            out.push_str(&format!("volume {} {}\n", volume.size, volume.digest));
        }
        for patch in &delta.patches {
            out.push_str(&format!("patch {} {} {} {}\n", patch.size, patch.digest, patch.from, patch.path));
        }
        for entry in &m.entries {
            let EntryKind::File(file) = &entry.kind else {
                out.push_str(&format!("dir {}\n", entry.path));
                continue;
            };
            let mut flags = String::new();
            flags.extend([(file.executable, 'x'), (file.index, 'i')].iter().filter(|(on, _)| *on).map(|(_, c)| c));
            match delta.carry_of(entry.path.as_str()) {
                Carry::Base => flags.push('b'),
                Carry::Patched => flags.push('p'),
                Carry::Whole => {}
            }
            if flags.is_empty() {
                flags.push('-');
            }
            out.push_str(&format!("file {} {} {flags} {}\n", file.size, file.digest, entry.path));
        }
        out.into_bytes()
    }

    /// Decodes and checks manifest bytes of any version read from `origin`.
    /// Only called on bytes whose signature verified or whose digest a
    /// state marker names (as [`Manifest::decode`]).
    pub(crate) fn decode(bytes: &[u8], origin: &Utf8Path) -> Result<SnapshotManifest> {
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        if first != MAGIC_V3.as_bytes() {
            return Ok(Manifest::decode(bytes, origin)?.into());
        }
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::format(origin, format!("larger than the {MAX_MANIFEST_BYTES}-byte limit")));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| Error::format(origin, format!("not UTF-8 ({e})")))?;
        let Some(body) = text.strip_suffix('\n') else {
            return Err(Error::format(origin, "does not end with a newline (truncated?)"));
        };
        let lines: Vec<&str> = body.split('\n').collect();
        let mut v2 = V2Text::default();
        let delta =
            decode_sections(&lines, &mut v2).map_err(|(n, e)| Error::format(origin, format!("line {n}: {e}")))?;
        let manifest = Manifest::decode(v2.text.as_bytes(), origin).map_err(|e| v2.renumber(e))?;
        let snapshot = SnapshotManifest { manifest, delta: Some(delta) };
        snapshot.check().map_err(|problem| Error::format(origin, problem))?;
        Ok(snapshot)
    }

    /// The v3 rules [`Manifest::decode`] cannot know (manifest-v3.md §4,
    /// delta-v1.md D2, D3).
    fn check(&self) -> Result<(), String> {
        let Some(delta) = &self.delta else { return Ok(()) };
        if delta.bases.is_empty() {
            if !delta.carry.is_empty() {
                return Err("flags `b` and `p` need a `base:` naming snapshots, not `none`".into());
            }
            return Err("`base: none` and no optional section: nothing that needs v3 (V1: write v1 or v2)".into());
        }
        for pair in delta.patches.windows(2) {
            let key = |p: &PatchLine| (p.path.as_str().as_bytes().to_vec(), p.from.0);
            if key(&pair[0]) >= key(&pair[1]) {
                return Err(format!("patch lines of `{}` out of order or repeated", pair[1].path));
            }
        }
        for patch in &delta.patches {
            let entry = self.manifest.files().find(|(path, _)| *path == &patch.path);
            if delta.carry_of(patch.path.as_str()) != Carry::Patched || entry.is_none() {
                return Err(format!("a patch produces `{}`, which is not a `p` file", patch.path));
            }
        }
        for (path, carry) in &delta.carry {
            if *carry == Carry::Patched && !delta.patches.iter().any(|p| p.path.as_str() == path) {
                return Err(format!("`{path}` is a `p` file without a patch line"));
            }
        }
        Ok(())
    }
}

/// The v2 text handed to [`Manifest::decode`], with the v3 line number of
/// each of its lines.
#[derive(Default)]
struct V2Text {
    text: String,
    v3_line: Vec<usize>,
}

impl V2Text {
    fn push(&mut self, line: &str, v3_line: usize) {
        self.text.push_str(line);
        self.text.push('\n');
        self.v3_line.push(v3_line);
    }

    /// Errors of the shared reader count lines of the v2 text: give them the v3 numbers.
    fn renumber(&self, error: Error) -> Error {
        let Error::Format { path, problem } = error else { return error };
        let renumbered = problem
            .strip_prefix("line ")
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(n, rest)| n.parse::<usize>().ok().map(|n| (n, rest)))
            .and_then(|(n, rest)| Some(format!("line {}:{rest}", self.v3_line.get(n.checked_sub(1)?)?)));
        Error::Format { path, problem: renumbered.unwrap_or(problem) }
    }
}

type LineError = (usize, String);

/// Walks the v3 lines: the v3 additions are parsed into a [`Delta`], the
/// rest goes to `v2`. Line numbers count from 1.
fn decode_sections(lines: &[&str], v2: &mut V2Text) -> Result<Delta, LineError> {
    let mut delta = Delta::default();
    v2.push(MAGIC_V2, 1);
    // Lines 2 to 6 (repository to layout) are v2's; 7 is `base`, 8 `volumes`.
    let mut n = 2;
    while n <= 8 && n <= lines.len() {
        let line = lines[n - 1];
        match line.strip_prefix("base: ") {
            Some(value) if n == 7 => {
                delta.bases = parse_bases(value).map_err(|e| (n, e))?;
                v2.push("base: none", n);
            }
            _ => v2.push(line, n),
        }
        n += 1;
    }
    let volumes = lines.get(7).and_then(|l| l.strip_prefix("volumes: ")).and_then(parse_number).unwrap_or(0);
    // Optional header fields, in registry order, then `entries`.
    let mut counts = BTreeMap::new();
    while let Some(line) = lines.get(n - 1).filter(|l| !l.starts_with("entries: ")) {
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| (n, format!("expected `entries: ...` or an optional field, found `{}`", shown(line))))?;
        let Some(rank) = FIELDS.iter().position(|f| *f == name) else {
            return Err((
                n,
                format!(
                    "unknown header field `{}` (this ferry knows {}; written by a newer ferry?)",
                    shown(name),
                    FIELDS.join(", ")
                ),
            ));
        };
        if counts.keys().next_back().is_some_and(|last| *last >= rank) {
            return Err((n, format!("header field `{name}` out of order or repeated")));
        }
        let count = parse_number(value)
            .filter(|c| *c > 0)
            .ok_or_else(|| (n, format!("`{}` is not a {name} count (1 or more)", shown(value))))?;
        counts.insert(rank, count);
        n += 1;
    }
    // `entries`, then the volume lines: v2's.
    let volume_end = n.saturating_add(usize::try_from(volumes).unwrap_or(usize::MAX)).min(lines.len());
    while n <= volume_end {
        v2.push(lines[n - 1], n);
        n += 1;
    }
    // Section lines, in header order.
    if let Some(count) = counts.get(&0) {
        for _ in 0..*count {
            let line = lines.get(n - 1).ok_or_else(|| (n, format!("ends before the {count} patch lines announced")))?;
            delta.patches.push(parse_patch(line).map_err(|e| (n, e))?);
            n += 1;
        }
    }
    for (index, line) in lines.iter().enumerate().skip(n - 1) {
        let kept = strip_flags(line, &mut delta.carry).map_err(|e| (index + 1, e))?;
        v2.push(&kept, index + 1);
    }
    Ok(delta)
}

fn shown(text: &str) -> String {
    crate::rel_path::escape(&text.chars().take(60).collect::<String>())
}

fn parse_bases(text: &str) -> Result<Vec<Digest>, String> {
    if text == "none" {
        return Ok(Vec::new());
    }
    let bases: Vec<Digest> = text
        .split(' ')
        .map(|d| Digest::from_hex(d).ok_or_else(|| format!("`{}` is not a snapshot id", shown(d))))
        .collect::<Result<_, _>>()?;
    if bases.len() > MAX_BASES || bases.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(format!("1 to {MAX_BASES} base snapshot ids, strictly ascending"));
    }
    Ok(bases)
}

fn parse_patch(line: &str) -> Result<PatchLine, String> {
    let mut fields = line.splitn(5, ' ');
    let (Some("patch"), Some(size), Some(digest), Some(from), Some(path)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(format!("expected `patch SIZE SHA256 FROM PATH`, found `{}`", shown(line)));
    };
    let size = parse_number(size).ok_or_else(|| format!("`{}` is not a patch size", shown(size)))?;
    let digest = Digest::from_hex(digest).ok_or_else(|| format!("`{}` is not a SHA-256", shown(digest)))?;
    let from = Digest::from_hex(from).ok_or_else(|| format!("`{}` is not a SHA-256", shown(from)))?;
    Ok(PatchLine { size, digest, from, path: RelPath::new(path)? })
}

/// A `file SIZE SHA FLAGS PATH` line without the v3 flag letters, noting
/// them; other lines unchanged (the shared reader judges them).
fn strip_flags(line: &str, carry: &mut BTreeMap<String, Carry>) -> Result<String, String> {
    let mut fields = line.splitn(5, ' ');
    let (Some("file"), Some(size), Some(digest), Some(flags), Some(path)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Ok(line.to_owned());
    };
    let mark = match flags.as_bytes().last() {
        Some(b'b') => Carry::Base,
        Some(b'p') => Carry::Patched,
        _ => return Ok(line.to_owned()),
    };
    let kept = &flags[..flags.len() - 1];
    if kept == "-" {
        return Err(format!("`{flags}` is not a flags field"));
    }
    if carry.insert(path.to_owned(), mark).is_some() {
        return Err(format!("`{}` repeated", shown(path)));
    }
    let kept = if kept.is_empty() { "-" } else { kept };
    Ok(format!("file {size} {digest} {kept} {path}"))
}

/// Whether `line` is the first line of a manifest ferry reads.
pub fn is_magic(line: &str) -> bool {
    [MAGIC, MAGIC_V2, MAGIC_V3].contains(&line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Entry, FileEntry, Layout, RepositoryId, Volume};

    fn sample() -> SnapshotManifest {
        let file = |size, byte: u8, executable| {
            EntryKind::File(FileEntry { size, digest: Digest([byte; 32]), executable, index: false })
        };
        let path = |p: &str| RelPath::new(p).unwrap();
        let manifest = Manifest {
            repository: RepositoryId::new("av").unwrap(),
            sequence: 9,
            created: crate::clock::parse("2026-12-05T12:00:00Z").unwrap(),
            expires: None,
            layout: Layout::Tar(vec![Volume { size: 10240, digest: Digest([7; 32]) }]),
            entries: vec![
                Entry { path: path("bases"), kind: EntryKind::Dir },
                Entry { path: path("bases/daily.cvd"), kind: file(3000, 1, false) },
                Entry { path: path("bases/main.cvd"), kind: file(5000, 2, true) },
                Entry { path: path("index.xml"), kind: file(20, 3, false) },
            ],
        };
        let patch = |from: u8| PatchLine {
            size: 31,
            digest: Digest([from + 10; 32]),
            from: Digest([from; 32]),
            path: path("bases/daily.cvd"),
        };
        let delta = Delta {
            bases: vec![Digest([4; 32]), Digest([5; 32])],
            patches: vec![patch(8), patch(9)],
            carry: [("bases/daily.cvd".to_owned(), Carry::Patched), ("bases/main.cvd".to_owned(), Carry::Base)].into(),
        };
        SnapshotManifest { manifest, delta: Some(delta) }
    }

    fn decode(bytes: &[u8]) -> Result<SnapshotManifest> {
        SnapshotManifest::decode(bytes, Utf8Path::new("manifest"))
    }

    #[test]
    fn round_trip_and_the_v3_rules() {
        let bytes = sample().encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(" p bases/daily.cvd\n") && text.contains(" xb bases/main.cvd\n"), "{text}");
        assert!(text.contains("volumes: 1\npatches: 2\nentries: 4\n"), "{text}");
        assert_eq!(decode(&bytes).unwrap(), sample());
        let (b4, b5) = (Digest([4; 32]).to_hex(), Digest([5; 32]).to_hex());
        let cases = [
            (text.replace(&format!("{b4} {b5}"), &format!("{b5} {b4}")), "line 7: 1 to 64 base"),
            (text.replace("patches: 2", "patches: x"), "line 9: `x` is not a patches count"),
            (text.replace("patches: 2", "approval: 2"), "line 9: unknown header field `approval`"),
            (text.replace("patches: 2\n", "patches: 2\npatches: 2\n"), "out of order or repeated"),
            (text.replace("patches: 2", "patches: 3"), "expected `patch SIZE"),
            (text.replace(" p bases/daily", " - bases/daily"), "not a `p` file"),
            (text.replace(" xb bases/main", " xp bases/main"), "without a patch line"),
            (text.replace(" xb bases/main", " -b bases/main"), "not a flags field"),
            (text.replace("entries: 4", "entries: 5"), "announces 5"),
            (text.replace("file 20 ", "file 020 "), "line 17: `020` is not a file size"),
            (text.replace("sequence: 9", "sequence: 09"), "line 3: `09` is not a sequence"),
            (text.replace(&format!("base: {b4} {b5}"), "base: none"), "need a `base:`"),
        ];
        for (bad, expected) in cases {
            let error = decode(bad.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }

    #[test]
    fn a_delta_without_patches_and_a_full_snapshot() {
        let mut snapshot = sample();
        let delta = snapshot.delta.as_mut().unwrap();
        delta.patches.clear();
        delta.carry.remove("bases/daily.cvd");
        let bytes = snapshot.encode();
        assert!(String::from_utf8_lossy(&bytes).contains("volumes: 1\nentries: 4\n"));
        assert_eq!(decode(&bytes).unwrap(), snapshot);
        let full = SnapshotManifest::from(snapshot.manifest.clone());
        assert!(full.encode().starts_with(b"ferry manifest v2\n"));
        assert_eq!(decode(&full.encode()).unwrap(), full);
    }
}
