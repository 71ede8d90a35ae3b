//! `ferry keygen`: make a signing key pair.

use crate::error::{Error, IoContext, Result};
use crate::signing::SecretKey;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// What keygen wrote.
#[derive(Debug, Clone, Serialize)]
pub struct KeygenReport {
    /// The new key's id.
    pub key_id: String,
    /// The secret key file (mode 0600).
    pub secret_key: Utf8PathBuf,
    /// The public key file, to copy to importing sites.
    pub public_key: Utf8PathBuf,
    /// Whether the secret key is encrypted with a passphrase.
    pub protected: bool,
}

/// Writes `PREFIX.key` and `PREFIX.pub`; refuses to overwrite either.
pub fn keygen(prefix: &Utf8Path, passphrase: Option<&[u8]>) -> Result<KeygenReport> {
    let secret_path = Utf8PathBuf::from(format!("{prefix}.key"));
    let public_path = Utf8PathBuf::from(format!("{prefix}.pub"));
    for path in [&secret_path, &public_path] {
        if path.exists() {
            return Err(Error::AlreadyExists(path.clone()));
        }
    }
    let key = SecretKey::generate()?;
    let secret = key.secret_file(passphrase)?;
    write_new(&secret_path, secret.as_bytes(), 0o600)?;
    write_new(&public_path, key.public_file().as_bytes(), 0o644)?;
    Ok(KeygenReport {
        key_id: key.id().to_string(),
        secret_key: secret_path,
        public_key: public_path,
        protected: passphrase.is_some(),
    })
}

fn write_new(path: &Utf8Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::AlreadyExists(path.to_owned())
        } else {
            Error::io("create", path, e)
        }
    })?;
    file.write_all(bytes).ctx("write", path)?;
    file.sync_all().ctx("flush", path)
}
