//! What the verifier consults: for each repository, the keys whose
//! signatures count and how many distinct ones must sign (formats/keys-v1.md
//! §7 for `--trust` files; formats/trust-store-v1.md for the stored policy).

use super::key_file::load_public;
use super::keys::{KeyId, PublicKey};
use crate::error::{Error, IoContext, Result};
use crate::manifest::RepositoryId;
use camino::Utf8PathBuf;

/// The keys that count for one repository (or for every repository without
/// its own set) and how many of them must sign.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// The repository this set is for; `None` for any repository that has
    /// no set of its own.
    pub repository: Option<RepositoryId>,
    /// The keys whose signatures count.
    pub keys: Vec<PublicKey>,
    /// How many distinct keys of `keys` must sign (at least 1).
    pub threshold: usize,
}

impl KeySet {
    /// The key with id `id`, if it is in this set.
    pub fn find(&self, id: KeyId) -> Option<&PublicKey> {
        self.keys.iter().find(|key| key.id == id)
    }

    /// The ids of the keys, comma-separated, for messages.
    pub fn describe(&self) -> String {
        describe(self.keys.iter().map(|key| key.id))
    }
}

/// Key ids as `a, b, c` for messages.
pub(crate) fn describe(ids: impl IntoIterator<Item = KeyId>) -> String {
    ids.into_iter().map(|id| id.to_string()).collect::<Vec<_>>().join(", ")
}

/// The public keys and thresholds an importing site trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    sets: Vec<KeySet>,
}

impl TrustStore {
    /// Loads `.pub` files, or every `*.pub` file in a directory, for each
    /// path: the `--trust` policy, in which any one of the keys is enough
    /// for any repository.
    pub fn load(paths: &[Utf8PathBuf]) -> Result<Self> {
        let mut keys: Vec<PublicKey> = Vec::new();
        for path in paths {
            let metadata = std::fs::metadata(path).ctx("read trusted key", path)?;
            let files = if metadata.is_dir() {
                let mut files = Vec::new();
                for entry in std::fs::read_dir(path).ctx("list trusted keys in", path)? {
                    let entry = entry.ctx("list trusted keys in", path)?;
                    if let Some(name) = entry.file_name().to_str()
                        && name.ends_with(".pub")
                    {
                        files.push(path.join(name));
                    }
                }
                files.sort();
                files
            } else {
                vec![path.clone()]
            };
            for file in files {
                let key = load_public(&file)?;
                match keys.iter().find(|known| known.id == key.id) {
                    None => keys.push(key),
                    Some(known) if known.key == key.key => {}
                    Some(known) => {
                        let problem =
                            format!("key id {} is also the id of a different key in `{}`", key.id, known.origin);
                        return Err(Error::format(&file, problem));
                    }
                }
            }
        }
        if keys.is_empty() {
            // A folder of secret keys is the likely mix-up; say so.
            let holds_secret_keys = |folder: &Utf8PathBuf| {
                std::fs::read_dir(folder).is_ok_and(|mut entries| {
                    entries.any(|e| e.is_ok_and(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".key"))))
                })
            };
            let folders: Vec<&str> =
                paths.iter().filter(|p| p.is_dir() && holds_secret_keys(p)).map(|p| p.as_str()).collect();
            if !folders.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "no public key (*.pub) in `{}`, only secret keys (*.key)\nhint: copy the public keys (KEY.pub) of the connected host there; secret keys (.key) are never trusted",
                    folders.join("`, `")
                )));
            }
            return Err(Error::NoTrust);
        }
        Ok(Self::from_keys(keys))
    }

    /// A policy in which any one of `keys` is enough for any repository.
    pub fn from_keys(keys: Vec<PublicKey>) -> Self {
        TrustStore { sets: vec![KeySet { repository: None, keys, threshold: 1 }] }
    }

    /// A policy made of the sets given (at most one per repository, at most
    /// one for any repository); [`Error::NoTrust`] if no set has a key.
    pub fn from_sets(sets: Vec<KeySet>) -> Result<Self> {
        if sets.iter().all(|set| set.keys.is_empty()) {
            return Err(Error::NoTrust);
        }
        Ok(TrustStore { sets })
    }

    /// Every trusted key, each once, in the order first seen.
    pub fn keys(&self) -> Vec<&PublicKey> {
        let mut keys: Vec<&PublicKey> = Vec::new();
        for key in self.sets.iter().flat_map(|set| &set.keys) {
            if !keys.iter().any(|known| known.id == key.id) {
                keys.push(key);
            }
        }
        keys
    }

    /// The key with id `id` in any set.
    pub fn find(&self, id: KeyId) -> Option<&PublicKey> {
        self.sets.iter().find_map(|set| set.find(id))
    }

    /// The set that decides for `repository`: its own, else the one for any
    /// repository.
    pub fn key_set(&self, repository: &RepositoryId) -> Option<&KeySet> {
        self.sets
            .iter()
            .find(|set| set.repository.as_ref() == Some(repository))
            .or_else(|| self.sets.iter().find(|set| set.repository.is_none()))
    }

    /// The ids of every trusted key, for messages.
    pub fn describe(&self) -> String {
        describe(self.keys().into_iter().map(|key| key.id))
    }
}
