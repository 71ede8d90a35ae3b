//! ferry on a real FAT32 drive: an image formatted by mkfs.vfat and mounted
//! through fusefat (see tests/support/fat.rs). Export writes the drive,
//! which is then unmounted and mounted again so that verify and import read
//! what reached the image, not what fusefat kept in memory.

#[path = "support/fat.rs"]
mod fat;
mod support;

use camino::Utf8Path;
use fat::FatImage;
use ferry::drive::{self, DriveFs, PlannedWrite};
use support::*;

/// `ferry export SOURCE DRIVE` of repository `av`, with `extra` options.
fn export(source: &Utf8Path, drive: &Utf8Path, secret: &Utf8Path, sequence: &str, extra: &[&str]) -> Run {
    let args = ["export", source.as_str(), drive.as_str(), "--key", secret.as_str(), "--repository", "av"];
    run(&[&args[..], &["--sequence", sequence], extra].concat())
}

/// The smallest whole-MiB image that is FAT32 by the specification (at
/// least 65525 clusters of 512 bytes); mkfs.vfat makes smaller ones with a
/// warning, which Windows and Linux's vfat would take for FAT16.
const SMALLEST_FAT32_MIB: u64 = 33;

/// Exports the small repository onto a fresh FAT32 image with `layout`,
/// remounts it, verifies, imports, and compares the trees. With
/// `ascii_names` the repository's one non-ASCII file name is spelled in
/// ASCII: fusefat refuses non-ASCII names (EPERM) and the tree layout
/// stores names as they are.
fn round_trip(layout: &str, ascii_names: bool) {
    let Some(mut fat) = FatImage::new(SMALLEST_FAT32_MIB) else { return };
    let scratch = Scratch::new();
    let (source, target, key) = (scratch.path("source"), scratch.path("target"), scratch.path("key"));
    let (secret, public) = (key.with_extension("key"), key.with_extension("pub"));
    small_repository(&source);
    if ascii_names {
        let sub = source.join("bases/sub");
        std::fs::rename(sub.join("ünïcødé naïve.bin"), sub.join("unicode naive.bin")).unwrap();
    }
    keygen(&key);

    let exported = export(&source, &fat.mount, &secret, "1", &["--layout", layout]);
    assert_eq!(exported.code, 0, "export --layout {layout} onto FAT32 failed:\n{}\n{}", exported.stderr, fat.log());

    fat.remount();
    run(&["verify", fat.mount.as_str(), "--trust", public.as_str()]).ok();
    run(&["import", fat.mount.as_str(), target.as_str(), "--trust", public.as_str()]).ok();
    assert_eq!(served_tree(&target), tree_state(&source));
}

#[test]
fn tree_layout_round_trip_through_a_remounted_fat32_drive() {
    round_trip("tree", true);
}

#[test]
fn tar_layout_round_trip_through_a_remounted_fat32_drive() {
    // Names live inside the tar volumes, so non-ASCII names are no problem.
    round_trip("tar", false);
}

#[test]
fn fusefat_mounts_show_as_fuse_fusefat_and_are_detected_as_fat32() {
    let Some(fat) = FatImage::new(SMALLEST_FAT32_MIB) else { return };
    assert_eq!(fat.mount_type().as_deref(), Some("fuse.fusefat"));
    assert_eq!(drive::detect(&fat.mount), DriveFs::Fat32);
    // The media folder need not exist yet: its nearest existing ancestor counts.
    assert_eq!(drive::detect(&fat.mount.join("ferry/av/1")), DriveFs::Fat32);
    assert_eq!(drive::detect(Utf8Path::new(env!("CARGO_MANIFEST_DIR"))), DriveFs::Any);
}

#[test]
fn check_fit_on_fat32_refuses_more_than_the_free_space_and_names_the_shortfall() {
    let Some(fat) = FatImage::new(SMALLEST_FAT32_MIB) else { return };
    let media = fat.mount.join("updates");
    // statvfs says 0 blocks here (fusefat computes clusters * (512 / 1024));
    // the free clusters are in f_ffree.
    assert_eq!(drive::free_bytes(&media, DriveFs::Fat32).unwrap(), Some(66_511 * 512));
    let fits = [PlannedWrite { path: "ferry/av/1/payload/a.dat", size: 1024 * 1024, is_dir: false }];
    drive::check_fit(&media, DriveFs::Fat32, fits).expect("1 MiB fits on an empty 33 MiB FAT32 drive");

    let too_big = [
        PlannedWrite { path: "ferry/av/1/payload/a.dat", size: 20 * 1024 * 1024, is_dir: false },
        PlannedWrite { path: "ferry/av/1/payload/b.dat", size: 20 * 1024 * 1024, is_dir: false },
    ];
    let error = drive::check_fit(&media, DriveFs::Fat32, too_big).unwrap_err();
    let ferry::Error::DriveUnfit { problems, .. } = &error else { panic!("expected DriveUnfit, got {error}") };
    assert_eq!(problems.len(), 1, "{problems:?}");
    // About 32.5 MiB of 512-byte clusters are free on a fresh 33 MiB image.
    assert!(problems[0].contains("needs 7.") && problems[0].contains("MiB more: 40.0 MiB to write"), "{error}");
    assert!(problems[0].contains("(counted in 512 B clusters), 32."), "{error}");
}

