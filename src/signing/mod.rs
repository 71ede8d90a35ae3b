//! Keys, signature files and strict verification: `formats/keys-v1.md` and
//! `formats/signature-v1.md`.
//!
//! * [`keys`]: key ids, public and secret keys, the weak-key check.
//! * [`key_file`]: the `.pub` and `.key` files and passphrase encryption.
//! * [`signature_file`]: the `manifest.sig` lines.
//! * [`trust`]: the keys and thresholds the verifier consults.
//! * [`verify`]: [`Signed`] bytes become a [`Verified`] document here only.
//! * [`installed`]: the manifest a target says it serves, tied to its state
//!   marker or re-verified.

pub mod installed;
pub mod key_file;
pub mod keys;
pub mod signature_file;
pub mod trust;
pub mod verify;

pub use installed::InstalledManifest;
pub use key_file::load_public;
pub use keys::{KeyId, PublicKey, SecretKey};
pub use signature_file::{MAX_SIGNATURE_BYTES, SignatureFile, SignatureLine};
pub use trust::{KeySet, TrustStore};
pub use verify::{Document, SIGNATURE_DOMAIN, Signed, Verified, VerifiedSnapshot, verify};

pub(crate) use verify::signed_message;
