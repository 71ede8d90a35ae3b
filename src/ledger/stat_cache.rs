//! The stat cache of a repository's ledger (formats/ledger-v1.md §8): what
//! each file of the last export looked like when it was hashed, so that a
//! delta export does not read unchanged files again (as git's index and
//! restic's parent snapshot do).

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::RepositoryId;
use crate::rel_path::RelPath;
use crate::scan::Stamp;
use camino::Utf8Path;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// Name of the stat cache file in a repository's ledger folder (§8).
pub const STAT_CACHE_FILE: &str = "stat-cache";
/// First line of the stat cache (§8).
pub const STAT_CACHE_MAGIC: &str = "ferry stat cache v1";
/// Largest stat cache ferry reads (§8, C9).
pub const MAX_STAT_CACHE_BYTES: u64 = 256 * 1024 * 1024;
/// A file changed this close to the scan is not cached (§8 S3): it covers
/// FAT's 2-second timestamps and the kernel's coarse clock.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Stat data and SHA-256 of the files of the last export (§8 S1).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StatCache {
    entries: HashMap<RelPath, (Stamp, Digest)>,
}

impl StatCache {
    /// The SHA-256 recorded for `path` if the file still has exactly the
    /// stat data it had when it was hashed (§8 S2).
    pub fn lookup(&self, path: &RelPath, now: &Stamp) -> Option<Digest> {
        self.entries.get(path).filter(|(stamp, _)| stamp == now).map(|(_, digest)| *digest)
    }

    /// How many files the cache knows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache knows no file.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cache of the files `files` (path, stat data at the scan, SHA-256),
    /// leaving out those changed within [`RACY_WINDOW`] of `hashed_at` or
    /// dated before 1970 (§8 S3).
    pub fn of<'a>(files: impl IntoIterator<Item = CachedFile<'a>>, hashed_at: SystemTime) -> Self {
        let entries = files
            .into_iter()
            .filter(|(_, stamp, _)| cacheable(stamp, hashed_at))
            .map(|(path, stamp, digest)| (path.clone(), (stamp, digest)))
            .collect();
        StatCache { entries }
    }

    /// Encodes the cache of `repository` (§8 grammar), entries sorted by path.
    pub fn encode(&self, repository: &RepositoryId) -> Vec<u8> {
        let mut paths: Vec<&RelPath> = self.entries.keys().collect();
        paths.sort_by(|a, b| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
        let mut out = Vec::with_capacity(paths.iter().map(|path| 150 + path.as_str().len()).sum());
        let files = paths.iter().map(|path| {
            let (stamp, digest) = self.entries[*path];
            (*path, stamp, digest)
        });
        // Writing to a Vec cannot fail.
        let _ = write_cache(&mut out, repository, self.entries.len(), files);
        out
    }

    /// Decodes a cache read from `origin`, checking that it belongs to
    /// `repository` (§8 grammar, S1).
    pub fn decode(bytes: &[u8], origin: &Utf8Path, repository: &RepositoryId) -> Result<Self> {
        if bytes.len() as u64 > MAX_STAT_CACHE_BYTES {
            return Err(Error::format(origin, format!("larger than the {MAX_STAT_CACHE_BYTES}-byte limit")));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| Error::format(origin, "not UTF-8"))?;
        let mut reader = crate::lines::KeyValueLines::new(text, origin, STAT_CACHE_MAGIC)?;
        let named = reader.value("repository")?;
        if named != repository.as_str() {
            return Err(Error::format(
                origin,
                format!("line 2: the cache is of another repository, not `{repository}`"),
            ));
        }
        let count = reader.value("entries")?;
        let count = super::index::parse_number(count)
            .ok_or_else(|| Error::format(origin, "line 3: `entries` is not a number"))?;
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<&str> = body.split('\n').skip(3).collect();
        if lines.len() as u64 != count {
            return Err(Error::format(origin, format!("{} entry lines, `entries` says {count}", lines.len())));
        }
        let mut entries = HashMap::with_capacity(lines.len());
        let mut previous: Option<RelPath> = None;
        for (index, line) in lines.into_iter().enumerate() {
            let at = |problem: String| Error::format(origin, format!("line {}: {problem}", index + 4));
            let (path, entry) = parse_entry(line).map_err(at)?;
            if previous.as_ref().is_some_and(|p| p.as_str().as_bytes() >= path.as_str().as_bytes()) {
                return Err(at("paths out of order or repeated".into()));
            }
            previous = Some(path.clone());
            entries.insert(path, entry);
        }
        Ok(StatCache { entries })
    }
}

/// One file of a cache: its path, its stat data at the scan, its SHA-256.
pub type CachedFile<'a> = (&'a RelPath, Stamp, Digest);

/// Whether a file with the stat data `stamp`, scanned at `hashed_at`, may
/// be cached: not changed within [`RACY_WINDOW`] before the scan, and not
/// dated before 1970 (§8 S3).
pub fn cacheable(stamp: &Stamp, hashed_at: SystemTime) -> bool {
    let limit = hashed_at.checked_sub(RACY_WINDOW).unwrap_or(SystemTime::UNIX_EPOCH);
    settled(stamp.modified, limit) && settled(stamp.changed, limit)
}

