//! `ferry manifest v3`, the manifest of a delta snapshot
//! (`formats/delta-v1.md` §2), kept apart from [`crate::manifest`]: v3 is
//! v2 plus base digests, patch lines and the flags `b` and `p`. Decoding
//! removes the v3 additions and hands the rest to [`Manifest::decode`], so
//! every rule v1 and v2 share is checked by one reader; then it checks the
//! additions (D1 to D3).
//!
//! Not wired into [`crate::signing::verify`] yet: until it is, no ferry
//! reads a v3 manifest from media (formats/delta-v1.md, status).

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{EntryKind, Layout, MAGIC_V2, Manifest};
use crate::rel_path::RelPath;
use camino::Utf8Path;
use std::collections::BTreeMap;

/// First line of a v3 manifest.
pub const MAGIC_V3: &str = "ferry manifest v3";
/// Most bases one delta may name (D1).
pub const MAX_BASES: usize = 64;

/// Where the bytes of a file entry come from (D3).
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

/// One `patch SIZE SHA256 FROM PATH` line (D2).
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

/// A delta snapshot's manifest: the complete new snapshot, its bases, its
/// patches and where each file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaManifest {
    /// The complete new snapshot; its layout describes what the medium carries.
    pub manifest: Manifest,
    /// Snapshot ids of the bases, strictly ascending (D1).
    pub bases: Vec<Digest>,
    /// Patch lines, sorted by (path bytes, from).
    pub patches: Vec<PatchLine>,
    /// Files not carried whole, by path (absent: [`Carry::Whole`]).
    pub carry: BTreeMap<String, Carry>,
}

impl DeltaManifest {
    /// Encodes as `ferry manifest v3`; same delta, same bytes.
    pub fn encode(&self) -> Vec<u8> {
        let m = &self.manifest;
        let mut out = format!("{MAGIC_V3}\nrepository: {}\nsequence: {}\n", m.repository, m.sequence);
        out.push_str(&format!("created: {}\n", crate::clock::format(m.created)));
        out.push_str(&format!("expires: {}\n", m.expires.map_or("never".to_owned(), crate::clock::format)));
        let bases: Vec<String> = self.bases.iter().map(Digest::to_hex).collect();
        out.push_str(&format!("layout: {}\nbase: {}\n", m.layout.name(), bases.join(" ")));
        out.push_str(&format!("volumes: {}\npatches: {}\n", m.layout.volumes().len(), self.patches.len()));
        out.push_str(&format!("entries: {}\n", m.entries.len()));
        for volume in m.layout.volumes() {
            out.push_str(&format!("volume {} {}\n", volume.size, volume.digest));
        }
        for patch in &self.patches {
            out.push_str(&format!("patch {} {} {} {}\n", patch.size, patch.digest, patch.from, patch.path));
        }
        for entry in &m.entries {
            let EntryKind::File(file) = &entry.kind else {
                out.push_str(&format!("dir {}\n", entry.path));
                continue;
            };
            let mut flags = String::new();
            flags.extend([(file.executable, 'x'), (file.index, 'i')].iter().filter(|(on, _)| *on).map(|(_, c)| c));
            match self.carry.get(entry.path.as_str()) {
                Some(Carry::Base) => flags.push('b'),
                Some(Carry::Patched) => flags.push('p'),
                _ => {}
            }
            if flags.is_empty() {
                flags.push('-');
            }
            out.push_str(&format!("file {} {} {flags} {}\n", file.size, file.digest, entry.path));
        }
        out.into_bytes()
    }

    /// Decodes and checks v3 manifest bytes read from `origin`.
    pub fn decode(bytes: &[u8], origin: &Utf8Path) -> Result<DeltaManifest> {
        let fail = |line: usize, problem: String| Error::format(origin, format!("line {line}: {problem}"));
        let text = std::str::from_utf8(bytes).map_err(|e| Error::format(origin, format!("not UTF-8 ({e})")))?;
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        if lines.first().map(|l| l.trim_end_matches('\n')) != Some(MAGIC_V3) {
            return Err(fail(1, format!("expected `{MAGIC_V3}`")));
        }
        // Lines 1-10: magic, repository, sequence, created, expires, layout,
        // base, volumes, patches, entries (formats/delta-v1.md §2).
        let header = |n: usize, key: &str| -> Result<&str> {
            lines
                .get(n - 1)
                .and_then(|l| l.strip_suffix('\n'))
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix(": "))
                .ok_or_else(|| fail(n, format!("expected `{key}: ...`")))
        };
        let bases = parse_bases(header(7, "base")?).map_err(|e| fail(7, e))?;
        let volumes = header(8, "volumes")?;
        let volumes =
            crate::ledger::index::parse_number(volumes).ok_or_else(|| fail(8, "not a volume count".into()))?;
        let count = header(9, "patches")?;
        let count = crate::ledger::index::parse_number(count).ok_or_else(|| fail(9, "not a patch count".into()))?;
        let first_patch = 11usize.saturating_add(usize::try_from(volumes).unwrap_or(usize::MAX));
        let after_patches = first_patch.saturating_add(usize::try_from(count).unwrap_or(usize::MAX));
        if after_patches > lines.len() + 1 {
            return Err(Error::format(origin, format!("ends before the {count} patch lines announced")));
        }
        let mut patches = Vec::new();
        for n in first_patch..after_patches {
            let line = lines[n - 1].strip_suffix('\n').unwrap_or(lines[n - 1]);
            patches.push(parse_patch(line).map_err(|e| fail(n, e))?);
        }
        // The shared part, as v2: the v3 lines out, the flags b and p off.
        let mut carry = BTreeMap::new();
        let mut v2 = format!("{MAGIC_V2}\n");
        for (index, line) in lines.iter().enumerate().skip(1) {
            let n = index + 1;
            if n == 7 {
                v2.push_str("base: none\n");
            } else if n == 9 || (first_patch..after_patches).contains(&n) {
                continue;
            } else if n > after_patches.max(10) - 1 && line.starts_with("file ") {
                v2.push_str(&strip_carry_flag(line, &mut carry).map_err(|e| fail(n, e))?);
            } else {
                v2.push_str(line);
            }
        }
        let manifest = Manifest::decode(v2.as_bytes(), origin).map_err(|e| renumber(e, 9, 1 + patches.len()))?;
        let delta = DeltaManifest { manifest, bases, patches, carry };
        delta.check(origin)?;
        Ok(delta)
    }

    /// D2, D3 and the patch order: what [`Manifest::decode`] cannot know.
    fn check(&self, origin: &Utf8Path) -> Result<()> {
        let problem = |text: String| Err(Error::format(origin, text));
        for pair in self.patches.windows(2) {
            let key = |p: &PatchLine| (p.path.as_str().as_bytes().to_vec(), p.from.0);
            if key(&pair[0]) >= key(&pair[1]) {
                return problem(format!("patch lines of `{}` out of order or repeated", pair[1].path));
            }
        }
        for patch in &self.patches {
            if self.carry.get(patch.path.as_str()) != Some(&Carry::Patched) {
                return problem(format!("a patch produces `{}`, which is not a `p` file", patch.path));
            }
        }
        for (path, carry) in &self.carry {
            if *carry == Carry::Patched && !self.patches.iter().any(|p| p.path.as_str() == path) {
                return problem(format!("`{path}` is a `p` file without a patch line"));
            }
        }
        if self.manifest.layout == Layout::Tree && !self.manifest.layout.volumes().is_empty() {
            return problem("a tree delta lists volumes".into());
        }
        Ok(())
    }
}

