//! `ferry trust add|threshold|list|remove`: the isolated side's trust store
//! (formats/trust-store-v1.md). Each change is checked in full, then the
//! whole store is written atomically; every call returns the store as it
//! now is.

use crate::error::{Error, Result};
use crate::signing::{KeyId, load_public};
use crate::trust::{Scope, Store};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// One trusted key as listed.
#[derive(Debug, Clone, Serialize)]
pub struct ListedKey {
    /// Key id.
    pub id: String,
    /// The public key, 64 hex digits.
    pub key: String,
    /// Its label, if it has one.
    pub label: Option<String>,
}

/// One section of the store as listed.
#[derive(Debug, Clone, Serialize)]
pub struct ListedSection {
    /// A repository id, or `*` for every repository without its own section.
    pub repository: String,
    /// How many distinct keys must sign.
    pub threshold: usize,
    /// The keys that count.
    pub keys: Vec<ListedKey>,
}

/// The store after a `ferry trust` command.
#[derive(Debug, Clone, Serialize)]
pub struct TrustReport {
    /// The store file.
    pub store: Utf8PathBuf,
    /// Whether the command changed the store.
    pub changed: bool,
    /// What the command did, for people.
    pub action: String,
    /// Every section, in file order.
    pub sections: Vec<ListedSection>,
}

fn report(store: &Store, changed: bool, action: String) -> TrustReport {
    let sections = store
        .sections()
        .iter()
        .map(|section| ListedSection {
            repository: section.scope.to_string(),
            threshold: section.threshold,
            keys: section
                .keys
                .iter()
                .map(|stored| ListedKey {
                    id: stored.key.id.to_string(),
                    key: hex::encode(stored.key.key.as_bytes()),
                    label: stored.label.clone(),
                })
                .collect(),
        })
        .collect();
    TrustReport { store: store.path(), changed, action, sections }
}

fn scope_of(repository: Option<&str>) -> Result<Scope> {
    repository.map_or(Ok(Scope::Any), |text| Scope::parse(text).map_err(Error::InvalidArgument))
}

/// Trusts the key in `public_file` for `repository` (every repository
/// without its own keys if `None`).
pub fn add(
    dir: &Utf8Path,
    public_file: &Utf8Path,
    repository: Option<&str>,
    label: Option<&str>,
) -> Result<TrustReport> {
    let scope = scope_of(repository)?;
    let key = load_public(public_file)?;
    let id = key.id;
    let mut store = Store::open(dir)?;
    let changed = store.add(key, scope.clone(), label.map(str::to_owned))?;
    if changed {
        store.save()?;
    }
    let action = if changed {
        format!("trusted key {id} for repository `{scope}`")
    } else {
        format!("key {id} was already trusted for repository `{scope}`")
    };
    Ok(report(&store, changed, action))
}

/// Sets how many keys must sign for `repository` (`*` for the default section).
pub fn threshold(dir: &Utf8Path, repository: &str, threshold: usize) -> Result<TrustReport> {
    let scope = Scope::parse(repository).map_err(Error::InvalidArgument)?;
    let mut store = Store::open(dir)?;
    store.set_threshold(&scope, threshold)?;
    store.save()?;
    Ok(report(
        &store,
        true,
        format!("repository `{scope}` now needs {}", crate::report::counted(threshold, "signature", "signatures")),
    ))
}

/// Stops trusting the key `key_id`, for `repository` only if given.
pub fn remove(dir: &Utf8Path, key_id: &str, repository: Option<&str>) -> Result<TrustReport> {
    let id = KeyId::from_hex(key_id)
        .ok_or_else(|| Error::InvalidArgument(format!("`{key_id}` is not a key id (16 lowercase hex digits)")))?;
    let scope = repository.map(|text| Scope::parse(text).map_err(Error::InvalidArgument)).transpose()?;
    let mut store = Store::open(dir)?;
    let removed = store.remove(id, scope.as_ref())?;
    store.save()?;
    let from = removed.iter().map(|scope| format!("`{scope}`")).collect::<Vec<_>>().join(", ");
    Ok(report(&store, true, format!("key {id} no longer trusted for repository {from}")))
}

/// The store as it is.
pub fn list(dir: &Utf8Path) -> Result<TrustReport> {
    let store = Store::open(dir)?;
    Ok(report(&store, false, String::new()))
}
