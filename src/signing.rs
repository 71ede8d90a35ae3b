//! Keys, trust stores, detached signatures and strict verification:
//! `formats/keys-v1.md` and `formats/signature-v1.md`.
//!
//! The only way to obtain a [`VerifiedSnapshot`] is [`verify`], which checks
//! a signature by a trusted key over the exact manifest bytes *before* the
//! manifest is parsed. Code that installs or trusts anything takes a
//! `VerifiedSnapshot`, so unverified bytes cannot reach it by mistake.

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::manifest::Manifest;
use camino::{Utf8Path, Utf8PathBuf};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::fmt;
use zeroize::Zeroizing;

/// Prefix of every signed message: a signature over a manifest cannot be
/// replayed as a signature over anything else (formats/signature-v1.md §3).
pub const SIGNATURE_DOMAIN: &[u8] = b"ferry manifest signature v1\0";
/// Largest signature file a reader accepts.
pub const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;
/// Largest key file a reader accepts.
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;
const SIGNATURE_MAGIC: &str = "ferry signature v1";
const PUBLIC_MAGIC: &str = "ferry public-key v1";
const SECRET_MAGIC: &str = "ferry secret-key v1";
const PROTECTION: &str = "argon2id-xchacha20poly1305";
/// Argon2id cost: 64 MiB, 3 passes, 1 lane (formats/keys-v1.md §4).
const KDF_MEMORY_KIB: u32 = 65_536;
const KDF_PASSES: u32 = 3;
const KDF_LANES: u32 = 1;

