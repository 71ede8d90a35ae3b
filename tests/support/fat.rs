//! A real FAT32 filesystem for tests: an image made with `mkfs.vfat -F 32`
//! and mounted through FUSE with `fusefat` (this kernel has no vfat module).
//! The image and mount point live in a temporary folder; dropping the
//! [`FatImage`] unmounts by path, which also ends its fusefat daemon.
//!
//! Missing tools fail the test with a message saying what to install
//! (tests/support/need.rs): scripts/test installs them, and a test that
//! passes without running proves nothing. `FERRY_TEST_SKIP=fat32` opts out
//! on machines without FUSE.
#![allow(dead_code)] // each test binary uses a different subset

use crate::support::{Need, find_tool, require};
use camino::{Utf8Path, Utf8PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A FAT32 image mounted read-write through fusefat.
pub struct FatImage {
    _dir: tempfile::TempDir,
    /// The image file.
    pub image: Utf8PathBuf,
    /// Where it is mounted (absolute and symlink-free, as the mount table shows it).
    pub mount: Utf8PathBuf,
    /// fusefat's output from the last mount, for failure messages.
    log: Utf8PathBuf,
    mounted: bool,
}

impl FatImage {
    /// Formats a `size_mib` MiB image as FAT32 and mounts it. `None` only
    /// when the tools are missing and FERRY_TEST_SKIP=fat32 opts out.
    pub fn new(size_mib: u64) -> Option<Self> {
        if !require(Need::Fat32) {
            return None;
        }
        let dir = tempfile::tempdir().expect("create folder for the FAT image");
        let root = Utf8PathBuf::from_path_buf(dir.path().canonicalize().expect("canonical temp path"))
            .expect("UTF-8 temp path");
        let image = root.join("fat32.img");
        let mount = root.join("drive");
        std::fs::create_dir(&mount).expect("create mount point");
        let file = std::fs::File::create(&image).expect("create image");
        file.set_len(size_mib * 1024 * 1024).expect("size image");
        drop(file);
        let mkfs = Command::new(find_tool("mkfs.vfat").unwrap())
            .args(["-F", "32", "-n", "FERRYTEST", image.as_str()])
            .output()
            .expect("run mkfs.vfat");
        assert!(
            mkfs.status.success(),
            "mkfs.vfat -F 32 on a {size_mib} MiB image failed: {}",
            String::from_utf8_lossy(&mkfs.stderr)
        );
        let mut fat = FatImage { _dir: dir, image, log: root.join("fusefat.log"), mount, mounted: false };
        fat.mount();
        Some(fat)
    }

    /// Mounts the image and waits until the mount table shows it.
    pub fn mount(&mut self) {
        assert!(!self.mounted, "{} is already mounted", self.mount);
        let log = std::fs::File::create(&self.log).expect("create fusefat log");
        // fusefat forks a daemon that keeps its inherited output open: give
        // it a file, not a pipe that would never reach end of file.
        let status = Command::new(find_tool("fusefat").unwrap())
            .args(["-o", "rw+", self.image.as_str(), self.mount.as_str()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .expect("run fusefat");
        assert!(status.success(), "fusefat -o rw+ {} {} failed ({status}): {}", self.image, self.mount, self.log());
        let deadline = Instant::now() + Duration::from_secs(10);
        while mount_type(&self.mount).is_none() {
            assert!(Instant::now() < deadline, "{} did not appear in /proc/self/mountinfo: {}", self.mount, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        self.mounted = true;
    }

    /// Unmounts (flushing fusefat's writes to the image), waiting until the
    /// mount is gone.
    pub fn unmount(&mut self) {
        assert!(self.mounted, "{} is not mounted", self.mount);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output =
                Command::new(fusermount().unwrap()).args(["-u", self.mount.as_str()]).output().expect("run fusermount");
            if output.status.success() && mount_type(&self.mount).is_none() {
                break;
            }
            // "Device or resource busy" while a just-ended ferry process's
            // files are still being released: try again shortly.
            assert!(
                Instant::now() < deadline,
                "fusermount -u {} failed: {}",
                self.mount,
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.mounted = false;
    }

    /// Unmounts and mounts again: what was read back afterwards came from
    /// the image, not from fusefat's memory.
    pub fn remount(&mut self) {
        self.unmount();
        self.mount();
    }

    /// The filesystem type the mount table shows for the mount point.
    pub fn mount_type(&self) -> Option<String> {
        mount_type(&self.mount)
    }

    /// What fusefat printed when it was last started.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for FatImage {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        let fusermount = fusermount().unwrap_or_else(|| "fusermount".into());
        let mut done = false;
        for _ in 0..50 {
            done = Command::new(&fusermount).args(["-u", self.mount.as_str()]).status().is_ok_and(|s| s.success())
                || Command::new("umount").arg(self.mount.as_str()).status().is_ok_and(|s| s.success());
            if done {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !done {
            eprintln!("could not unmount {}; unmount it by hand with fusermount -u", self.mount);
        }
    }
}

/// The type column of the mount table line whose mount point is exactly `point`.
fn mount_type(point: &Utf8Path) -> Option<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    let escaped = point.as_str().replace('\\', "\\134").replace(' ', "\\040").replace('\t', "\\011");
    table.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (left.split(' ').nth(4)? == escaped).then(|| right.split(' ').next().unwrap_or_default().to_owned())
    })
}

/// FUSE's unmount helper: `fusermount` from FUSE 2, or `fusermount3`.
fn fusermount() -> Option<Utf8PathBuf> {
    find_tool("fusermount").or_else(|| find_tool("fusermount3"))
}
