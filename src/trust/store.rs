//! The `trust-store` file: canonical encoding, strict decoding, and the
//! changes `ferry trust` makes, each checked before the whole file is
//! replaced atomically (formats/trust-store-v1.md §3-§6).

use crate::error::{Error, Result};
use crate::fsutil;
use crate::manifest::RepositoryId;
use crate::signing::key_file::parse_public;
use crate::signing::{KeyId, KeySet, PublicKey, TrustStore};
use camino::{Utf8Path, Utf8PathBuf};
use std::fmt;

/// Name of the file in the trust store folder.
pub const STORE_FILE: &str = "trust-store";
/// Largest trust store a reader accepts (§3).
pub const MAX_STORE_BYTES: u64 = 1024 * 1024;
const MAGIC: &str = "ferry trust-store v1";

/// Which manifests a section decides for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every repository without a section of its own (`*`).
    Any,
    /// One repository.
    Repository(RepositoryId),
}

impl Scope {
    /// Parses `*` or a repository id.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" { Ok(Scope::Any) } else { RepositoryId::new(text).map(Scope::Repository) }
    }

    /// The sort key of §3: `*` first, then repository ids in byte order.
    fn sort_key(&self) -> (bool, &[u8]) {
        match self {
            Scope::Any => (false, b""),
            Scope::Repository(id) => (true, id.as_str().as_bytes()),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Any => f.write_str("*"),
            Scope::Repository(id) => f.write_str(id.as_str()),
        }
    }
}

/// A trusted key with its label.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// The key.
    pub key: PublicKey,
    /// A name for people; `None` is written `-`.
    pub label: Option<String>,
}

/// The keys of one scope and their threshold.
#[derive(Debug, Clone)]
pub struct Section {
    /// Which manifests this section decides for.
    pub scope: Scope,
    /// How many distinct keys must sign.
    pub threshold: usize,
    /// Number of the last rotation statement applied (0: none).
    pub rotation: u64,
    /// The keys, sorted by key id.
    pub keys: Vec<StoredKey>,
}

/// A trust store read from (or to be written to) its folder.
#[derive(Debug, Clone)]
pub struct Store {
    dir: Utf8PathBuf,
    sections: Vec<Section>,
}

/// Checks a label against §3 (`label`), rule T7.
pub fn check_label(label: &str) -> Result<(), String> {
    let good = |b: u8| b.is_ascii_alphanumeric() || b"._-@+".contains(&b);
    if (1..=64).contains(&label.len()) && label.bytes().all(good) && label != "-" {
        Ok(())
    } else {
        Err(format!("`{}` is not a key label (1-64 of A-Z a-z 0-9 . _ - @ +)", crate::rel_path::escape(label)))
    }
}

impl Store {
    /// Reads the store in `dir`; a folder without the file is an empty store.
    pub fn open(dir: &Utf8Path) -> Result<Self> {
        let path = dir.join(STORE_FILE);
        let sections = match fsutil::read_optional(&path, MAX_STORE_BYTES)? {
            Some(bytes) => decode(&bytes, &path)?,
            None => Vec::new(),
        };
        Ok(Store { dir: dir.to_owned(), sections })
    }

    /// The file this store is read from and written to.
    pub fn path(&self) -> Utf8PathBuf {
        self.dir.join(STORE_FILE)
    }

    /// The sections in file order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The verifier's view of this store; [`Error::NoTrust`] if it holds no key.
    pub fn policy(&self) -> Result<TrustStore> {
        let sets = self
            .sections
            .iter()
            .map(|section| KeySet {
                repository: match &section.scope {
                    Scope::Any => None,
                    Scope::Repository(id) => Some(id.clone()),
                },
                keys: section.keys.iter().map(|stored| stored.key.clone()).collect(),
                threshold: section.threshold,
            })
            .collect();
        TrustStore::from_sets(sets)
    }

    /// Adds `key` to the section for `scope` (made with threshold 1 if
    /// new). Returns `false` if the key was there already (T4).
    pub fn add(&mut self, key: PublicKey, scope: Scope, label: Option<String>) -> Result<bool> {
        key.check_not_weak()?;
        if let Some(label) = &label {
            check_label(label).map_err(Error::InvalidArgument)?;
        }
        if self.keys().any(|known| known.key.id == key.id && known.key.key != key.key) {
            return Err(Error::format(
                &key.origin,
                format!("key id {} is also the id of a different key already trusted ({})", key.id, self.path()),
            ));
        }
        // Sections stay in the canonical order of §3: `*`, then ids by bytes.
        let index = match self.sections.binary_search_by(|section| section.scope.sort_key().cmp(&scope.sort_key())) {
            Ok(index) => index,
            Err(index) => {
                self.sections.insert(index, Section { scope, threshold: 1, rotation: 0, keys: Vec::new() });
                index
            }
        };
        let section = &mut self.sections[index];
        if section.keys.iter().any(|known| known.key.id == key.id) {
            return Ok(false);
        }
        section.keys.push(StoredKey { key, label });
        section.keys.sort_by_key(|stored| stored.key.id);
        Ok(true)
    }

