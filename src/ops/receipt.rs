//! `ferry receipt`: state what an installed update source holds, for the
//! connected side (formats/receipt-v1.md §3).

use crate::backend::Backend;
use crate::delta::receipt::Receipt;
use crate::error::{Error, Result};
use crate::signing::SecretKey;
use camino::{Utf8Path, Utf8PathBuf};
use jiff::Timestamp;
use serde::Serialize;

/// What `ferry receipt` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptReport {
    /// The target described.
    pub target: String,
    /// The receipt file written.
    pub receipt: Utf8PathBuf,
    /// Installed repository.
    pub repository: String,
    /// Installed sequence.
    pub sequence: u64,
    /// Installed snapshot id.
    pub snapshot_id: String,
    /// Key id of the site key that signed the receipt, if any.
    pub signed_by: Option<String>,
}

/// Writes a receipt of what `target` holds to `out`, signed with the site
/// key `key` if given. Reads the target's state through its back end, so
/// folders and FTP servers alike (§3 RW1); nothing at the target changes.
pub fn receipt(target: &dyn Backend, out: &Utf8Path, key: Option<&SecretKey>, now: Timestamp) -> Result<ReceiptReport> {
    let Some((state, _manifest)) = crate::install::installed(target)? else {
        return Err(Error::NotInstalled(target.location().into()));
    };
    let receipt = Receipt {
        repository: state.repository.clone(),
        sequence: state.sequence,
        snapshot: state.snapshot,
        created: state.created,
        written: now,
    };
    crate::fsutil::write_atomic(out, &receipt.encode(key))?;
    Ok(ReceiptReport {
        target: target.location(),
        receipt: out.to_owned(),
        repository: state.repository.to_string(),
        sequence: state.sequence,
        snapshot_id: state.snapshot.to_hex(),
        signed_by: key.map(|key| key.id().to_string()),
    })
}
