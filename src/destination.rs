//! Where the operator asked ferry to write: checked before anything is
//! written, so that a typo or a drive that is not mounted never means a
//! snapshot on the system disk or a folder tree created out of nothing.
//!
//! Rules (docs/reference/cli.md, `--mkpath`, `--not-a-drive`): a folder
//! given as MEDIA or TARGET must exist, or only its last component is
//! created (like rsync); `--mkpath` creates missing parents too. Export
//! refuses a MEDIA on the same filesystem as `/` or as the source, which is
//! what an unmounted mount point looks like, unless `--not-a-drive` says
//! the folder is meant.

use crate::error::{Error, IoContext, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::os::unix::fs::MetadataExt;

/// Checks that `folder` can be used as a destination: it is a folder, or
/// it does not exist and its parent does (any missing parent is fine with
/// `make_parents`). Returns the folders that would have to be created,
/// outermost first, so that a failed run can remove them again.
pub fn check_folder(folder: &Utf8Path, what: &str, make_parents: bool) -> Result<Vec<Utf8PathBuf>> {
    let mut missing = Vec::new();
    let mut current = Some(folder);
    while let Some(path) = current {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(Error::InvalidArgument(format!(
                    "{what} `{path}` is a file, not a folder\nhint: give the folder to write into"
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(path.to_owned()),
            Err(e) => return Err(Error::io("inspect", path, e)),
        }
        current = path.parent().filter(|parent| !parent.as_str().is_empty());
    }
    if missing.len() > 1 && !make_parents {
        let parent = folder.parent().unwrap_or(folder);
        return Err(Error::InvalidArgument(format!(
            "{what} `{folder}` does not exist, and neither does its parent `{parent}`\nhint: check the path (is the drive or share mounted?), or pass --mkpath to create it"
        )));
    }
    missing.reverse();
    Ok(missing)
}

/// Refuses a MEDIA folder on the same filesystem as `/` or as `source`,
/// unless `not_a_drive`: on Linux an unmounted `/media/usb` is just a
/// folder on the system disk.
pub fn check_is_drive(media: &Utf8Path, source: &Utf8Path, not_a_drive: bool) -> Result<()> {
    if not_a_drive {
        return Ok(());
    }
    let existing = media.ancestors().find(|path| path.exists()).unwrap_or(Utf8Path::new("/"));
    let device = std::fs::metadata(existing).ctx("inspect", existing)?.dev();
    let system = std::fs::metadata("/").ctx("inspect", Utf8Path::new("/"))?.dev();
    let source_device = std::fs::metadata(source).ctx("open source folder", source)?.dev();
    let same_as = if device == system {
        "`/` (the system disk)".to_owned()
    } else if device == source_device {
        format!("the source `{source}`")
    } else {
        return Ok(());
    };
    Err(Error::InvalidArgument(format!(
        "`{media}` is on the same filesystem as {same_as}, not on a removable drive\nhint: mount the drive and give its mount point, or pass --not-a-drive to export into this folder on purpose"
    )))
}

/// Removes folders a failed run created (deepest first), as far as they
/// are empty: nothing it did not write is touched.
pub fn remove_created(created: &[Utf8PathBuf]) {
    for folder in created.iter().rev() {
        let _ = std::fs::remove_dir(folder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_component_is_created_without_mkpath() {
        let scratch = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(scratch.path()).unwrap();
        assert!(check_folder(root, "MEDIA", false).unwrap().is_empty());
        assert_eq!(check_folder(&root.join("usb"), "MEDIA", false).unwrap(), vec![root.join("usb")]);
        let deep = root.join("a/b/c");
        let error = check_folder(&deep, "MEDIA", false).unwrap_err().to_string();
        assert!(error.contains("neither does its parent") && error.contains("--mkpath"), "{error}");
        assert_eq!(check_folder(&deep, "MEDIA", true).unwrap(), vec![root.join("a"), root.join("a/b"), deep]);
        std::fs::write(root.join("file"), b"x").unwrap();
        let error = check_folder(&root.join("file"), "TARGET", false).unwrap_err().to_string();
        assert!(error.contains("is a file, not a folder"), "{error}");
    }
}
