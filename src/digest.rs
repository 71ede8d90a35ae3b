//! SHA-256 digests and the copy loop that hashes while it reads.
//!
//! Every payload byte ferry touches passes through [`copy_hashing`] exactly
//! once: export hashes while copying onto the media, verify hashes while
//! reading, import hashes while streaming into staging. The loop stops at the
//! expected length plus one byte, so a file that grew can never make ferry
//! read without bound.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};

/// Size of the copy buffer: large enough for sequential throughput,
/// small enough that a few workers stay far below the memory budget.
pub const BUFFER_BYTES: usize = 256 * 1024;

thread_local! {
    /// Each thread's copy buffer, kept between files: allocating (and
    /// zeroing) a fresh one per file cost more than reading the small files
    /// of a repository (10,000 files made 2.6 GB of memset).
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `work` with this thread's copy buffer of [`BUFFER_BYTES`] (a fresh
/// one if the thread's is in use further up the stack).
pub fn with_buffer<T>(work: impl FnOnce(&mut [u8]) -> T) -> T {
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() < BUFFER_BYTES {
                buffer.resize(BUFFER_BYTES, 0);
            }
            work(&mut buffer[..BUFFER_BYTES])
        }
        Err(_) => work(&mut vec![0u8; BUFFER_BYTES]),
    })
}

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Digest(bytes))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex digits, for people.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_owned()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

/// What a hashing copy saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashed {
    /// Bytes read, at most `limit + 1`.
    pub size: u64,
    /// SHA-256 of those bytes.
    pub digest: Digest,
}

/// Copies `reader` into `writer` (if any) while hashing, reading at most
/// `limit + 1` bytes so that an over-long input is detected without
/// reading it all. `progress` is called with each chunk's length.
pub fn copy_hashing(
    reader: &mut dyn Read,
    mut writer: Option<&mut dyn Write>,
    limit: u64,
    progress: &dyn Fn(u64),
) -> io::Result<Hashed> {
    with_buffer(|buffer| {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut limited = reader.take(limit.saturating_add(1));
        loop {
            let read = match limited.read(buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buffer[..read]);
            if let Some(writer) = writer.as_deref_mut() {
                writer.write_all(&buffer[..read])?;
            }
            size += read as u64;
            progress(read as u64);
        }
        Ok(Hashed { size, digest: Digest(hasher.finalize().into()) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_known_value() {
        let empty = Digest::of(b"");
        assert_eq!(empty.to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(Digest::from_hex(&empty.to_hex()), Some(empty));
        assert_eq!(Digest::from_hex(&empty.to_hex().to_uppercase()), None);
        assert_eq!(Digest::from_hex("abc"), None);
    }

    #[test]
    fn copy_stops_one_byte_past_the_limit() {
        let data = vec![7u8; 1000];
        let mut out = Vec::new();
        let hashed = copy_hashing(&mut &data[..], Some(&mut out), 10, &|_| {}).unwrap();
        assert_eq!(hashed.size, 11);
        assert_eq!(out.len(), 11);
    }
}
