//! What a drive's filesystem can hold, checked before export writes a byte.
//!
//! Update drives are usually FAT32, exFAT or NTFS, formatted for Windows.
//! Those filesystems refuse or quietly mangle things a Linux folder holds
//! without complaint: on FAT32 a second name that differs only in case
//! overwrites the first, a full disk can show up as EPERM after a partial
//! file, and a 4 GiB file can be left empty (see the field notes). A drive
//! found half-written on the isolated side costs a trip, so export asks
//! [`check_fit`] first and refuses with the whole list of problems.

use crate::error::{Error, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::unix::fs::MetadataExt;

/// Filesystem kind of a drive, as detected or given with --target-fs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveFs {
    /// FAT32 (FAT12 and FAT16 too: their limits are no looser).
    Fat32,
    /// exFAT.
    Exfat,
    /// NTFS.
    Ntfs,
    /// Any other filesystem: only Linux's own limits apply.
    Any,
}

impl DriveFs {
    /// Largest single file the filesystem holds (FAT32: 4 GiB - 1; others u64::MAX).
    pub fn max_file_size(self) -> u64 {
        match self {
            DriveFs::Fat32 => u64::from(u32::MAX),
            DriveFs::Exfat | DriveFs::Ntfs | DriveFs::Any => u64::MAX,
        }
    }

    /// Whether names that differ only in case collide.
    pub fn case_insensitive(self) -> bool {
        // NTFS can be mounted case-sensitive on Linux, but the drive will be
        // read by Windows tools too, which see one of the two names.
        self != DriveFs::Any
    }

    /// The name to use in messages: "FAT32", "exFAT", "NTFS".
    pub fn name(self) -> &'static str {
        match self {
            DriveFs::Fat32 => "FAT32",
            DriveFs::Exfat => "exFAT",
            DriveFs::Ntfs => "NTFS",
            DriveFs::Any => "this filesystem",
        }
    }

    /// Whether Windows' naming rules (forbidden characters, device names,
    /// MAX_PATH) apply.
    fn windows_names(self) -> bool {
        self != DriveFs::Any
    }
}

impl fmt::Display for DriveFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const MSDOS_SUPER_MAGIC: u32 = 0x4d44;
const EXFAT_SUPER_MAGIC: u32 = 0x2011_bab0;
const NTFS_SB_MAGIC: u32 = 0x5346_544e;
const NTFS3_SUPER_MAGIC: u32 = 0x7366_746e;
const FUSE_SUPER_MAGIC: u32 = 0x6573_5546;

/// Detects the filesystem holding `path` (its nearest existing ancestor, so
/// the media folder need not exist yet): FAT, exFAT and NTFS by the statfs
/// magic (kernel vfat/msdos, exfat, ntfs3), FUSE mounts by their type in
/// /proc/self/mountinfo (fusefat shows as `fuse.fusefat`, ntfs-3g as
/// `fuseblk`). Anything else, or a failure to tell, is [`DriveFs::Any`].
pub fn detect(path: &Utf8Path) -> DriveFs {
    let existing = resolve(path).0;
    let Ok(stat) = rustix::fs::statfs(existing.as_std_path()) else {
        return DriveFs::Any;
    };
    // f_type is a 32-bit magic stored in a wider, signed field.
    match stat.f_type as u32 {
        MSDOS_SUPER_MAGIC => DriveFs::Fat32,
        EXFAT_SUPER_MAGIC => DriveFs::Exfat,
        NTFS_SB_MAGIC | NTFS3_SUPER_MAGIC => DriveFs::Ntfs,
        // Every FUSE filesystem shares one magic; only the mount table
        // says which daemon serves it.
        FUSE_SUPER_MAGIC => std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|table| mount_for(&table, &existing))
            .map_or(DriveFs::Any, |mount| fs_from_type_name(&mount.fs_type)),
        _ => DriveFs::Any,
    }
}

