//! Shared set-up for the fuzz targets in `fuzz_targets/`: the trust store
//! made of the TEST-ONLY sample keys, and a scratch folder for decoders that
//! only read from files (keys, trust stores).

use camino::{Utf8Path, Utf8PathBuf};
use ferry::manifest::Manifest;
use ferry::signing::{SecretKey, TrustStore};
use std::sync::OnceLock;

/// `samples/keys` of this checkout.
pub fn sample_keys() -> Utf8PathBuf {
    Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/keys")
}

/// The three TEST-ONLY public keys, loaded once.
pub fn trust() -> &'static TrustStore {
    static TRUST: OnceLock<TrustStore> = OnceLock::new();
    TRUST.get_or_init(|| TrustStore::load(&[sample_keys()]).expect("samples/keys loads"))
}

/// The TEST-ONLY unprotected secret key, loaded once.
pub fn signing_key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SecretKey::load(&sample_keys().join("TEST-ONLY-DO-NOT-USE.key"), &mut |_| panic!("no passphrase"))
            .expect("the TEST-ONLY key loads")
    })
}

/// Decodes manifest bytes the only way the library allows: through the
/// verifier, with a fresh signature by the TEST-ONLY key.
pub fn decode_signed(bytes: &[u8]) -> ferry::Result<Manifest> {
    let origin = Utf8Path::new("fuzz/manifest");
    let signature = signing_key().sign_manifest(bytes);
    ferry::signing::verify(bytes.to_vec(), origin, signature, origin, trust())
        .map(|verified| verified.manifest().clone())
}

/// A scratch folder that lives as long as the process (under `$TMPDIR`;
/// point it at a tmpfs such as /dev/shm for speed).
pub fn scratch() -> &'static Utf8Path {
    static DIR: OnceLock<(tempfile::TempDir, Utf8PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("ferry-fuzz-").tempdir().expect("scratch folder");
        let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).expect("UTF-8 temp path");
        (dir, path)
    })
    .1
}

/// Splits `data` at NUL bytes into at most `max` parts (the last part keeps
/// any further NULs).
pub fn split_nul(data: &[u8], max: usize) -> Vec<&[u8]> {
    data.splitn(max, |b| *b == 0).collect()
}