/// The short id of a public key: the first 8 bytes of its SHA-256, in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// The id of `key`.
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = Digest::of(key.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest.0[..8]);
        KeyId(id)
    }

    fn from_hex(text: &str) -> Option<Self> {
        let mut id = [0u8; 8];
        (text.len() == 16 && !text.bytes().any(|b| b.is_ascii_uppercase()))
            .then(|| hex::decode_to_slice(text, &mut id).ok())
            .flatten()
            .map(|_| KeyId(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A public key someone trusts, with where it came from.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// The ed25519 key.
    pub key: VerifyingKey,
    /// Its id.
    pub id: KeyId,
    /// The file it was read from.
    pub origin: Utf8PathBuf,
}

/// A secret signing key, unlocked.
pub struct SecretKey {
    key: SigningKey,
    id: KeyId,
}

impl SecretKey {
    /// Makes a new key from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())
            .map_err(|e| Error::io("read random bytes for", "the new key", std::io::Error::other(e.to_string())))?;
        let key = SigningKey::from_bytes(&seed);
        let id = KeyId::of(&key.verifying_key());
        Ok(SecretKey { key, id })
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Encodes the public half as a `.pub` file.
    pub fn public_file(&self) -> String {
        format!("{PUBLIC_MAGIC}\nid: {}\nkey: {}\n", self.id, hex::encode(self.key.verifying_key().as_bytes()))
    }

    /// Encodes the secret key file, encrypted with `passphrase` unless it is `None`.
    pub fn secret_file(&self, passphrase: Option<&[u8]>) -> Result<Zeroizing<String>> {
        let public = self.key.verifying_key();
        let mut text =
            Zeroizing::new(format!("{SECRET_MAGIC}\nid: {}\npublic: {}\n", self.id, hex::encode(public.as_bytes())));
        let Some(passphrase) = passphrase else {
            text.push_str(&format!("protection: none\nsecret: {}\n", hex::encode(self.key.to_bytes())));
            return Ok(text);
        };
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        let random_error = |e: getrandom::Error| {
            Error::io("read random bytes for", "the key file", std::io::Error::other(e.to_string()))
        };
        getrandom::fill(&mut salt).map_err(random_error)?;
        getrandom::fill(&mut nonce).map_err(random_error)?;
        let cipher = cipher_for(passphrase, &salt)?;
        let seed = Zeroizing::new(self.key.to_bytes());
        let sealed = cipher
            .encrypt(&nonce.into(), Payload { msg: seed.as_ref(), aad: public.as_bytes() })
            .map_err(|_| Error::Passphrase("encryption of the secret key failed".into()))?;
        text.push_str(&format!(
            "protection: {PROTECTION}\nkdf: m={KDF_MEMORY_KIB} t={KDF_PASSES} p={KDF_LANES}\nsalt: {}\nnonce: {}\nsecret: {}\n",
            hex::encode(salt),
            hex::encode(nonce),
            hex::encode(sealed)
        ));
        Ok(text)
    }

    /// Reads a `.key` file; `passphrase` is asked for only if the key is protected.
    pub fn load(path: &Utf8Path, passphrase: &mut dyn FnMut(KeyId) -> Result<Zeroizing<Vec<u8>>>) -> Result<Self> {
        let text = read_capped(path, MAX_KEY_FILE_BYTES)?;
        let text = Zeroizing::new(String::from_utf8(text).map_err(|_| Error::format(path, "not UTF-8"))?);
        let mut reader = KeyValueLines::new(&text, path, SECRET_MAGIC)?;
        let id = reader.value("id")?;
        let id = KeyId::from_hex(id).ok_or_else(|| Error::format(path, format!("`{id}` is not a key id")))?;
        let public = parse_public(reader.value("public")?, path)?;
        if KeyId::of(&public) != id {
            return Err(Error::format(path, "key id does not match the public key"));
        }
        let seed: Zeroizing<[u8; 32]> = match reader.value("protection")? {
            "none" => Zeroizing::new(hex_array(reader.value("secret")?, path, "secret")?),
            PROTECTION => {
                let kdf = reader.value("kdf")?;
                if kdf != format!("m={KDF_MEMORY_KIB} t={KDF_PASSES} p={KDF_LANES}") {
                    return Err(Error::format(path, format!("unsupported kdf parameters `{kdf}`")));
                }
                let salt: [u8; 16] = hex_array(reader.value("salt")?, path, "salt")?;
                let nonce: [u8; 24] = hex_array(reader.value("nonce")?, path, "nonce")?;
                let sealed: [u8; 48] = hex_array(reader.value("secret")?, path, "secret")?;
                let passphrase = passphrase(id)?;
                let cipher = cipher_for(&passphrase, &salt)?;
                let seed = cipher
                    .decrypt(&nonce.into(), Payload { msg: &sealed, aad: public.as_bytes() })
                    .map_err(|_| Error::WrongPassphrase { path: path.to_owned(), key_id: id.to_string() })?;
                let seed = Zeroizing::new(seed);
                let mut array = Zeroizing::new([0u8; 32]);
                array.copy_from_slice(&seed);
                array
            }
            other => return Err(Error::format(path, format!("unknown protection `{other}`"))),
        };
        reader.end()?;
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key() != public {
            return Err(Error::format(path, "secret key does not match its public key"));
        }
        Ok(SecretKey { key, id })
    }

    /// A trust store holding only this key's public half (read-back after
    /// export checks the media against the key that signed it).
    pub fn own_trust(&self) -> TrustStore {
        let key = self.key.verifying_key();
        TrustStore { keys: vec![PublicKey { key, id: self.id, origin: "the signing key".into() }] }
    }

    /// Signs exact manifest bytes and returns the signature file.
    pub fn sign_manifest(&self, manifest_bytes: &[u8]) -> Vec<u8> {
        let signature = self.key.sign(&signed_message(manifest_bytes));
        format!("{SIGNATURE_MAGIC}\nsignature: {} {}\n", self.id, hex::encode(signature.to_bytes())).into_bytes()
    }
}

fn cipher_for(passphrase: &[u8], salt: &[u8]) -> Result<XChaCha20Poly1305> {
    let params = argon2::Params::new(KDF_MEMORY_KIB, KDF_PASSES, KDF_LANES, Some(32))
        .map_err(|e| Error::Passphrase(format!("argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|e| Error::Passphrase(format!("key derivation failed: {e}")))?;
    Ok(XChaCha20Poly1305::new(&(*key).into()))
}

fn signed_message(manifest_bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + manifest_bytes.len());
    message.extend_from_slice(SIGNATURE_DOMAIN);
    message.extend_from_slice(manifest_bytes);
    message
}

/// The public keys an importing site trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: Vec<PublicKey>,
}

impl TrustStore {
    /// Loads `.pub` files, or every `*.pub` file in a directory, for each path.
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
            return Err(Error::NoTrust);
        }
        Ok(TrustStore { keys })
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    fn find(&self, id: KeyId) -> Option<&PublicKey> {
        self.keys.iter().find(|key| key.id == id)
    }

    fn describe(&self) -> String {
        self.keys.iter().map(|key| key.id.to_string()).collect::<Vec<_>>().join(", ")
    }
}

/// Reads a `.pub` file.
pub fn load_public(path: &Utf8Path) -> Result<PublicKey> {
    let text = read_capped(path, MAX_KEY_FILE_BYTES)?;
    let text = String::from_utf8(text).map_err(|_| Error::format(path, "not UTF-8"))?;
    let mut reader = KeyValueLines::new(&text, path, PUBLIC_MAGIC)?;
    let id_text = reader.value("id")?;
    let id = KeyId::from_hex(id_text).ok_or_else(|| Error::format(path, format!("`{id_text}` is not a key id")))?;
    let key = parse_public(reader.value("key")?, path)?;
    reader.end()?;
    if KeyId::of(&key) != id {
        return Err(Error::format(
            path,
            format!("key id {id_text} does not match the key (expected {})", KeyId::of(&key)),
        ));
    }
    Ok(PublicKey { key, id, origin: path.to_owned() })
}

fn parse_public(text: &str, path: &Utf8Path) -> Result<VerifyingKey> {
    let bytes: [u8; 32] = hex_array(text, path, "public key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| Error::format(path, "the public key is not a valid ed25519 point"))
}

fn hex_array<const N: usize>(text: &str, path: &Utf8Path, what: &str) -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    if text.len() != 2 * N
        || text.bytes().any(|b| b.is_ascii_uppercase())
        || hex::decode_to_slice(text, &mut bytes).is_err()
    {
        return Err(Error::format(path, format!("{what}: expected {} lowercase hex digits", 2 * N)));
    }
    Ok(bytes)
}

/// Reads a small file, refusing one larger than `cap` bytes.
pub(crate) fn read_capped(path: &Utf8Path, cap: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ctx("open", path)?;
    // Refuse an oversized regular file before reading a byte of it; the
    // capped read below still guards files whose size lies (pipes, /proc).
    if file.metadata().ctx("inspect", path)?.len() > cap {
        return Err(Error::format(path, format!("larger than the {cap}-byte limit")));
    }
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes).ctx("read", path)?;
    if bytes.len() as u64 > cap {
        return Err(Error::format(path, format!("larger than the {cap}-byte limit")));
    }
    Ok(bytes)
}

/// Reads `key: value` lines in a fixed order after a magic first line.
pub(crate) struct KeyValueLines<'a> {
    lines: std::iter::Enumerate<std::str::Split<'a, char>>,
    path: &'a Utf8Path,
}

