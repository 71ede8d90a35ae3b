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
use crate::policy::HoldReason;
use crate::rel_path::RelPath;
use camino::Utf8Path;
use std::collections::BTreeMap;

/// First line of a v3 manifest.
pub const MAGIC_V3: &str = "ferry manifest v3";
/// Most bases one delta may name (formats/delta-v1.md D1).
pub const MAX_BASES: usize = 64;
/// The optional header fields this reader knows, in the order they must
/// appear (formats/manifest-v3.md §3).
pub const FIELDS: &[&str] = &["patches", "policy"];

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

    /// The patch of `path` from no bytes, when the delta carries it
    /// compressed (formats/delta-v1.md D2a).
    pub fn compressed(&self, path: &str) -> Option<&PatchLine> {
        self.patch_for(path, &crate::delta::patch::FROM_NOTHING)
    }

    /// Whether the medium gives the content of `path` whatever a base
    /// holds there: carried whole, or compressed (D2a).
    pub fn serves_any_base(&self, path: &str) -> bool {
        match self.carry_of(path) {
            Carry::Whole => true,
            Carry::Base => false,
            Carry::Patched => self.compressed(path).is_some(),
        }
    }
}

/// The approval status a policy gave a shipped file (flags `a`, `u`,
/// formats/policy-v1.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Its component is approved (flag `a`).
    Approved,
    /// Its component is undefined and ships (flag `u`).
    Undefined,
}

/// One `held REASON PATH` line: a file of the source the export held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLine {
    /// Why it was held.
    pub reason: HoldReason,
    /// The file.
    pub path: RelPath,
}

/// The `policy` section (formats/policy-v1.md §6): what the export decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicySection {
    /// `scope partial`: the patterns the export covered (`--only`,
    /// `--inventory`); `None` for `scope full`.
    pub covers: Option<Vec<String>>,
    /// Files held back, strictly ascending by path.
    pub held: Vec<HeldLine>,
    /// The status of each file exported with a policy, by path.
    pub approval: BTreeMap<String, Approval>,
}

impl PolicySection {
    /// Whether `path` is held back as declined (PS5).
    pub fn declines(&self, path: &str) -> bool {
        self.held
            .binary_search_by(|h| h.path.as_str().as_bytes().cmp(path.as_bytes()))
            .is_ok_and(|at| self.held[at].reason == HoldReason::Declined)
    }

    /// The section's lines, without the trailing newlines.
    fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.covers {
            None => lines.push("scope full".to_owned()),
            Some(patterns) => {
                lines.push("scope partial".to_owned());
                lines.extend(patterns.iter().map(|p| format!("covers {p}")));
            }
        }
        lines.extend(self.held.iter().map(|h| format!("held {} {}", h.reason.as_str(), h.path)));
        lines
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
    /// Present when the export used a policy or a partial selection.
    pub policy: Option<PolicySection>,
}