/// Writes a cache of `repository` (§8 grammar): the header, then one line
/// for each of the `count` files of `files`, which are [`cacheable`] and
/// sorted by path bytes. Streamed: the lines of a million files are never
/// held in memory (issue 14).
pub fn write_cache<'a>(
    out: &mut dyn Write,
    repository: &RepositoryId,
    count: usize,
    files: impl Iterator<Item = CachedFile<'a>>,
) -> std::io::Result<()> {
    write!(out, "{STAT_CACHE_MAGIC}\nrepository: {repository}\nentries: {count}\n")?;
    for (path, stamp, digest) in files {
        let (device, inode) = stamp.identity;
        let ((m, mn), (c, cn)) = (stamp.modified, stamp.changed);
        writeln!(out, "{} {m}.{mn:09} {c}.{cn:09} {device} {inode} {digest} {path}", stamp.size)?;
    }
    Ok(())
}

/// Whether a file time is old enough to be cached: at or after 1970 and
/// before `limit` (§8 S3).
fn settled((seconds, nanos): (i64, i64), limit: SystemTime) -> bool {
    let (Ok(seconds), Ok(nanos)) = (u64::try_from(seconds), u32::try_from(nanos)) else { return false };
    SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos) < limit
}

fn parse_time(text: &str) -> Option<(i64, i64)> {
    let (seconds, nanos) = text.split_once('.')?;
    let seconds = i64::try_from(super::index::parse_number(seconds)?).ok()?;
    let valid = nanos.len() == 9 && nanos.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| nanos.parse().ok().map(|nanos| (seconds, nanos))).flatten()
}

fn parse_entry(line: &str) -> Result<(RelPath, (Stamp, Digest)), String> {
    let mut fields = line.splitn(7, ' ');
    let mut next = |what: &str| fields.next().ok_or_else(|| format!("ends before the {what}"));
    let number = |text: &str, what: &str| super::index::parse_number(text).ok_or_else(|| format!("bad {what}"));
    let size = number(next("size")?, "size")?;
    let modified = parse_time(next("modification time")?).ok_or("bad modification time")?;
    let changed = parse_time(next("change time")?).ok_or("bad change time")?;
    let device = number(next("device")?, "device")?;
    let inode = number(next("inode")?, "inode")?;
    let digest = Digest::from_hex(next("SHA-256")?).ok_or("bad SHA-256")?;
    let path = RelPath::new(next("path")?)?;
    Ok((path, (Stamp { size, modified, changed, identity: (device, inode) }, digest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(size: u64, seconds: i64) -> Stamp {
        Stamp { size, modified: (seconds, 5), changed: (seconds, 7), identity: (2049, 1234) }
    }

    #[test]
    fn round_trip_hits_misses_and_racy_entries() {
        let repository = RepositoryId::new("av").unwrap();
        let (a, b, c) = (RelPath::new("a b/c.dat").unwrap(), RelPath::new("a").unwrap(), RelPath::new("z").unwrap());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let files = [(&a, stamp(3, 900_000), Digest([1; 32])), (&b, stamp(4, 900_001), Digest([2; 32]))];
        // `c` changed within the window before the scan: never cached.
        let racy = (&c, stamp(5, 999_999), Digest([3; 32]));
        let cache = StatCache::of(files.into_iter().chain([racy]), now);
        assert_eq!(cache.len(), 2);
        let bytes = cache.encode(&repository);
        let decoded = StatCache::decode(&bytes, Utf8Path::new("stat-cache"), &repository).unwrap();
        assert_eq!(decoded, cache);
        assert_eq!(decoded.lookup(&a, &stamp(3, 900_000)), Some(Digest([1; 32])));
        assert_eq!(decoded.lookup(&c, &stamp(5, 999_999)), None);
        let other_ctime = Stamp { changed: (900_000, 8), ..stamp(3, 900_000) };
        assert_eq!(decoded.lookup(&a, &other_ctime), None, "a restored mtime leaves a new ctime");
        assert_eq!(decoded.lookup(&a, &Stamp { identity: (2049, 1), ..stamp(3, 900_000) }), None);
    }

    #[test]
    fn damaged_caches_are_refused() {
        let repository = RepositoryId::new("av").unwrap();
        let path = RelPath::new("f").unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let cache = StatCache::of([(&path, stamp(3, 5), Digest([1; 32]))], now);
        let text = String::from_utf8(cache.encode(&repository)).unwrap();
        let cases = [
            (text.replace("cache v1", "cache v2"), "expected `ferry stat cache v1`"),
            (text.replace("repository: av", "repository: bv"), "another repository"),
            (text.replace("entries: 1", "entries: 2"), "`entries` says 2"),
            (text.replace(".000000005", ".5"), "bad modification time"),
            (text.replace(" 1234 ", " x "), "bad inode"),
            (text.replace(" f\n", " ../f\n"), "line 4"),
            (format!("{text}{}\n", text.lines().last().unwrap()).replace("entries: 1", "entries: 2"), "out of order"),
            (text.trim_end().to_owned(), "newline"),
        ];
        for (bad, expected) in cases {
            let error = StatCache::decode(bad.as_bytes(), Utf8Path::new("stat-cache"), &repository);
            let error = error.unwrap_err().to_string();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }
}
