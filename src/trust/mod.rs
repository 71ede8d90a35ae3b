//! The isolated side's trust store (`formats/trust-store-v1.md`): which
//! keys count for which repository and how many must sign. [`store`] reads,
//! changes and writes the file; [`Store::policy`] turns it into the
//! [`crate::signing::TrustStore`] the verifier consults. Where the store
//! lives is decided here ([`store_dir`]), from values the caller reads from
//! its command line and environment: the library reads no variables.

pub mod rotation;
pub mod store;

pub use rotation::Rotation;
pub use store::{Scope, Section, Store, StoredKey};

use crate::error::{Error, Result};
use camino::{Utf8Path, Utf8PathBuf};

/// The trust store folder (formats/trust-store-v1.md §2): `explicit`
/// (`--trust-store`), else `FERRY_TRUST_STORE`, else
/// `$XDG_CONFIG_HOME/ferry`, else `$HOME/.config/ferry`. `env` looks up an
/// environment variable.
pub fn store_dir(explicit: Option<&Utf8Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Utf8PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.to_owned());
    }
    let set = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(dir) = set("FERRY_TRUST_STORE") {
        return Ok(dir.into());
    }
    if let Some(config) = set("XDG_CONFIG_HOME").filter(|dir| Utf8Path::new(dir).is_absolute()) {
        return Ok(Utf8PathBuf::from(config).join("ferry"));
    }
    match set("HOME") {
        Some(home) => Ok(Utf8PathBuf::from(home).join(".config/ferry")),
        None => Err(Error::InvalidArgument(
            "cannot find the trust store: HOME and XDG_CONFIG_HOME are unset\nhint: pass --trust-store DIR or set FERRY_TRUST_STORE".into(),
        )),
    }
}