#[test]
fn check_fit_on_fat32_finds_case_collisions_with_files_already_on_the_drive() {
    let Some(fat) = FatImage::new(SMALLEST_FAT32_MIB) else { return };
    write(&fat.mount.join("Readme.txt"), b"already here");
    let writes = [
        PlannedWrite { path: "README.TXT", size: 10, is_dir: false },
        PlannedWrite { path: "CON.txt", size: 10, is_dir: false },
        PlannedWrite { path: "big.iso", size: 5 << 30, is_dir: false },
    ];
    let error = drive::check_fit(&fat.mount, DriveFs::Fat32, writes).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("`README.TXT` and `") && text.contains("Readme.txt`, already on the drive"), "{text}");
    assert!(text.contains("`CON.txt`: `CON` is a Windows device name"), "{text}");
    assert!(text.contains("`big.iso`: 5.0 GiB") && text.contains("FAT32 holds files up to 4 GiB - 1 byte"), "{text}");
    assert!(text.contains("more:"), "5 GiB does not fit on 33 MiB either: {text}");
}

/// A drive too small: refused before a byte is written, with how much more
/// room is needed, in both layouts; the drive holds nothing afterwards.
#[test]
fn export_onto_a_too_small_fat32_drive_fails_and_leaves_no_complete_snapshot() {
    let Some(mut fat) = FatImage::new(SMALLEST_FAT32_MIB) else { return };
    let scratch = Scratch::new();
    let (source, key) = (scratch.path("source"), scratch.path("key"));
    write(&source.join("bases/one.dat"), &pseudo_random_bytes(1, 20 * 1024 * 1024));
    write(&source.join("bases/two.dat"), &pseudo_random_bytes(2, 20 * 1024 * 1024));
    keygen(&key);
    let secret = key.with_extension("key");
    let exported = export(&source, &fat.mount, &secret, "1", &["--layout", "tree"]);
    assert_eq!(exported.code, 1, "export of 40 MiB onto 33 MiB:\n{}{}", exported.stdout, exported.stderr);
    assert!(exported.stderr.contains("more:") && exported.stderr.contains("free"), "{}", exported.stderr);
    let tar = run(&["export", source.as_str(), fat.mount.as_str(), "--key", secret.as_str(), "--sequence", "2"]);
    assert_eq!(tar.code, 1, "{}{}", tar.stdout, tar.stderr);
    assert!(tar.stderr.contains("more:"), "{}", tar.stderr);
    fat.remount();
    assert!(!fat.mount.join("ferry").exists(), "a refused export wrote to the drive");
    let verified = run(&["verify", fat.mount.as_str(), "--trust", key.with_extension("pub").as_str()]);
    assert_ne!(verified.code, 0, "a half-written drive verified:\n{}", verified.stdout);
}

/// fusefat refuses non-ASCII names although FAT32 stores them: check_fit
/// says so up front, and a tree export that tries anyway must fail without
/// leaving a drive that verifies.
#[test]
fn non_ascii_names_on_fusefat_are_reported_and_never_leave_a_complete_snapshot() {
    let Some(mut fat) = FatImage::new(SMALLEST_FAT32_MIB) else { return };
    let planned = [PlannedWrite { path: "ferry/av/1/payload/bases/ünï.bin", size: 2, is_dir: false }];
    let error = drive::check_fit(&fat.mount, DriveFs::Fat32, planned).unwrap_err().to_string();
    assert!(error.contains("`ferry/av/1/payload/bases/ünï.bin`: name is not ASCII; fusefat"), "{error}");

    let scratch = Scratch::new();
    let (source, key) = (scratch.path("source"), scratch.path("key"));
    small_repository(&source);
    keygen(&key);
    let secret = key.with_extension("key");
    let exported = export(&source, &fat.mount, &secret, "1", &["--layout", "tree"]);
    assert_eq!(exported.code, 1, "export of a non-ASCII name onto fusefat:\n{}{}", exported.stdout, exported.stderr);
    assert!(exported.stderr.contains("name is not ASCII"), "not refused up front: {}", exported.stderr);
    fat.remount();
    let verified = run(&["verify", fat.mount.as_str(), "--trust", key.with_extension("pub").as_str()]);
    assert_ne!(verified.code, 0, "a half-written drive verified:\n{}", verified.stdout);
}