/// Maps a mount table type (`vfat`, `fuse.fusefat`, `fuseblk`, ...) to a kind.
fn fs_from_type_name(fs_type: &str) -> DriveFs {
    let name = fs_type.strip_prefix("fuseblk.").or_else(|| fs_type.strip_prefix("fuse.")).unwrap_or(fs_type);
    let name = name.to_ascii_lowercase();
    if name.contains("exfat") {
        DriveFs::Exfat
    } else if name.contains("ntfs") {
        DriveFs::Ntfs
    } else if name.contains("fat") || name == "msdos" {
        DriveFs::Fat32
    } else if name == "fuseblk" {
        // A block-device FUSE mount without a subtype is ntfs-3g (or an old
        // exfat-fuse); both follow the same name rules and size limits.
        DriveFs::Ntfs
    } else {
        DriveFs::Any
    }
}

/// One line of /proc/self/mountinfo that matters here.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    point: Utf8PathBuf,
    fs_type: String,
}

/// The mount that holds the absolute, symlink-free `path`: the longest
/// mount point above it, the later line winning when one point is mounted
/// over another.
fn mount_for(table: &str, path: &Utf8Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in table.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let (Some(point), Some(fs_type)) = (left.split(' ').nth(4), right.split(' ').next()) else { continue };
        let point = Utf8PathBuf::from(unescape_octal(point));
        let longer = best.as_ref().is_none_or(|b| point.as_str().len() >= b.point.as_str().len());
        if path.starts_with(&point) && longer {
            best = Some(Mount { point, fs_type: fs_type.to_owned() });
        }
    }
    best
}

/// Undoes the kernel's `\040`-style escaping of spaces, tabs, newlines and
/// backslashes in mount table paths.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\'
            && let Some(value) = digits
                .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
                .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok())
        {
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `path` into its nearest existing ancestor, made absolute and
/// symlink-free, and the same path rebuilt on top of it (the media folder
/// need not exist yet).
fn resolve(path: &Utf8Path) -> (Utf8PathBuf, Utf8PathBuf) {
    let mut missing = Vec::new();
    let mut current = path;
    loop {
        if let Ok(real) = current.canonicalize_utf8() {
            let mut full = real.clone();
            full.extend(missing.iter().rev());
            return (real, full);
        }
        match (current.parent(), current.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name);
                current = if parent.as_str().is_empty() { Utf8Path::new(".") } else { parent };
            }
            _ => return (path.to_owned(), path.to_owned()),
        }
    }
}

/// What export will write on the drive: paths relative to the drive folder given by the operator, with sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedWrite<'a> {
    /// Path below the media folder, `/`-separated.
    pub path: &'a str,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// Whether this is a folder.
    pub is_dir: bool,
}

/// Checks, before anything is written, that everything fits on the drive at
/// `media` formatted as `fs`: free space (with an allowance for cluster
/// rounding and folder entries), the largest file, names that differ only
/// in case (among the writes and against what is already on the drive),
/// names the filesystem or Windows forbid, and path length.
///
/// Returns [`Error::DriveUnfit`] listing every problem, one line each,
/// naming the path and the limit.
pub fn check_fit<'a>(media: &Utf8Path, fs: DriveFs, writes: impl IntoIterator<Item = PlannedWrite<'a>>) -> Result<()> {
    let entries = entries_of(writes);
    let mut problems = limit_problems(media, fs, &entries);
    let (existing, _) = resolve(media);
    if let Some(space) = free_space(&existing, fs)? {
        let needed = space_needed(&entries, space.cluster);
        if needed > space.free {
            problems.push(format!(
                "`{media}`: needs {} more: {} to write (counted in {} clusters), {} free",
                crate::report::human_bytes(needed - space.free),
                crate::report::human_bytes(needed),
                crate::report::human_bytes(space.cluster),
                crate::report::human_bytes(space.free)
            ));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(Error::DriveUnfit { media: media.to_owned(), problems }) }
}

/// [`check_fit`] without the free space: for writes whose room the caller
/// has already budgeted (tar volumes sized to what each drive has free).
pub fn check_limits<'a>(
    media: &Utf8Path,
    fs: DriveFs,
    writes: impl IntoIterator<Item = PlannedWrite<'a>>,
) -> Result<()> {
    let problems = limit_problems(media, fs, &entries_of(writes));
    if problems.is_empty() { Ok(()) } else { Err(Error::DriveUnfit { media: media.to_owned(), problems }) }
}