    /// Sets how many keys of `scope`'s section must sign (T5).
    pub fn set_threshold(&mut self, scope: &Scope, threshold: usize) -> Result<()> {
        let Some(section) = self.sections.iter_mut().find(|section| &section.scope == scope) else {
            return Err(Error::InvalidArgument(format!(
                "the trust store has no keys for repository `{scope}`\nhint: add keys first with `ferry trust add KEY.pub --repository {scope}`"
            )));
        };
        if threshold == 0 || threshold > section.keys.len() {
            return Err(Error::InvalidArgument(format!(
                "threshold {threshold} for repository `{scope}`: must be from 1 to its {}",
                crate::report::counted(section.keys.len(), "trusted key", "trusted keys")
            )));
        }
        section.threshold = threshold;
        Ok(())
    }

    /// Removes the key `id` from `scope`'s section, or from every section
    /// with `None` (T6). Returns the scopes it was removed from.
    pub fn remove(&mut self, id: KeyId, scope: Option<&Scope>) -> Result<Vec<Scope>> {
        let mut removed = Vec::new();
        for section in self.sections.iter_mut().filter(|section| scope.is_none_or(|scope| &section.scope == scope)) {
            let Some(index) = section.keys.iter().position(|stored| stored.key.id == id) else { continue };
            // A section left empty goes away; one left below its threshold
            // could never be met again, which must be a deliberate choice.
            let left = section.keys.len() - 1;
            if left > 0 && left < section.threshold {
                let scope = &section.scope;
                return Err(Error::InvalidArgument(format!(
                    "removing key {id} would leave repository `{scope}` with {} and threshold {}\nhint: lower it first with `ferry trust threshold {scope} {left}`",
                    crate::report::counted(left, "key", "keys"),
                    section.threshold
                )));
            }
            section.keys.remove(index);
            removed.push(section.scope.clone());
        }
        if removed.is_empty() {
            let within = scope.map_or(String::new(), |scope| format!(" for repository `{scope}`"));
            return Err(Error::InvalidArgument(format!("key {id} is not in the trust store{within}")));
        }
        self.sections.retain(|section| !section.keys.is_empty());
        Ok(removed)
    }

    /// Number of the last rotation applied to `repository`'s own section.
    pub fn rotation(&self, repository: &RepositoryId) -> u64 {
        let scope = Scope::Repository(repository.clone());
        self.sections.iter().find(|section| section.scope == scope).map_or(0, |section| section.rotation)
    }

    /// Applies a verified rotation statement to its repository's section,
    /// made from the `*` section if it has none (formats/rotation-v1.md §3,
    /// R4-R6). Changes nothing on error.
    pub fn apply(&mut self, rotation: &super::Rotation, origin: &Utf8Path) -> Result<()> {
        let scope = Scope::Repository(rotation.repository.clone());
        let fail = |problem: String| Error::format(origin, problem);
        let mut section = match self.sections.iter().find(|section| section.scope == scope) {
            Some(section) => section.clone(),
            None => {
                let any = self.sections.iter().find(|section| section.scope == Scope::Any);
                let keys = any.map(|section| section.keys.clone()).unwrap_or_default();
                Section {
                    scope: scope.clone(),
                    threshold: any.map_or(1, |section| section.threshold),
                    rotation: 0,
                    keys,
                }
            }
        };
        if rotation.number != section.rotation + 1 {
            return Err(fail(format!("rotation {} follows rotation {}", rotation.number, section.rotation)));
        }
        for id in &rotation.remove {
            let index = section.keys.iter().position(|stored| stored.key.id == *id);
            section
                .keys
                .remove(index.ok_or_else(|| fail(format!("removes key {id}, which is not trusted for `{scope}`")))?);
        }
        for stored in &rotation.add {
            stored.key.check_not_weak()?;
            if self
                .keys()
                .chain(&section.keys)
                .any(|known| known.key.id == stored.key.id && known.key.key != stored.key.key)
            {
                return Err(fail(format!("adds key id {}, already the id of a different key", stored.key.id)));
            }
            if !section.keys.iter().any(|known| known.key.id == stored.key.id) {
                section.keys.push(stored.clone());
            }
        }
        if section.keys.is_empty() || rotation.threshold > section.keys.len() {
            return Err(fail(format!(
                "would leave `{scope}` with {} and threshold {}: no usable key set",
                crate::report::counted(section.keys.len(), "key", "keys"),
                rotation.threshold
            )));
        }
        section.keys.sort_by_key(|stored| stored.key.id);
        section.threshold = rotation.threshold;
        section.rotation = rotation.number;
        match self.sections.binary_search_by(|known| known.scope.sort_key().cmp(&scope.sort_key())) {
            Ok(index) => self.sections[index] = section,
            Err(index) => self.sections.insert(index, section),
        }
        Ok(())
    }

    /// Writes the store atomically, creating its folder if needed (§5).
    pub fn save(&self) -> Result<()> {
        fsutil::create_dir_all(&self.dir)?;
        fsutil::write_atomic(&self.path(), &encode(&self.sections))
    }

