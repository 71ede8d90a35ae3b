//! The `.pub` and `.key` files (formats/keys-v1.md §3, §4): encoding,
//! strict decoding, and the passphrase encryption of secret keys.

use super::keys::{KeyId, PublicKey, SecretKey};
use crate::error::{Error, Result};
use crate::fsutil::read_capped;
use crate::lines::{KeyValueLines, hex_array};
use camino::Utf8Path;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// Largest key file a reader accepts.
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;
const PUBLIC_MAGIC: &str = "ferry public-key v1";
const SECRET_MAGIC: &str = "ferry secret-key v1";
const PROTECTION: &str = "argon2id-xchacha20poly1305";
/// Argon2id cost: 64 MiB, 3 passes, 1 lane (formats/keys-v1.md §4).
const KDF_MEMORY_KIB: u32 = 65_536;
const KDF_PASSES: u32 = 3;
const KDF_LANES: u32 = 1;

impl SecretKey {
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

/// Reads a `.pub` file.
pub fn load_public(path: &Utf8Path) -> Result<PublicKey> {
    let text = read_capped(path, MAX_KEY_FILE_BYTES)?;
    let text = String::from_utf8(text).map_err(|_| Error::format(path, "not UTF-8"))?;
    if text.starts_with(SECRET_MAGIC) {
        return Err(Error::InvalidArgument(format!(
            "`{path}` is a secret key; trusted keys are public keys\nhint: give {} (written beside it by `ferry keygen`), and keep the secret key on the connected host",
            path.with_extension("pub")
        )));
    }
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

/// Decodes a public key written as 64 lowercase hex digits.
pub(crate) fn parse_public(text: &str, path: &Utf8Path) -> Result<VerifyingKey> {
    let bytes: [u8; 32] = hex_array(text, path, "public key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| Error::format(path, "the public key is not a valid ed25519 point"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8PathBuf;

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
}
