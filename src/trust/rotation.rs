//! Rotation statements (`formats/rotation-v1.md`): a change to one
//! repository's keys and threshold, signed by the keys that count now,
//! carried on the media and applied on import before the snapshot is
//! checked. A statement is a [`Document`]: only the verifier decodes it,
//! against the trust store as it is before the statement applies.

use super::store::{Store, StoredKey, check_label};
use crate::clock;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::lines::KeyValueLines;
use crate::manifest::RepositoryId;
use crate::signing::key_file::parse_public;
use crate::signing::verify::sealed;
use crate::signing::{Document, KeyId, PublicKey, Signed, Verified};
use camino::{Utf8Path, Utf8PathBuf};
use jiff::Timestamp;

/// First line of a statement.
const MAGIC: &str = "ferry rotation v1";
/// Prefix of the signed message (§4).
pub const ROTATION_DOMAIN: &[u8] = b"ferry rotation signature v1\0";
/// Largest statement a reader accepts (§2).
pub const MAX_ROTATION_BYTES: u64 = 64 * 1024;
/// Folder on a drive holding statements, one folder per repository inside
/// (beside `ferry/`, whose every `REPOSITORY/*` folder is a snapshot).
pub const ROTATIONS_ROOT: &str = "ferry-rotations";

/// A change to one repository's trusted keys and threshold.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The repository whose keys change.
    pub repository: RepositoryId,
    /// Place in the repository's chain of rotations, from 1.
    pub number: u64,
    /// When it was made.
    pub created: Timestamp,
    /// The threshold afterwards.
    pub threshold: usize,
    /// Keys that join, sorted by key id.
    pub add: Vec<StoredKey>,
    /// Keys that leave, sorted.
    pub remove: Vec<KeyId>,
}

impl Rotation {
    /// Encodes the statement (§2); `add` and `remove` are sorted first.
    pub fn encode(&self) -> Vec<u8> {
        let mut add: Vec<&StoredKey> = self.add.iter().collect();
        add.sort_by_key(|stored| stored.key.id);
        let mut remove = self.remove.clone();
        remove.sort();
        let mut text = format!(
            "{MAGIC}\nrepository: {}\nnumber: {}\ncreated: {}\nthreshold: {}\n",
            self.repository,
            self.number,
            clock::format(self.created),
            self.threshold
        );
        for stored in add {
            let label = stored.label.as_deref().unwrap_or("-");
            text.push_str(&format!("add: {} {} {label}\n", stored.key.id, hex::encode(stored.key.key.as_bytes())));
        }
        for id in remove {
            text.push_str(&format!("remove: {id}\n"));
        }
        text.into_bytes()
    }

    fn decode(bytes: &[u8], path: &Utf8Path) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::format(path, "not UTF-8"))?;
        let mut lines = KeyValueLines::new(text, path, MAGIC)?;
        let repository = RepositoryId::new(lines.value("repository")?).map_err(|e| Error::format(path, e))?;
        let number_text = lines.value("number")?;
        let number = decimal(number_text)
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::format(path, format!("`{number_text}` is not a rotation number")))?;
        let created_text = lines.value("created")?;
        let created = clock::parse(created_text)
            .ok_or_else(|| Error::format(path, format!("`{created_text}` is not a time like 2026-11-24T13:00:00Z")))?;
        let threshold_text = lines.value("threshold")?;
        let threshold = decimal(threshold_text)
            .filter(|n| *n > 0)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Error::format(path, format!("`{threshold_text}` is not a threshold")))?;
        let (mut add, mut remove) = (Vec::new(), Vec::new());
        while let Some((line, key, value)) = lines.next_pair()? {
            let fail = |problem: String| Error::format(path, format!("line {line}: {problem}"));
            match key {
                "add" if remove.is_empty() => add.push(decode_added(value, path).map_err(fail)?),
                "remove" => {
                    remove.push(KeyId::from_hex(value).ok_or_else(|| fail(format!("`{value}` is not a key id")))?)
                }
                _ => {
                    return Err(fail("expected `add: KEYID PUBLICKEY LABEL` lines, then `remove: KEYID` lines".into()));
                }
            }
        }
        let rotation = Rotation { repository, number, created, threshold, add, remove };
        rotation.check().map_err(|problem| Error::format(path, problem))?;
        if rotation.encode() != bytes {
            return Err(Error::format(path, "`add` or `remove` lines are not sorted by key id"));
        }
        Ok(rotation)
    }

    /// Each key once, none both added and removed (§2).
    pub fn check(&self) -> Result<(), String> {
        let mut ids: Vec<KeyId> =
            self.add.iter().map(|stored| stored.key.id).chain(self.remove.iter().copied()).collect();
        ids.sort();
        match ids.windows(2).find(|pair| pair[0] == pair[1]) {
            Some(pair) => Err(format!("key {} appears twice (added twice, removed twice, or both)", pair[0])),
            None => Ok(()),
        }
    }
}

fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0');
    canonical.then(|| text.parse().ok()).flatten()
}

fn decode_added(value: &str, path: &Utf8Path) -> Result<StoredKey, String> {
    let mut fields = value.split(' ');
    let (Some(id_text), Some(key_text), Some(label), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("expected `add: KEYID PUBLICKEY LABEL`".into());
    };
    let id = KeyId::from_hex(id_text).ok_or_else(|| format!("`{id_text}` is not a key id"))?;
    let key = parse_public(key_text, path).map_err(|e| e.to_string())?;
    if KeyId::of(&key) != id {
        return Err(format!("key id {id} does not match the key"));
    }
    let label = if label == "-" { None } else { Some(check_label(label).map(|_| label.to_owned())?) };
    Ok(StoredKey { key: PublicKey { key, id, origin: path.to_owned() }, label })
}

impl sealed::Decode for Rotation {
    const DOMAIN: &'static [u8] = ROTATION_DOMAIN;
    const MAX_BYTES: u64 = MAX_ROTATION_BYTES;
    fn decode_verified(bytes: &[u8], origin: &Utf8Path) -> Result<Self> {
        Rotation::decode(bytes, origin)
    }
    fn repository(&self) -> &RepositoryId {
        &self.repository
    }
}

impl Document for Rotation {}

/// A statement found on the media, with where it was.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppliedRotation {
    /// The repository.
    pub repository: String,
    /// The statement's number.
    pub number: u64,
    /// The statement file.
    pub path: Utf8PathBuf,
    /// The keys whose signatures counted.
    pub signed_by: String,
    /// Keys added.
    pub added: Vec<String>,
    /// Keys removed.
    pub removed: Vec<String>,
    /// The threshold afterwards.
    pub threshold: usize,
}

impl AppliedRotation {
    /// One line for people: which statement, signed by whom, what it did.
    pub fn describe(&self) -> String {
        format!(
            "rotation {} of {} (signed by {}): added [{}], removed [{}], threshold {}",
            self.number,
            self.repository,
            self.signed_by,
            self.added.join(", "),
            self.removed.join(", "),
            self.threshold
        )
    }
}

/// Applies, in order, every statement on the drives numbered above what
/// the store in `store_dir` has applied, each verified against the store as
/// the one before left it; writes the store once, atomically, if any
/// applied (§6). A statement that fails leaves the store as it was.
pub fn apply_from_media(store_dir: &Utf8Path, drives: &[Utf8PathBuf]) -> Result<Vec<AppliedRotation>> {
    let (store, applied) = preview_from_media(store_dir, drives)?;
    if !applied.is_empty() {
        store.save()?;
    }
    Ok(applied)
}

/// What [`apply_from_media`] would do, in memory only: the store as the
/// statements on the drives leave it, and the statements applied. `verify`
/// checks media against this without changing the store.
pub fn preview_from_media(store_dir: &Utf8Path, drives: &[Utf8PathBuf]) -> Result<(Store, Vec<AppliedRotation>)> {
    let mut store = Store::open(store_dir)?;
    let mut applied = Vec::new();
    for (repository, files) in statements_on(drives)? {
        let mut last = store.rotation(&repository);
        for (number, path) in files {
            if number <= last {
                continue;
            }
            if number != last + 1 {
                return Err(Error::format(
                    &path,
                    format!("rotation {} of `{repository}` is missing from the media", last + 1),
                ));
            }
            let verified = open(&path, &store)?;
            store.apply(verified.document(), &path)?;
            applied.push(report(&path, &verified));
            last = number;
        }
    }
    Ok((store, applied))
}