/// Everything [`check_fit`] checks but free space, one line per problem.
fn limit_problems(media: &Utf8Path, fs: DriveFs, entries: &Planned<'_>) -> Vec<String> {
    let (existing, media_abs) = resolve(media);
    let mount_table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mount = mount_for(&mount_table, &existing);
    // fusefat (FAT through FUSE where the kernel has no vfat) refuses every
    // non-ASCII name with EPERM, although FAT32 itself stores them.
    let ascii_only = mount.as_ref().is_some_and(|m| m.fs_type == "fuse.fusefat");
    let mut problems = Vec::new();

    for (path, entry) in entries {
        let name = path.rsplit('/').next().unwrap_or(path);
        problems.extend(name_problems(name, fs).into_iter().map(|problem| format!("`{path}`: {problem}")));
        if ascii_only && !name.is_ascii() {
            problems.push(format!(
                "`{path}`: name is not ASCII; fusefat, which this drive is mounted with, refuses such names \
                 (the kernel's vfat driver takes them)"
            ));
        }
        if !entry.is_dir && entry.size > fs.max_file_size() {
            problems.push(format!(
                "`{path}`: {} ({} bytes); {fs} holds files up to 4 GiB - 1 byte ({} bytes)",
                crate::report::human_bytes(entry.size),
                entry.size,
                fs.max_file_size()
            ));
        }
    }

    if fs.case_insensitive() {
        let mut collided = BTreeSet::new();
        for (a, b) in case_collisions(entries.keys().map(|k| k.as_ref())) {
            problems.push(format!(
                "`{a}` and `{b}` differ only in case; {fs} keeps one name, so one would overwrite the other"
            ));
            collided.extend([a, b]);
        }
        problems.extend(collisions_on_drive(&media_abs, entries, &collided, fs));
    }

    let drive_root = mount.map_or(media_abs.clone(), |mount| mount.point);
    problems.extend(path_length_problems(&media_abs, &drive_root, entries.keys().map(|k| k.as_ref()), fs));
    problems
}

/// A planned entry: size, or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    size: u64,
    is_dir: bool,
}

/// Every planned path plus the folders implied above it, in sorted order
/// (a folder before what it holds).
fn entries_of<'a>(writes: impl IntoIterator<Item = PlannedWrite<'a>>) -> Planned<'a> {
    let mut entries = BTreeMap::new();
    for write in writes {
        // Paths are borrowed, not copied, unless they need tidying: a tree
        // of a million files is planned here (issue 14).
        let tidy = write.path.split('/').all(|c| !c.is_empty() && c != ".");
        let path: Cow<'a, str> = match tidy {
            true => Cow::Borrowed(write.path),
            false => {
                Cow::Owned(write.path.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/"))
            }
        };
        let mut parent = path.clone();
        while let Some(above) = parent_of(&parent) {
            if entries.contains_key(above.as_ref()) {
                break;
            }
            entries.insert(above.clone(), Entry { size: 0, is_dir: true });
            parent = above;
        }
        if !path.is_empty() {
            entries.insert(path, Entry { size: write.size, is_dir: write.is_dir });
        }
    }
    entries
}

/// Every planned entry by path: borrowed from the plan where it can be.
type Planned<'a> = BTreeMap<Cow<'a, str>, Entry>;

/// The folder holding `path`, borrowed when `path` is.
fn parent_of<'a>(path: &Cow<'a, str>) -> Option<Cow<'a, str>> {
    match path {
        Cow::Borrowed(text) => text.rsplit_once('/').map(|(above, _)| Cow::Borrowed(above)),
        Cow::Owned(text) => text.rsplit_once('/').map(|(above, _)| Cow::Owned(above.to_owned())),
    }
}