impl<'a> KeyValueLines<'a> {
    /// Checks the first line is `magic` and the text ends with a newline.
    pub(crate) fn new(text: &'a str, path: &'a Utf8Path, magic: &str) -> Result<Self> {
        let body =
            text.strip_suffix('\n').ok_or_else(|| Error::format(path, "does not end with a newline (truncated?)"))?;
        let mut lines = body.split('\n').enumerate();
        match lines.next() {
            Some((_, first)) if first == magic => Ok(KeyValueLines { lines, path }),
            _ => Err(Error::format(
                path,
                format!("line 1: expected `{magic}` (wrong kind of file or unsupported version)"),
            )),
        }
    }

    /// The value of the next line, which must be `key: value`.
    pub(crate) fn value(&mut self, key: &str) -> Result<&'a str> {
        let (index, line) =
            self.lines.next().ok_or_else(|| Error::format(self.path, format!("missing `{key}:` line")))?;
        line.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(": "))
            .ok_or_else(|| Error::format(self.path, format!("line {}: expected `{key}: ...`", index + 1)))
    }

    /// The next line's key and value, or `None` at the end.
    pub(crate) fn next_pair(&mut self) -> Result<Option<(usize, &'a str, &'a str)>> {
        let Some((index, line)) = self.lines.next() else { return Ok(None) };
        let (key, value) = line
            .split_once(": ")
            .ok_or_else(|| Error::format(self.path, format!("line {}: expected `key: value`", index + 1)))?;
        Ok(Some((index + 1, key, value)))
    }

    /// Fails if lines are left.
    pub(crate) fn end(mut self) -> Result<()> {
        match self.lines.next() {
            None => Ok(()),
            Some((index, _)) => Err(Error::format(self.path, format!("line {}: unexpected extra line", index + 1))),
        }
    }
}

/// A snapshot whose manifest bytes carry a valid signature by a trusted key,
/// decoded. Only [`verify`] creates one.
#[derive(Debug, Clone)]
pub struct VerifiedSnapshot {
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    signature_bytes: Vec<u8>,
    id: Digest,
    signer: KeyId,
}

impl VerifiedSnapshot {
    /// The decoded manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The exact signed bytes of the manifest.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }
    /// The exact bytes of the signature file.
    pub fn signature_bytes(&self) -> &[u8] {
        &self.signature_bytes
    }
    /// The snapshot id: SHA-256 of the manifest bytes.
    pub fn id(&self) -> Digest {
        self.id
    }
    /// The trusted key whose signature verified.
    pub fn signer(&self) -> KeyId {
        self.signer
    }
}