fn report(path: &Utf8Path, verified: &Verified<Rotation>) -> AppliedRotation {
    let rotation = verified.document();
    AppliedRotation {
        repository: rotation.repository.to_string(),
        number: rotation.number,
        path: path.to_owned(),
        signed_by: verified.signed_by(),
        added: rotation.add.iter().map(|stored| stored.key.id.to_string()).collect(),
        removed: rotation.remove.iter().map(|id| id.to_string()).collect(),
        threshold: rotation.threshold,
    }
}

/// Reads a statement and its signature file and verifies them against the
/// store as it is now (§4, R1-R3).
fn open(path: &Utf8Path, store: &Store) -> Result<Verified<Rotation>> {
    let signature_path = Utf8PathBuf::from(format!("{path}.sig"));
    let bytes = fsutil::read_capped(path, MAX_ROTATION_BYTES)?;
    let Some(signature) = fsutil::read_optional(&signature_path, crate::signing::MAX_SIGNATURE_BYTES)? else {
        return Err(Error::MissingSignature(path.to_owned()));
    };
    let verified = Signed::<Rotation>::new(bytes, path, signature, &signature_path).verify(&store.policy()?)?;
    let folder = path.parent().and_then(Utf8Path::file_name);
    if folder != Some(verified.document().repository.as_str()) {
        return Err(Error::format(path, "the statement is for another repository than its folder"));
    }
    Ok(verified)
}

/// One repository's statement files, by number.
type Statements = (RepositoryId, Vec<(u64, Utf8PathBuf)>);

/// The statements under `DRIVE/ferry-rotations/REPOSITORY/NUMBER` of every
/// drive, by repository, each number once, in increasing order.
fn statements_on(drives: &[Utf8PathBuf]) -> Result<Vec<Statements>> {
    let mut found: Vec<Statements> = Vec::new();
    for drive in drives {
        let root = drive.join(ROTATIONS_ROOT);
        let Ok(repositories) = root.read_dir_utf8() else { continue };
        for entry in repositories.flatten() {
            let Ok(repository) = RepositoryId::new(entry.file_name()) else { continue };
            let Ok(statements) = entry.path().read_dir_utf8() else { continue };
            let index = match found.iter().position(|(known, _)| *known == repository) {
                Some(index) => index,
                None => {
                    found.push((repository, Vec::new()));
                    found.len() - 1
                }
            };
            for statement in statements.flatten() {
                if let Some(number) = decimal(statement.file_name())
                    && !found[index].1.iter().any(|(known, _)| *known == number)
                {
                    found[index].1.push((number, statement.path().to_owned()));
                }
            }
        }
    }
    for (_, files) in &mut found {
        files.sort();
    }
    found.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    Ok(found)
}

/// Writes statement `rotation`, signed by `keys`, to the media (statement
/// first, signature last, as for a snapshot); refuses to overwrite one.
pub fn write(media: &Utf8Path, rotation: &Rotation, keys: &[crate::signing::SecretKey]) -> Result<Utf8PathBuf> {
    let dir = media.join(ROTATIONS_ROOT).join(rotation.repository.as_str());
    let path = dir.join(rotation.number.to_string());
    let signature_path = dir.join(format!("{}.sig", rotation.number));
    if path.exists() || signature_path.exists() {
        return Err(Error::AlreadyExists(path));
    }
    rotation.check().map_err(Error::InvalidArgument)?;
    let bytes = rotation.encode();
    let lines = keys.iter().map(|key| key.signature_line_for::<Rotation>(&bytes)).collect();
    fsutil::create_dir_all(&dir)?;
    fsutil::write_atomic(&path, &bytes)?;
    fsutil::write_atomic(&signature_path, &crate::signing::SignatureFile { lines }.encode())?;
    Ok(path)
}