/// What is wrong with one path component on `fs`, one message each.
fn name_problems(name: &str, fs: DriveFs) -> Vec<String> {
    let mut problems = Vec::new();
    if !fs.windows_names() {
        if name.len() > 255 {
            problems.push(format!("name is {} bytes; Linux allows 255", name.len()));
        }
        return problems;
    }
    let forbidden: BTreeSet<String> = name
        .chars()
        .filter(|c| "<>:\"\\|?*".contains(*c) || c.is_control())
        .map(|c| if c.is_control() { format!("{:?}", c) } else { c.to_string() })
        .collect();
    if !forbidden.is_empty() {
        let shown = forbidden.into_iter().collect::<Vec<_>>().join(" ");
        problems.push(format!("name contains {shown}; {fs} forbids < > : \" \\ | ? * and control characters"));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        problems.push(format!("name ends with a dot or space, which {fs} drops on Windows"));
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    if crate::rel_path::is_windows_device(stem) {
        problems.push(format!(
            "`{stem}` is a Windows device name (CON PRN AUX NUL CONIN$ CONOUT$ COM0-9 LPT0-9, with any extension)"
        ));
    }
    let units = name.encode_utf16().count();
    if units > 255 {
        problems.push(format!("name is {units} UTF-16 units long; {fs} allows 255"));
    }
    problems
}

/// Pairs of paths that differ only in case, with identical parents (a pair
/// of colliding folders is reported once, not again for everything inside).
fn case_collisions<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut groups: BTreeMap<(&str, String), Vec<&str>> = BTreeMap::new();
    for path in paths {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let names = groups.entry((parent, name.to_lowercase())).or_default();
        if !names.contains(&path) {
            names.push(path);
        }
    }
    let mut pairs = Vec::new();
    for names in groups.values() {
        for other in names.iter().skip(1) {
            pairs.push((names[0].to_owned(), (*other).to_owned()));
        }
    }
    pairs
}

/// Planned names that differ only in case from a name already in the same
/// folder on the drive. Folders below a reported collision are skipped:
/// their contents would be reported twice.
fn collisions_on_drive(
    media: &Utf8Path,
    entries: &Planned<'_>,
    collided: &BTreeSet<String>,
    fs: DriveFs,
) -> Vec<String> {
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for path in entries.keys() {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        children.entry(parent).or_default().push(name);
    }
    let mut collided = collided.clone();
    let mut problems = Vec::new();
    for (parent, names) in children {
        let below_collision =
            collided.iter().any(|c| parent == c || parent.strip_prefix(c.as_str()).is_some_and(|r| r.starts_with('/')));
        if below_collision {
            continue;
        }
        let folder = if parent.is_empty() { media.to_owned() } else { media.join(parent) };
        let Ok(listing) = folder.read_dir_utf8() else { continue };
        let on_drive: BTreeMap<String, String> = listing
            .filter_map(|entry| entry.ok())
            .map(|entry| (entry.file_name().to_lowercase(), entry.file_name().to_owned()))
            .collect();
        for name in names {
            if let Some(existing) = on_drive.get(&name.to_lowercase()).filter(|existing| existing.as_str() != name) {
                let path = if parent.is_empty() { name.to_owned() } else { format!("{parent}/{name}") };
                problems.push(format!(
                    "`{path}` and `{}`, already on the drive, differ only in case; \
                     {fs} keeps one name, so one would overwrite the other",
                    folder.join(existing)
                ));
                collided.insert(path);
            }
        }
    }
    problems
}

/// Linux's PATH_MAX, counting the terminating NUL.
const PATH_MAX: usize = 4096;
/// Windows' MAX_PATH (260) less `D:\` and the terminating NUL: what a path
/// below the drive's root may use so that Windows tools can open it.
const WINDOWS_PATH_UNITS: usize = 256;

/// Paths too long for Linux or, on Windows filesystems, for Windows; only
/// the shortest offending path of a branch is reported.
fn path_length_problems<'a>(
    media: &Utf8Path,
    drive_root: &Utf8Path,
    paths: impl Iterator<Item = &'a str>,
    fs: DriveFs,
) -> Vec<String> {
    let below_root = media.strip_prefix(drive_root).unwrap_or(media);
    let too_long = |path: &str| -> Option<String> {
        let absolute = media.join(path);
        if absolute.as_str().len() >= PATH_MAX {
            return Some(format!("path is {} bytes long; Linux allows {}", absolute.as_str().len(), PATH_MAX - 1));
        }
        let from_root = below_root.join(path);
        let units = from_root.as_str().encode_utf16().count();
        (fs.windows_names() && units > WINDOWS_PATH_UNITS).then(|| {
            format!(
                "path is {units} characters from the drive's root; \
                 Windows opens at most {WINDOWS_PATH_UNITS} (MAX_PATH)"
            )
        })
    };
    let mut problems = Vec::new();
    for path in paths {
        let parent_too_long = path.rsplit_once('/').is_some_and(|(parent, _)| too_long(parent).is_some());
        if let Some(problem) = too_long(path).filter(|_| !parent_too_long) {
            problems.push(format!("`{path}`: {problem}"));
        }
    }
    problems
}

