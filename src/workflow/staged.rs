//! The snapshot staged at a test target that is not a folder on this host
//! (an FTP test update source), for `ferry promote` (formats/verdict-v1.md
//! §5 R2): its signed manifest and signature are read from the target's
//! state folder and verified with the trusted keys, then every file is
//! streamed through the back end ([`Backend::copy_file`]) into a temporary
//! folder of the promoting host laid out as an installed update source,
//! and checked against its signed size and SHA-256 (a file is never held
//! in memory whole). Promote then
//! publishes from that folder exactly as from a folder test target. A file
//! changed at the test target after staging is refused here, naming it,
//! before any target is touched.

use crate::backend::Backend;
use crate::error::{Error, IoContext, Result};
use crate::install::state::{MANIFEST_FILE, SIGNATURE_FILE};
use crate::manifest::EntryKind;
use crate::media::SnapshotDir;
use crate::report::Progress;
use crate::signing::{TrustStore, VerifiedSnapshot};
use camino::{Utf8Path, Utf8PathBuf};

/// A checked copy of the snapshot staged at a test target.
#[derive(Debug)]
pub struct StagedCopy {
    /// The copy, as an installed update source.
    pub dir: SnapshotDir,
    /// Its verified manifest: the one installed at the test target.
    pub snapshot: VerifiedSnapshot,
    /// Removed with the copy.
    _folder: tempfile::TempDir,
}

/// Copies the snapshot installed at `test` into a temporary folder,
/// checking the signature and every byte on the way.
pub fn copy(test: &dyn Backend, trust: &TrustStore, progress: &dyn Progress) -> Result<StagedCopy> {
    let state = Utf8PathBuf::from(test.state_location());
    let read = |name: &str| test.read_state(name)?.ok_or_else(|| Error::NotInstalled(test.location().into()));
    let (manifest, signature) = (read(MANIFEST_FILE)?, read(SIGNATURE_FILE)?);
    let snapshot = crate::signing::verify(
        manifest.clone(),
        &state.join(MANIFEST_FILE),
        signature.clone(),
        &state.join(SIGNATURE_FILE),
        trust,
    )?;
    let folder = tempfile::Builder::new()
        .prefix("ferry-promote-")
        .tempdir()
        .ctx("create", Utf8Path::new("a temporary folder"))?;
    let root = Utf8PathBuf::from_path_buf(folder.path().to_owned())
        .map_err(|p| Error::InvalidArgument(format!("temporary folder `{}` is not UTF-8", p.display())))?;
    let metadata = root.join(crate::backend::STATE_DIR);
    std::fs::create_dir(&metadata).ctx("create folder", &metadata)?;
    for (name, bytes) in [(MANIFEST_FILE, &manifest), (SIGNATURE_FILE, &signature)] {
        std::fs::write(metadata.join(name), bytes).ctx("write", &metadata.join(name))?;
    }
    progress.phase("reading the staged snapshot", snapshot.manifest().payload_bytes());
    for entry in &snapshot.manifest().entries {
        let to = entry.path.under(&root);
        let EntryKind::File(file) = &entry.kind else {
            std::fs::create_dir(&to).ctx("create folder", &to)?;
            continue;
        };
        let shown = Utf8PathBuf::from(format!("{}/{}", test.location().trim_end_matches('/'), entry.path));
        let mut copy = std::fs::File::create(&to).ctx("create", &to)?;
        let read = test
            .copy_file(&entry.path, file.size, &mut copy)?
            .ok_or_else(|| Error::Mismatch { path: shown.clone(), problem: "missing since it was staged".into() })?;
        if read.size != file.size || read.digest != file.digest {
            return Err(Error::Mismatch {
                path: shown,
                problem: format!(
                    "changed since it was staged: {} bytes with another SHA-256 than the signed manifest's ({} bytes, {})",
                    read.size,
                    file.size,
                    file.digest.short()
                ),
            });
        }
        if file.executable {
            use std::os::unix::fs::PermissionsExt;
            copy.set_permissions(std::fs::Permissions::from_mode(0o755)).ctx("set the mode of", &to)?;
        }
        progress.advance(file.size);
    }
    Ok(StagedCopy { dir: SnapshotDir::installed_source(&root), snapshot, _folder: folder })
}