impl From<Manifest> for SnapshotManifest {
    fn from(manifest: Manifest) -> Self {
        SnapshotManifest { manifest, delta: None, policy: None }
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
        if self.delta.is_none() && self.policy.is_none() {
            return self.manifest.encode();
        }
        let (m, none) = (&self.manifest, Delta::default());
        let delta = self.delta.as_ref().unwrap_or(&none);
        let policy_lines = self.policy.as_ref().map(PolicySection::lines).unwrap_or_default();
        let mut out = format!("{MAGIC_V3}\nrepository: {}\nsequence: {}\n", m.repository, m.sequence);
        out.push_str(&format!("created: {}\n", crate::clock::format(m.created)));
        out.push_str(&format!("expires: {}\n", m.expires.map_or("never".to_owned(), crate::clock::format)));
        let bases: Vec<String> = delta.bases.iter().map(Digest::to_hex).collect();
        let bases = if bases.is_empty() { "none".to_owned() } else { bases.join(" ") };
        out.push_str(&format!("layout: {}\nbase: {bases}\n", m.layout.name()));
        out.push_str(&format!("volumes: {}\n", m.layout.volumes().len()));
        if !delta.patches.is_empty() {
            out.push_str(&format!("patches: {}\n", delta.patches.len()));
        }
        if !policy_lines.is_empty() {
            out.push_str(&format!("policy: {}\n", policy_lines.len()));
        }
        out.push_str(&format!("entries: {}\n", m.entries.len()));
        for volume in m.layout.volumes() {
            out.push_str(&format!("volume {} {}\n", volume.size, volume.digest));
        }
        for patch in &delta.patches {
            out.push_str(&format!("patch {} {} {} {}\n", patch.size, patch.digest, patch.from, patch.path));
        }
        for line in policy_lines {
            out.push_str(&line);
            out.push('\n');
        }
        for entry in &m.entries {
            let EntryKind::File(file) = &entry.kind else {
                out.push_str(&format!("dir {}\n", entry.path));
                continue;
            };
            let out_flags = self.flags(entry.path.as_str(), file.executable, file.index);
            out.push_str(&format!("file {} {} {out_flags} {}\n", file.size, file.digest, entry.path));
        }
        out.into_bytes()
    }

    /// The flags field of a file entry: v1 flags, then each section's letter.
    fn flags(&self, path: &str, executable: bool, index: bool) -> String {
        let mut flags = String::new();
        flags.extend([(executable, 'x'), (index, 'i')].iter().filter(|(on, _)| *on).map(|(_, c)| c));
        match self.delta.as_ref().map(|d| d.carry_of(path)) {
            Some(Carry::Base) => flags.push('b'),
            Some(Carry::Patched) => flags.push('p'),
            _ => {}
        }
        match self.policy.as_ref().and_then(|p| p.approval.get(path)) {
            Some(Approval::Approved) => flags.push('a'),
            Some(Approval::Undefined) => flags.push('u'),
            None => {}
        }
        if flags.is_empty() {
            flags.push('-');
        }
        flags
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
        let (delta, policy) =
            decode_sections(&lines, &mut v2).map_err(|(n, e)| Error::format(origin, format!("line {n}: {e}")))?;
        let manifest = Manifest::decode(v2.text.as_bytes(), origin).map_err(|e| v2.renumber(e))?;
        // A v3 without delta additions is a full snapshot with other sections.
        let is_delta = !(delta.bases.is_empty() && delta.carry.is_empty() && delta.patches.is_empty());
        let delta = (is_delta || policy.is_none()).then_some(delta);
        let snapshot = SnapshotManifest { manifest, delta, policy };
        snapshot.check().map_err(|problem| Error::format(origin, problem))?;
        Ok(snapshot)
    }