/// Bytes that can still be written on the drive holding `media` (or its
/// nearest existing ancestor) formatted as `fs`; `None` when the filesystem
/// reports no capacity at all. Unlike plain statvfs this is right on
/// fusefat, which reports 0 blocks for drives with 512-byte clusters.
pub fn free_bytes(media: &Utf8Path, fs: DriveFs) -> Result<Option<u64>> {
    Ok(free_space(&resolve(media).0, fs)?.map(|space| space.free))
}

/// Free space and the unit it is handed out in.
#[derive(Debug, Clone, Copy)]
struct Space {
    free: u64,
    cluster: u64,
}

/// Free space on the filesystem holding `existing`; `None` when the
/// filesystem reports no capacity at all and there is nothing to check.
fn free_space(existing: &Utf8Path, fs: DriveFs) -> Result<Option<Space>> {
    let vfs = rustix::fs::statvfs(existing.as_std_path())
        .map_err(|e| Error::io("inspect the filesystem of", existing, e.into()))?;
    // FAT and exFAT report their cluster size as st_blksize, in the kernel
    // and in fusefat alike; fusefat's f_bsize is 1024 whatever the cluster.
    let blksize = existing.metadata().map(|m| m.blksize()).unwrap_or(0);
    let cluster = match fs {
        DriveFs::Fat32 | DriveFs::Exfat if blksize > 0 => blksize,
        _ => vfs.f_bsize.max(vfs.f_frsize).max(1),
    };
    let free = if vfs.f_blocks > 0 {
        vfs.f_bavail.saturating_mul(vfs.f_frsize)
    } else if fs == DriveFs::Fat32 && vfs.f_files > 0 {
        // fusefat counts blocks as clusters * (cluster size / 1024), which is
        // 0 for 512-byte clusters; its inode counts are the cluster counts.
        vfs.f_ffree.saturating_mul(cluster)
    } else {
        return Ok(None);
    };
    Ok(Some(Space { free, cluster }))
}