/// The cases a FAT32 drive makes real: a file larger than a volume is split
/// and comes back whole; names that differ only in case, and a name FAT
/// forbids, are refused up front with the names, before the drive is touched.
#[test]
fn fat32_split_file_round_trips_and_unportable_names_are_refused_up_front() {
    let Some(mut fat) = FatImage::new(SMALLEST_FAT32_MIB) else { return };
    let scratch = Scratch::new();
    let (source, target, key) = (scratch.path("source"), scratch.path("target"), scratch.path("key"));
    let (secret, public) = (key.with_extension("key"), key.with_extension("pub"));
    keygen(&key);
    small_repository(&source);
    write(&source.join("bases/large.bin"), &pseudo_random_bytes(3, 3 * 1024 * 1024 + 17));
    let drive = fat.mount.clone();
    let export =
        |source: &Utf8Path, sequence: &str| export(source, &drive, &secret, sequence, &["--volume-size", "1M"]);
    export(&source, "1").ok();
    fat.remount();
    let volumes = fat.mount.join("ferry/av/1/volumes");
    assert!(std::fs::read_dir(&volumes).unwrap().count() >= 4, "a 3 MiB file in 1 MiB volumes");
    run(&["verify", fat.mount.as_str(), "--trust", public.as_str()]).ok();
    run(&["import", fat.mount.as_str(), target.as_str(), "--trust", public.as_str()]).ok();
    assert_eq!(served_tree(&target), tree_state(&source));

    let before = tree_state(&fat.mount);
    let collide = scratch.path("collide");
    write(&collide.join("docs/README.TXT"), b"upper");
    write(&collide.join("docs/Readme.txt"), b"mixed");
    let refused = export(&collide, "2");
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("README.TXT") && refused.stderr.contains("Readme.txt"), "{}", refused.stderr);
    let forbidden = scratch.path("forbidden");
    write(&forbidden.join("a:b.txt"), b"colon");
    let refused = export(&forbidden, "3");
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("a:b.txt"), "{}", refused.stderr);
    fat.remount();
    assert_eq!(tree_state(&fat.mount), before, "a refused export changed the drive");
}

/// An export killed on a nearly full drive leaves an unfinished folder; the
/// same export run again must count that folder's room as free, since it
/// replaces it, instead of refusing for want of space.
#[test]
fn rerun_after_an_unfinished_export_reuses_its_room() {
    let Some(mut fat) = FatImage::new(SMALLEST_FAT32_MIB) else { return };
    let scratch = Scratch::new();
    let (secret, public) = key_pair(&scratch);
    let source = scratch.path("source");
    write(&source.join("bases/large.dat"), &pseudo_random_bytes(5, 20 * 1024 * 1024));
    // What a killed export of the same sequence left: ferry's `unfinished`
    // note and a volume, no manifest.sig.
    write(&fat.mount.join("ferry/av/1/unfinished"), b"ferry unfinished export v1\n");
    write(&fat.mount.join("ferry/av/1/volumes/0001.tar"), &pseudo_random_bytes(6, 20 * 1024 * 1024));
    let exported = export(&source, &fat.mount, &secret, "1", &[]);
    assert_eq!(exported.code, 0, "{}{}", exported.stdout, exported.stderr);
    fat.remount();
    run(&["verify", fat.mount.as_str(), "--trust", public.as_str()]).ok();
}

/// A file over 4 GiB (sparse at the source, issue 14): a tree export onto
/// FAT32 is refused before a byte is written, naming the file and the
/// limit; the drive holds nothing afterwards.
#[test]
fn tree_export_of_a_file_over_4_gib_onto_fat32_is_refused_before_writing() {
    let Some(mut fat) = FatImage::new(SMALLEST_FAT32_MIB) else { return };
    let scratch = Scratch::new();
    let (source, key) = (scratch.path("source"), scratch.path("key"));
    write(&source.join("VERSION"), b"huge\n");
    let huge = std::fs::File::create(source.join("huge.bin")).unwrap();
    huge.set_len((4 << 30) + (300 << 20)).unwrap();
    drop(huge);
    keygen(&key);
    let exported = export(&source, &fat.mount, &key.with_extension("key"), "1", &["--layout", "tree"]);
    assert_eq!(exported.code, 1, "tree export of 4.3 GiB onto FAT32:\n{}{}", exported.stdout, exported.stderr);
    let text = &exported.stderr;
    assert!(text.contains("huge.bin`: 4.3 GiB") && text.contains("FAT32 holds files up to 4 GiB - 1 byte"), "{text}");
    fat.remount();
    assert!(!fat.mount.join("ferry").exists(), "a refused export wrote to the drive");
}