    fn keys(&self) -> impl Iterator<Item = &StoredKey> {
        self.sections.iter().flat_map(|section| &section.keys)
    }
}

/// Encodes sections already in canonical order (§3).
fn encode(sections: &[Section]) -> Vec<u8> {
    let mut text = format!("{MAGIC}\n");
    for section in sections {
        let (scope, threshold, rotation) = (&section.scope, section.threshold, section.rotation);
        text.push_str(&format!("repository: {scope}\nthreshold: {threshold}\nrotation: {rotation}\n"));
        for stored in &section.keys {
            let label = stored.label.as_deref().unwrap_or("-");
            text.push_str(&format!("key: {} {} {label}\n", stored.key.id, hex::encode(stored.key.key.as_bytes())));
        }
    }
    text.into_bytes()
}

/// Decodes and checks a store (§6 R1-R8).
fn decode(bytes: &[u8], path: &Utf8Path) -> Result<Vec<Section>> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::format(path, "not UTF-8"))?;
    let body =
        text.strip_suffix('\n').ok_or_else(|| Error::format(path, "does not end with a newline (truncated?)"))?;
    let mut lines = body.split('\n').enumerate().map(|(index, line)| (index + 1, line)).peekable();
    if lines.next().map(|(_, line)| line) != Some(MAGIC) {
        return Err(Error::format(
            path,
            format!("line 1: expected `{MAGIC}` (wrong kind of file or unsupported version)"),
        ));
    }
    let fail = |n: usize, problem: String| Error::format(path, format!("line {n}: {problem}"));
    let mut sections: Vec<Section> = Vec::new();
    while let Some((n, line)) = lines.next() {
        let scope = line.strip_prefix("repository: ").ok_or_else(|| fail(n, "expected `repository: ...`".into()))?;
        let scope = Scope::parse(scope).map_err(|e| fail(n, e))?;
        if sections.last().is_some_and(|last| last.scope.sort_key() >= scope.sort_key()) {
            return Err(fail(n, format!("repository `{scope}` is out of order or repeated")));
        }
        let (n, line) = lines.next().ok_or_else(|| Error::format(path, "ends before a `threshold:` line"))?;
        let threshold = line
            .strip_prefix("threshold: ")
            .and_then(|text| text.parse::<usize>().ok().filter(|_| !text.starts_with('0') && !text.starts_with('+')))
            .ok_or_else(|| fail(n, "expected `threshold: N` (N from 1)".into()))?;
        let (n, line) = lines.next().ok_or_else(|| Error::format(path, "ends before a `rotation:` line"))?;
        let rotation = line
            .strip_prefix("rotation: ")
            .and_then(|text| text.parse::<u64>().ok().filter(|_| text == "0" || !text.starts_with(['0', '+'])))
            .ok_or_else(|| fail(n, "expected `rotation: N`".into()))?;
        let mut keys: Vec<StoredKey> = Vec::new();
        while let Some((n, line)) = lines.next_if(|(_, line)| line.starts_with("key: ")) {
            let stored = decode_key(&line["key: ".len()..], path).map_err(|e| fail(n, e))?;
            if keys.last().is_some_and(|last| last.key.id >= stored.key.id) {
                return Err(fail(n, format!("key {} is out of order or repeated", stored.key.id)));
            }
            let clash =
                sections.iter().flat_map(|s| &s.keys).any(|k| k.key.id == stored.key.id && k.key.key != stored.key.key);
            if clash {
                return Err(fail(n, format!("key id {} names two different keys", stored.key.id)));
            }
            keys.push(stored);
        }
        if keys.is_empty() || threshold > keys.len() {
            return Err(fail(
                n,
                format!(
                    "threshold {threshold} but {} for repository `{scope}`",
                    crate::report::counted(keys.len(), "key", "keys")
                ),
            ));
        }
        sections.push(Section { scope, threshold, rotation, keys });
    }
    Ok(sections)
}

/// One `key:` value: key id, public key, label (R5-R6).
fn decode_key(text: &str, path: &Utf8Path) -> Result<StoredKey, String> {
    let mut fields = text.split(' ');
    let (Some(id_text), Some(key_text), Some(label), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("expected `key: KEYID PUBLICKEY LABEL`".into());
    };
    let id = KeyId::from_hex(id_text).ok_or_else(|| format!("`{id_text}` is not a key id"))?;
    let key = parse_public(key_text, path).map_err(|e| match e {
        Error::Format { problem, .. } => problem,
        other => other.to_string(),
    })?;
    if KeyId::of(&key) != id {
        return Err(format!("key id {id} does not match the key (expected {})", KeyId::of(&key)));
    }
    let label = if label == "-" { None } else { Some(check_label(label).map(|_| label.to_owned())?) };
    let stored = StoredKey { key: PublicKey { key, id, origin: path.to_owned() }, label };
    stored.key.check_not_weak().map_err(|_| format!("key {id} is a weak key (a point of small order)"))?;
    Ok(stored)
}