/// Bytes the entries take on the drive: every file rounded up to whole
/// clusters, every folder the clusters its FAT-style 32-byte entries fill
/// (one per 13 UTF-16 units of a long name, plus one). An allowance, not an
/// exact figure: other filesystems keep folders differently.
fn space_needed(entries: &Planned<'_>, cluster: u64) -> u64 {
    let round_up = |bytes: u64| bytes.div_ceil(cluster).saturating_mul(cluster);
    let mut folder_bytes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut total = 0u64;
    for (path, entry) in entries {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let slots = 1 + (name.encode_utf16().count() as u64).div_ceil(13);
        *folder_bytes.entry(parent).or_insert(64) += 32 * slots;
        if entry.is_dir {
            folder_bytes.entry(path).or_insert(64);
        } else {
            total = total.saturating_add(round_up(entry.size));
        }
    }
    folder_bytes.values().fold(total, |sum, bytes| sum.saturating_add(round_up(*bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &str, size: u64) -> PlannedWrite<'_> {
        PlannedWrite { path, size, is_dir: false }
    }

    #[test]
    fn windows_names_are_refused_on_windows_filesystems_only() {
        for bad in
            ["a:b.txt", "q?.txt", "x*", "pipe|", "lt<", "quote\"", "back\\slash", "tab\there", "trail.", "trail "]
        {
            assert!(!name_problems(bad, DriveFs::Fat32).is_empty(), "{bad:?} accepted on FAT32");
            assert!(name_problems(bad, DriveFs::Any).is_empty(), "{bad:?} refused on any");
        }
        for device in ["CON", "con", "Nul.txt", "com1", "LPT9.tar.gz", "aux .log", "PRN", "COM0"] {
            let problems = name_problems(device, DriveFs::Exfat);
            assert!(problems.iter().any(|p| p.contains("device name")), "{device:?}: {problems:?}");
        }
        for good in ["CONSOLE", "com10", "lpt", "nul_", "ünïcødé naïve.bin", ".hidden", "a.b.c"] {
            assert_eq!(name_problems(good, DriveFs::Ntfs), Vec::<String>::new(), "{good:?}");
        }
    }

    #[test]
    fn long_names_are_counted_in_utf16_units_on_windows_filesystems_and_bytes_on_linux() {
        let ascii = "a".repeat(255);
        assert!(name_problems(&ascii, DriveFs::Fat32).is_empty());
        assert!(name_problems(&ascii, DriveFs::Any).is_empty());
        let long = "a".repeat(256);
        assert!(name_problems(&long, DriveFs::Fat32)[0].contains("256 UTF-16 units"));
        assert!(name_problems(&long, DriveFs::Any)[0].contains("256 bytes"));
        // 200 two-byte characters: 400 bytes for Linux, 200 units for Windows.
        let umlauts = "ü".repeat(200);
        assert!(name_problems(&umlauts, DriveFs::Exfat).is_empty());
        assert!(!name_problems(&umlauts, DriveFs::Any).is_empty());
    }

    #[test]
    fn forbidden_characters_are_named_in_the_message() {
        let problems = name_problems("a:b?", DriveFs::Fat32);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains(": ?") && problems[0].contains("FAT32 forbids"), "{}", problems[0]);
    }

    #[test]
    fn case_collisions_name_both_paths_once_per_pair_of_folders() {
        let paths = ["Readme.txt", "README.TXT", "bases", "Bases", "bases/x", "Bases/x", "other", "other/a", "other/A"];
        let collisions = case_collisions(paths.into_iter());
        assert_eq!(
            collisions,
            vec![
                ("bases".to_owned(), "Bases".to_owned()),
                ("Readme.txt".to_owned(), "README.TXT".to_owned()),
                ("other/a".to_owned(), "other/A".to_owned()),
            ]
        );
        assert!(case_collisions(["a", "a", "b/a", "A/b"].into_iter()).is_empty());
        assert_eq!(case_collisions(["ÄRGER", "ärger"].into_iter()).len(), 1);
    }

    #[test]
    fn implied_folders_are_planned_too() {
        let entries = entries_of([write("a/b/c.txt", 5), write("./d//e", 1)]);
        let paths: Vec<_> = entries.keys().map(|k| k.as_ref()).collect();
        assert_eq!(paths, ["a", "a/b", "a/b/c.txt", "d", "d/e"]);
        assert!(entries["a/b"].is_dir && !entries["a/b/c.txt"].is_dir);
    }

    #[test]
    fn space_needed_rounds_files_up_to_clusters_and_counts_folders() {
        let entries = entries_of([write("a/one", 1), write("a/two", 4096), write("a/empty", 0)]);
        // 4096 + 4096 for the files, one cluster for `a`, one for the root's entries.
        assert_eq!(space_needed(&entries, 4096), 4 * 4096);
        let many: Vec<String> = (0..1000).map(|i| format!("f/a-rather-long-file-name-{i:04}.dat")).collect();
        let writes: Vec<_> = many.iter().map(|p| write(p, 0)).collect();
        // 1000 names of 31 units take 4 entries each: 128000 bytes of folder.
        assert_eq!(space_needed(&entries_of(writes.iter().copied()), 512), 128_512 + 512);
    }

    #[test]
    fn files_over_the_fat32_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let media = Utf8Path::from_path(dir.path()).unwrap();
        let limit = DriveFs::Fat32.max_file_size();
        assert_eq!(limit, 4 * 1024 * 1024 * 1024 - 1);
        let error = check_fit(media, DriveFs::Fat32, [write("big.iso", limit + 1)]).unwrap_err();
        let Error::DriveUnfit { problems, .. } = error else { panic!("{error}") };
        assert!(
            problems.iter().any(|p| p.starts_with("`big.iso`: 4.0 GiB") && p.contains("4 GiB - 1 byte")),
            "{problems:?}"
        );
    }

    #[test]
    fn collisions_with_files_already_on_the_drive_name_both() {
        let dir = tempfile::tempdir().unwrap();
        let media = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir_all(media.join("ferry/av")).unwrap();
        std::fs::write(media.join("ferry/av/Notes.txt"), b"x").unwrap();
        std::fs::create_dir(media.join("Extra")).unwrap();
        let writes = [write("ferry/av/NOTES.TXT", 1), write("EXTRA/x", 1), write("ferry/av/new", 1)];
        let Err(Error::DriveUnfit { problems, .. }) = check_fit(media, DriveFs::Fat32, writes.iter().copied()) else {
            panic!()
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("`EXTRA` and `") && problems[0].ends_with("overwrite the other"));
        assert!(problems[1].contains("`ferry/av/NOTES.TXT` and `") && problems[1].contains("ferry/av/Notes.txt`"));
        assert!(check_fit(media, DriveFs::Any, writes.iter().copied()).is_ok());
    }

    #[test]
    fn too_little_space_says_how_much_more() {
        let dir = tempfile::tempdir().unwrap();
        let media = Utf8Path::from_path(dir.path()).unwrap();
        let Err(Error::DriveUnfit { problems, .. }) = check_fit(media, DriveFs::Any, [write("huge", u64::MAX / 2)])
        else {
            panic!()
        };
        assert!(problems[0].contains("more: ") && problems[0].contains("to write") && problems[0].ends_with("free"));
    }

    #[test]
    fn long_paths_are_reported_at_the_shortest_offending_folder() {
        let (d, e) = ("d".repeat(200), "e".repeat(100));
        let deep = format!("{d}/{e}/file");
        let planned = entries_of([write("a", 1), write(&deep, 1)]);
        let problems = path_length_problems(
            Utf8Path::new("/media/usb/x"),
            Utf8Path::new("/media/usb"),
            planned.keys().map(|k| k.as_ref()),
            DriveFs::Fat32,
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with(&format!("`{d}/{e}`: path is 303 characters")), "{problems:?}");
        assert!(
            path_length_problems(Utf8Path::new("/m"), Utf8Path::new("/m"), [deep.as_str()].into_iter(), DriveFs::Any)
                .is_empty()
        );
    }

    #[test]
    fn mount_table_lookup_takes_the_deepest_and_latest_mount() {
        let table = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
42 22 0:39 / /media/my\\040usb rw,nosuid - fuse.fusefat fusefat rw,user_id=0
43 22 0:40 / /media/my\\040usb/inner rw - vfat /dev/sdb1 rw
44 42 0:41 / /media/my\\040usb rw shared:5 - fuseblk /dev/sdc1 rw
";
        let at = |p: &str| mount_for(table, Utf8Path::new(p)).map(|m| (m.point.to_string(), m.fs_type));
        assert_eq!(at("/media/my usb/a"), Some(("/media/my usb".to_owned(), "fuseblk".to_owned())));
        assert_eq!(at("/media/my usb/inner/x"), Some(("/media/my usb/inner".to_owned(), "vfat".to_owned())));
        assert_eq!(at("/media/my usbx"), Some(("/".to_owned(), "ext4".to_owned())));
        assert_eq!(fs_from_type_name("fuse.fusefat"), DriveFs::Fat32);
        assert_eq!(fs_from_type_name("fuseblk"), DriveFs::Ntfs);
        assert_eq!(fs_from_type_name("fuseblk.exfat"), DriveFs::Exfat);
        assert_eq!(fs_from_type_name("fuse.sshfs"), DriveFs::Any);
        assert_eq!(unescape_octal(r"a\134b\011c\9"), "a\\b\tc\\9");
    }

    #[test]
    fn human_units() {
        assert_eq!(crate::report::human_bytes(512), "512 B");
        assert_eq!(crate::report::human_bytes(3 * 1024 * 1024 * 1024 + 400 * 1024 * 1024), "3.4 GiB");
    }
}
