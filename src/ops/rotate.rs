//! `ferry rotate`: on the connected side, write a rotation statement
//! (formats/rotation-v1.md) signed by the keys that count now, onto media
//! that will travel to the sites, which apply it on import.

use crate::error::{Error, Result};
use crate::manifest::RepositoryId;
use crate::signing::{KeyId, SecretKey, load_public};
use crate::trust::{Rotation, StoredKey};
use camino::{Utf8Path, Utf8PathBuf};
use jiff::Timestamp;
use serde::Serialize;

/// What the statement says.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// The drive to write to.
    pub media: Utf8PathBuf,
    /// The repository whose keys change.
    pub repository: String,
    /// The statement's place in the repository's chain, from 1.
    pub number: u64,
    /// The threshold afterwards.
    pub threshold: usize,
    /// Public key files of keys that join.
    pub add: Vec<Utf8PathBuf>,
    /// Ids of keys that leave.
    pub remove: Vec<String>,
    /// When the statement is made.
    pub created: Timestamp,
}

/// What `ferry rotate` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct RotateReport {
    /// The statement file (its signature is beside it, `.sig`).
    pub path: Utf8PathBuf,
    /// The repository.
    pub repository: String,
    /// The statement's number.
    pub number: u64,
    /// The keys that signed it.
    pub signed_by: Vec<String>,
}

/// Writes the statement, signed by every key in `keys`.
pub fn rotate(options: &RotateOptions, keys: &[SecretKey]) -> Result<RotateReport> {
    let repository = RepositoryId::new(&options.repository).map_err(Error::InvalidArgument)?;
    if options.number == 0 || options.threshold == 0 || keys.is_empty() {
        return Err(Error::InvalidArgument(
            "a rotation needs a number and a threshold from 1, and at least one --key to sign it".into(),
        ));
    }
    let add = options
        .add
        .iter()
        .map(|path| {
            let key = load_public(path)?;
            key.check_not_weak()?;
            Ok(StoredKey { key, label: label_of(path) })
        })
        .collect::<Result<Vec<_>>>()?;
    let remove = options
        .remove
        .iter()
        .map(|text| KeyId::from_hex(text).ok_or_else(|| Error::InvalidArgument(format!("`{text}` is not a key id"))))
        .collect::<Result<Vec<_>>>()?;
    let rotation = Rotation {
        repository,
        number: options.number,
        created: options.created,
        threshold: options.threshold,
        add,
        remove,
    };
    let path = crate::trust::rotation::write(&options.media, &rotation, keys)?;
    Ok(RotateReport {
        path,
        repository: options.repository.clone(),
        number: options.number,
        signed_by: keys.iter().map(|key| key.id().to_string()).collect(),
    })
}

/// The file's stem as a label, if it is a valid one.
fn label_of(path: &Utf8Path) -> Option<String> {
    path.file_stem().filter(|stem| crate::trust::store::check_label(stem).is_ok()).map(str::to_owned)
}
