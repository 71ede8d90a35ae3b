//! `ferry sign`: a second person adds their signature to media that are
//! already exported and signed, on the connected side. One line is
//! appended to each `manifest.sig` (every drive of a spanned snapshot has
//! its own), nothing else on the media changes (formats/signature-v1.md
//! §4.1). Everything is checked before the first file is replaced, so a
//! refusal writes nothing.

use crate::beneath::Dir;
use crate::error::{Error, Result};
use crate::manifest_v3::SnapshotManifest;
use crate::media::{self, SnapshotDir};
use crate::signing::{MAX_SIGNATURE_BYTES, SecretKey, SignatureFile, Signed};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// What `ferry sign` did to one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SignedSnapshot {
    /// The snapshot folder (the first drive's, for a spanned snapshot).
    pub dir: Utf8PathBuf,
    /// Repository id.
    pub repository: String,
    /// Sequence number.
    pub sequence: u64,
    /// SHA-256 of the manifest.
    pub snapshot_id: String,
    /// The key that signed.
    pub key_id: String,
    /// The signature files a line was appended to.
    pub signed: Vec<Utf8PathBuf>,
    /// The signature files that already held a valid signature by this key.
    pub already_signed: Vec<Utf8PathBuf>,
    /// Key ids on the signature lines after signing (file order, repeats kept).
    pub signatures: Vec<String>,
}

/// What `ferry sign` did.
#[derive(Debug, Clone, Serialize)]
pub struct SignReport {
    /// One entry per snapshot found on the drives given.
    pub snapshots: Vec<SignedSnapshot>,
}

/// One signature file to extend: its path and its new content, if any.
struct Planned {
    /// The snapshot folder holding it, opened without following links.
    folder: Dir,
    path: Utf8PathBuf,
    new_bytes: Option<Vec<u8>>,
    key_ids: Vec<String>,
}

/// Adds a signature by `key` to every complete snapshot at or below the
/// drives given.
pub fn sign(drives: &[Utf8PathBuf], key: &SecretKey) -> Result<SignReport> {
    let mut plans = Vec::new();
    for dir in media::locate_all(drives)? {
        plans.push(plan(&dir, key)?);
    }
    let mut snapshots = Vec::new();
    for (mut report, files) in plans {
        for file in files {
            match file.new_bytes {
                Some(bytes) => {
                    file.folder.write_atomic(media::SIGNATURE_FILE, &bytes)?;
                    report.signed.push(file.path);
                }
                None => report.already_signed.push(file.path),
            }
            report.signatures = file.key_ids;
        }
        snapshots.push(report);
    }
    Ok(SignReport { snapshots })
}

/// Reads and checks every drive's copy of one snapshot's signature file.
fn plan(dir: &SnapshotDir, key: &SecretKey) -> Result<(SignedSnapshot, Vec<Planned>)> {
    let folders = dir.open_dirs()?;
    let Some((manifest_path, manifest)) = media::manifest_file::read(&folders[0])? else {
        return Err(Error::MissingManifest(dir.root().to_owned()));
    };
    let line = key.signature_line(&manifest);
    // The signer's own view of what it signs: the manifest must verify with
    // the new signature alone before any drive is touched.
    let own = Signed::<SnapshotManifest>::new(
        manifest.clone(),
        &manifest_path,
        SignatureFile { lines: vec![line.clone()] }.encode(),
        "the new signature",
    )
    .verify(&key.own_trust())?;
    let mut files = Vec::new();
    for folder in folders {
        files.push(plan_file(folder, &manifest, key, &line)?);
    }
    let report = SignedSnapshot {
        dir: dir.root().to_owned(),
        repository: own.manifest().repository.to_string(),
        sequence: own.manifest().sequence,
        snapshot_id: own.id().to_hex(),
        key_id: key.id().to_string(),
        signed: Vec::new(),
        already_signed: Vec::new(),
        signatures: Vec::new(),
    };
    Ok((report, files))
}

/// The new content of the signature file in the snapshot folder `root`.
fn plan_file(folder: Dir, manifest: &[u8], key: &SecretKey, line: &crate::signing::SignatureLine) -> Result<Planned> {
    let root = folder.path().to_owned();
    let path = root.join(media::SIGNATURE_FILE);
    let on_drive = media::manifest_file::read(&folder)?;
    let manifest_path = on_drive.as_ref().map_or_else(|| root.join(media::MANIFEST_FILE), |(path, _)| path.clone());
    if on_drive.as_ref().map(|(_, bytes)| bytes.as_slice()) != Some(manifest) {
        return Err(Error::format(&manifest_path, "differs from the manifest on the snapshot's first drive"));
    }
    let Some(bytes) = folder.read_capped(Utf8Path::new(media::SIGNATURE_FILE), MAX_SIGNATURE_BYTES)? else {
        return Err(Error::MissingSignature(root));
    };
    let mut file = SignatureFile::decode(&bytes, &path)?;
    let mine: Vec<_> = file.lines.iter().filter(|existing| existing.id == key.id()).collect();
    // A line by this key that does not verify would make every reader
    // refuse the snapshot; appending a good one would not cure that.
    let public = key.public("the signing key");
    let message = crate::signing::signed_message(crate::signing::SIGNATURE_DOMAIN, manifest);
    if mine.iter().any(|existing| public.key.verify_strict(&message, &existing.signature).is_err()) {
        return Err(Error::BadSignature { path, key_id: key.id().to_string() });
    }
    let new_bytes = if mine.is_empty() {
        let mut bytes = bytes;
        bytes.extend_from_slice(line.encode().as_bytes());
        if bytes.len() as u64 > MAX_SIGNATURE_BYTES {
            return Err(Error::format(&path, format!("would grow past the {MAX_SIGNATURE_BYTES}-byte limit")));
        }
        file.lines.push(line.clone());
        Some(bytes)
    } else {
        None
    };
    let key_ids = file.key_ids().map(|id| id.to_string()).collect();
    Ok(Planned { folder, path, new_bytes, key_ids })
}