fn parse_bases(text: &str) -> Result<Vec<Digest>, String> {
    let bases: Vec<Digest> = text
        .split(' ')
        .map(|d| Digest::from_hex(d).ok_or_else(|| format!("`{d}` is not a snapshot id")))
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
        return Err("expected `patch SIZE SHA256 FROM PATH`".into());
    };
    let size = crate::ledger::index::parse_number(size).ok_or_else(|| format!("`{size}` is not a patch size"))?;
    let digest = Digest::from_hex(digest).ok_or_else(|| format!("`{digest}` is not a SHA-256"))?;
    let from = Digest::from_hex(from).ok_or_else(|| format!("`{from}` is not a SHA-256"))?;
    Ok(PatchLine { size, digest, from, path: RelPath::new(path)? })
}

/// `file SIZE SHA FLAGS PATH` without `b` or `p` in FLAGS, noting which.
fn strip_carry_flag(line: &str, carry: &mut BTreeMap<String, Carry>) -> Result<String, String> {
    let mut fields = line.splitn(5, ' ');
    let (Some(kind), Some(size), Some(digest), Some(flags), Some(rest)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Ok(line.to_owned());
    };
    let (kept, mark) = match flags.strip_suffix('b').or_else(|| flags.strip_suffix('p')) {
        Some(kept) => (kept, if flags.ends_with('b') { Carry::Base } else { Carry::Patched }),
        None => return Ok(line.to_owned()),
    };
    let path = rest.strip_suffix('\n').unwrap_or(rest);
    if carry.insert(path.to_owned(), mark).is_some() {
        return Err(format!("`{path}` repeated"));
    }
    let kept = if kept.is_empty() { "-" } else { kept };
    Ok(format!("{kind} {size} {digest} {kept} {rest}"))
}

/// Errors of the shared reader count lines of the v2 text: give them the
/// v3 numbers (`removed` lines were taken out after line `after`).
fn renumber(error: Error, after: usize, removed: usize) -> Error {
    let Error::Format { path, problem } = error else { return error };
    let renumbered = problem
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(n, rest)| n.parse::<usize>().ok().map(|n| (n, rest)))
        .map(|(n, rest)| format!("line {}:{rest}", if n >= after { n + removed } else { n }));
    Error::Format { path, problem: renumbered.unwrap_or(problem) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Entry, FileEntry, RepositoryId, Volume};

    fn sample() -> DeltaManifest {
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
        DeltaManifest {
            manifest,
            bases: vec![Digest([4; 32]), Digest([5; 32])],
            patches: vec![patch(8), patch(9)],
            carry: [("bases/daily.cvd".to_owned(), Carry::Patched), ("bases/main.cvd".to_owned(), Carry::Base)].into(),
        }
    }

    #[test]
    fn round_trip_and_the_v3_rules() {
        let origin = Utf8Path::new("manifest");
        let bytes = sample().encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(" p bases/daily.cvd\n") && text.contains(" xb bases/main.cvd\n"), "{text}");
        assert_eq!(DeltaManifest::decode(&bytes, origin).unwrap(), sample());
        let (b4, b5) = (Digest([4; 32]).to_hex(), Digest([5; 32]).to_hex());
        let cases = [
            (text.replace("v3", "v2"), "expected `ferry manifest v3`"),
            (text.replace(&format!("{b4} {b5}"), &format!("{b5} {b4}")), "strictly ascending"),
            (text.replace("patches: 2", "patches: x"), "not a patch count"),
            (text.replace(" p bases/daily", " - bases/daily"), "not a `p` file"),
            (text.replace(" xb bases/main", " xp bases/main"), "without a patch line"),
            (text.replace("entries: 4", "entries: 5"), "announces 5"),
            (text.replace("file 20 ", "file 020 "), "line 17: `020` is not a file size"),
        ];
        for (bad, expected) in cases {
            let error = DeltaManifest::decode(bad.as_bytes(), origin).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }
}