    /// The v3 rules [`Manifest::decode`] cannot know (manifest-v3.md §4,
    /// delta-v1.md D2, D3).
    fn check(&self) -> Result<(), String> {
        if let Some(policy) = &self.policy {
            check_policy(policy, &self.manifest, self.delta.as_ref())?;
        }
        let Some(delta) = &self.delta else { return Ok(()) };
        if delta.bases.is_empty() {
            if !delta.carry.is_empty() || !delta.patches.is_empty() {
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
            let lines = delta.patches.iter().filter(|p| p.path.as_str() == path).count();
            if *carry == Carry::Patched && lines == 0 {
                return Err(format!("`{path}` is a `p` file without a patch line"));
            }
            if lines > 1 && delta.compressed(path).is_some() {
                return Err(format!("`{path}` is compressed (a patch from no bytes) and has other patch lines"));
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
fn decode_sections(lines: &[&str], v2: &mut V2Text) -> Result<(Delta, Option<PolicySection>), LineError> {
    let (mut delta, mut policy) = (Delta::default(), None);
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
    if let Some(count) = counts.get(&1) {
        let mut section = PolicySection::default();
        for at in 0..*count {
            let line =
                lines.get(n - 1).ok_or_else(|| (n, format!("ends before the {count} policy lines announced")))?;
            parse_policy_line(line, at, &mut section).map_err(|e| (n, e))?;
            n += 1;
        }
        if section.covers.as_ref().is_some_and(Vec::is_empty) {
            return Err((n - 1, "`scope partial` needs `covers PATTERN` lines (PS2)".into()));
        }
        policy = Some(section);
    }
    let mut approval = BTreeMap::new();
    for (index, line) in lines.iter().enumerate().skip(n - 1) {
        let kept = strip_flags(line, &mut delta.carry, &mut approval).map_err(|e| (index + 1, e))?;
        v2.push(&kept, index + 1);
    }
    match &mut policy {
        Some(section) => section.approval = approval,
        None if !approval.is_empty() => {
            return Err((n, "flags `a` and `u` need the `policy` section (PS4)".into()));
        }
        None => {}
    }
    Ok((delta, policy))
}

/// One line of the `policy` section, the `at`-th (formats/policy-v1.md §6).
fn parse_policy_line(line: &str, at: u64, section: &mut PolicySection) -> Result<(), String> {
    let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
    match (kind, at) {
        ("scope", 0) if rest == "full" => section.covers = None,
        ("scope", 0) if rest == "partial" => section.covers = Some(Vec::new()),
        (_, 0) => return Err(format!("expected `scope full` or `scope partial`, found `{}` (PS1)", shown(line))),
        ("covers", _) => match &mut section.covers {
            Some(patterns) if section.held.is_empty() && !rest.is_empty() => patterns.push(rest.to_owned()),
            _ => return Err(format!("`{}`: `covers` only right after `scope partial` (PS2)", shown(line))),
        },
        ("held", _) => {
            let (reason, path) = rest.split_once(' ').unwrap_or((rest, ""));
            let reason = match reason {
                "declined" => HoldReason::Declined,
                "eula-not-accepted" => HoldReason::EulaNotAccepted,
                "undefined" => HoldReason::Undefined,
                _ => return Err(format!("`{}` is not a hold reason (PS3)", shown(reason))),
            };
            let path = RelPath::new(path)?;
            if section.held.last().is_some_and(|last| last.path.as_str().as_bytes() >= path.as_str().as_bytes()) {
                return Err(format!("held `{path}` out of order or repeated (PS3)"));
            }
            section.held.push(HeldLine { reason, path });
        }
        _ => return Err(format!("expected `covers PATTERN` or `held REASON PATH`, found `{}`", shown(line))),
    }
    Ok(())
}

/// What the policy section says against the entries (PS3): a held path is
/// an entry only when it is kept from the bases (a `b` file) and not declined.
fn check_policy(policy: &PolicySection, manifest: &Manifest, delta: Option<&Delta>) -> Result<(), String> {
    // Entries are sorted by path bytes: bisect rather than copy a million paths into a set.
    let listed =
        |path: &str| manifest.entries.binary_search_by(|e| e.path.as_str().as_bytes().cmp(path.as_bytes())).is_ok();
    let kept = |path: &str| delta.is_some_and(|d| d.carry_of(path) == Carry::Base);
    let listed_held = policy.held.iter().filter(|h| listed(h.path.as_str()));
    match listed_held.into_iter().find(|h| h.reason == HoldReason::Declined || !kept(h.path.as_str())) {
        Some(held) => Err(format!("`{}` is both held and an entry that is not kept from the base (PS3)", held.path)),
        None => Ok(()),
    }
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
fn strip_flags(
    line: &str,
    carry: &mut BTreeMap<String, Carry>,
    approval: &mut BTreeMap<String, Approval>,
) -> Result<String, String> {
    let mut fields = line.splitn(5, ' ');
    let (Some("file"), Some(size), Some(digest), Some(flags), Some(path)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Ok(line.to_owned());
    };
    // Section letters come last, in registry order: the policy's, then the delta's.
    let mut kept = flags;
    let approved = match kept.as_bytes().last() {
        Some(b'a') => Some(Approval::Approved),
        Some(b'u') => Some(Approval::Undefined),
        _ => None,
    };
    kept = &kept[..kept.len() - usize::from(approved.is_some())];
    let carried = match kept.as_bytes().last() {
        Some(b'b') => Some(Carry::Base),
        Some(b'p') => Some(Carry::Patched),
        _ => None,
    };
    kept = &kept[..kept.len() - usize::from(carried.is_some())];
    if approved.is_none() && carried.is_none() {
        return Ok(line.to_owned());
    }
    if kept == "-" {
        return Err(format!("`{flags}` is not a flags field"));
    }
    let repeated = carried.is_some_and(|mark| carry.insert(path.to_owned(), mark).is_some())
        | approved.is_some_and(|mark| approval.insert(path.to_owned(), mark).is_some());
    if repeated {
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
        SnapshotManifest { manifest, delta: Some(delta), policy: None }
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

    fn with_policy(delta: bool) -> SnapshotManifest {
        let mut snapshot = sample();
        if !delta {
            snapshot.delta = None;
        }
        let held = |reason, p: &str| HeldLine { reason, path: RelPath::new(p).unwrap() };
        snapshot.policy = Some(PolicySection {
            covers: Some(vec!["bases".into(), "index.xml".into()]),
            held: vec![held(HoldReason::Declined, "bases/beta.cvd"), held(HoldReason::EulaNotAccepted, "z/eula.bin")],
            approval: [
                ("bases/main.cvd".to_owned(), Approval::Approved),
                ("index.xml".to_owned(), Approval::Undefined),
            ]
            .into(),
        });
        snapshot
    }

    #[test]
    fn the_policy_section_alone_and_with_a_delta() {
        let full = with_policy(false);
        let bytes = full.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("base: none\nvolumes: 1\npolicy: 5\nentries: 4\n"), "{text}");
        assert!(text.contains("scope partial\ncovers bases\ncovers index.xml\nheld declined bases/beta.cvd\n"));
        assert!(text.contains(" xa bases/main.cvd\n") && text.contains(" u index.xml\n"), "{text}");
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded, full);
        let policy = decoded.policy.as_ref().unwrap();
        assert!(policy.declines("bases/beta.cvd") && !policy.declines("z/eula.bin") && !policy.declines("x"));
        let both = with_policy(true);
        let both_text = String::from_utf8(both.encode()).unwrap();
        assert!(both_text.contains("patches: 2\npolicy: 5\n") && both_text.contains(" xba bases/main.cvd\n"));
        assert_eq!(decode(both_text.as_bytes()).unwrap(), both);
        let cases = [
            (text.replace("scope partial\n", "scope whole\n"), "expected `scope full` or `scope partial`"),
            (text.replace("scope partial", "scope full"), "only right after `scope partial`"),
            (text.replace("policy: 5", "policy: 1"), "needs `covers PATTERN` lines"),
            (text.replace("held declined", "held maybe"), "`maybe` is not a hold reason"),
            (text.replace("held declined bases/beta.cvd", "held declined zz"), "out of order or repeated"),
            (text.replace("held declined bases/beta.cvd", "held declined bases/main.cvd"), "both held and an entry"),
            (text.replace(" u index.xml", " -u index.xml"), "not a flags field"),
            (text.replace("policy: 5", "policy: 6"), "expected `covers PATTERN` or `held REASON PATH`"),
        ];
        for (bad, expected) in cases {
            let error = decode(bad.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
        let flags_only = text.replace("policy: 5\n", "").replace("scope partial\ncovers bases\ncovers index.xml\nheld declined bases/beta.cvd\nheld eula-not-accepted z/eula.bin\n", "");
        assert!(decode(flags_only.as_bytes()).unwrap_err().to_string().contains("need the `policy` section"));
    }
}