/// Checks `signature_bytes` against `manifest_bytes` and the trust store,
/// then decodes the manifest. The order is the one `formats/signature-v1.md`
/// prescribes: signature file syntax, a trusted signer, the signature
/// itself, and only then the manifest's content.
pub fn verify(
    manifest_bytes: Vec<u8>,
    manifest_path: &Utf8Path,
    signature_bytes: Vec<u8>,
    signature_path: &Utf8Path,
    trust: &TrustStore,
) -> Result<VerifiedSnapshot> {
    let text = std::str::from_utf8(&signature_bytes).map_err(|_| Error::format(signature_path, "not UTF-8"))?;
    let mut reader = KeyValueLines::new(text, signature_path, SIGNATURE_MAGIC)?;
    let mut signatures = Vec::new();
    while let Some((line, key, value)) = reader.next_pair()? {
        if key != "signature" {
            return Err(Error::format(signature_path, format!("line {line}: expected `signature: KEYID HEX`")));
        }
        let (id_text, signature_text) = value
            .split_once(' ')
            .ok_or_else(|| Error::format(signature_path, format!("line {line}: expected `signature: KEYID HEX`")))?;
        let id = KeyId::from_hex(id_text)
            .ok_or_else(|| Error::format(signature_path, format!("line {line}: `{id_text}` is not a key id")))?;
        let signature: [u8; 64] = hex_array(signature_text, signature_path, "signature")?;
        signatures.push((id, Signature::from_bytes(&signature)));
    }
    if signatures.is_empty() {
        return Err(Error::format(signature_path, "contains no signature"));
    }
    let trusted: Vec<_> =
        signatures.iter().filter_map(|(id, signature)| trust.find(*id).map(|key| (*id, signature, key))).collect();
    let Some(&(signer, _, _)) = trusted.first() else {
        return Err(Error::UntrustedKey {
            path: signature_path.to_owned(),
            signed_by: signatures.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>().join(", "),
            trusted: trust.describe(),
        });
    };
    if manifest_bytes.len() as u64 > crate::manifest::MAX_MANIFEST_BYTES {
        return Err(Error::format(manifest_path, "larger than the manifest size limit"));
    }
    // Every signature by a trusted key must hold: one that does not is
    // evidence of damage or forgery, never something to skip over.
    let message = signed_message(&manifest_bytes);
    for (id, signature, key) in &trusted {
        key.key
            .verify_strict(&message, signature)
            .map_err(|_| Error::BadSignature { path: signature_path.to_owned(), key_id: id.to_string() })?;
    }
    let manifest = Manifest::decode(&manifest_bytes, manifest_path)?;
    let snapshot_id = Digest::of(&manifest_bytes);
    Ok(VerifiedSnapshot { manifest, manifest_bytes, signature_bytes, id: snapshot_id, signer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_key_round_trip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("k.key")).unwrap();
        let key = SecretKey::generate().unwrap();
        std::fs::write(&path, key.secret_file(Some(b"correct horse")).unwrap().as_bytes()).unwrap();
        let loaded = SecretKey::load(&path, &mut |_| Ok(Zeroizing::new(b"correct horse".to_vec()))).unwrap();
        assert_eq!(loaded.id(), key.id());
        let wrong = SecretKey::load(&path, &mut |_| Ok(Zeroizing::new(b"wrong".to_vec())));
        assert!(matches!(wrong, Err(Error::WrongPassphrase { .. })));
    }

    #[test]
    fn sign_then_verify_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        let key = SecretKey::generate().unwrap();
        std::fs::write(root.join("k.pub"), key.public_file()).unwrap();
        let trust = TrustStore::load(&[root.join("k.pub")]).unwrap();
        let manifest = b"ferry manifest v1\nrepository: r\nsequence: 1\ncreated: 2026-11-24T13:00:00Z\nexpires: never\nlayout: tree\nbase: none\nentries: 0\n".to_vec();
        let signature = key.sign_manifest(&manifest);
        let path = Utf8Path::new("m");
        let verified = verify(manifest.clone(), path, signature.clone(), path, &trust).unwrap();
        assert_eq!(verified.signer(), key.id());
        let mut tampered = manifest.clone();
        tampered[40] ^= 1;
        assert!(matches!(verify(tampered, path, signature, path, &trust), Err(Error::BadSignature { .. })));
        let other = SecretKey::generate().unwrap();
        assert!(matches!(
            verify(manifest.clone(), path, other.sign_manifest(&manifest), path, &trust),
            Err(Error::UntrustedKey { .. })
        ));
    }
}
