//! Binary patches between two versions of a file: zstd's patch-from mode
//! (the old version is the compressor's reference prefix), as specified in
//! `formats/delta-v1.md` §4 (P1 to P4).
//!
//! Memory is bounded: both versions must be at most [`MAX_PATCH_INPUT`]
//! bytes, so the old version (held in memory as the reference) and the
//! decoder's window (2^[`WINDOW_LOG`] bytes) stay below about 192 MiB. A
//! larger file is never patched: it ships whole. A patch ships only when
//! it is clearly smaller than the file ([`worth_shipping`]).
//!
//! Applying a patch never trusts it: the output is capped at the size the
//! signed manifest gives (one byte more is "oversized"), hashed as it is
//! written, and refused unless size and SHA-256 are the signed ones. What
//! the caller wrote to must then be discarded.

use crate::digest::{Digest, Hashed, copy_hashing};
use crate::error::{Error, Result};
use crate::manifest::FileEntry;
use camino::Utf8Path;
use std::io::{Read, Write};

/// Largest old or new version that is patched; above it the file ships whole.
pub const MAX_PATCH_INPUT: u64 = 64 * 1024 * 1024;
/// zstd window: 2^27 = 128 MiB, enough for an old and a new version of
/// [`MAX_PATCH_INPUT`] bytes each. The decoder refuses a larger window.
pub const WINDOW_LOG: u32 = 27;
/// zstd level for patches. Measured (release build, pseudo-random files of
/// 1, 8 and 32 MiB with 2% of bytes changed in 20 places plus 1% appended):
/// patches of 2.1% of the file at levels 3, 9 and 19 alike (within 0.5%),
/// in 84 ms, 321 ms and 11.4 s for 32 MiB. The changed bytes dominate.
pub const LEVEL: i32 = 3;

/// Whether a patch of `patch_size` bytes is clearly smaller than shipping
/// the `file_size`-byte file: at most half of it, and 4 KiB less at
/// least. Below that the saving does not pay for a second code path at
/// import (and a file that shrinks little usually changed throughout).
pub fn worth_shipping(patch_size: u64, file_size: u64) -> bool {
    patch_size <= file_size / 2 && patch_size + 4096 <= file_size
}

/// The FROM of a compressed file (formats/delta-v1.md D2a): the SHA-256
/// of no bytes. Its patch applies to an empty reference, so it needs no
/// old version and serves every base.
pub const FROM_NOTHING: Digest = Digest([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// Whether compressing a `file_size`-byte file to `compressed_size` bytes
/// is worth shipping a patch from no bytes instead of the file (P3a): it
/// saves an eighth at least, and a tar block (512 bytes), which less could
/// vanish into a volume's padding.
pub fn worth_compressing(compressed_size: u64, file_size: u64) -> bool {
    compressed_size <= file_size - file_size / 8 && compressed_size + 512 <= file_size
}

/// Makes a patch turning `old` into `new`, or `None` when either is larger
/// than [`MAX_PATCH_INPUT`] or the patch is not [`worth_shipping`].
pub fn make(old: &[u8], new: &[u8]) -> Result<Option<Vec<u8>>> {
    let patch = encode(old, new)?;
    Ok(patch.filter(|patch| worth_shipping(patch.len() as u64, new.len() as u64)))
}

/// Makes a compressed file (D2a: a patch from no bytes, applied with
/// [`apply`] to `&[]`), or `None` when `new` is larger than
/// [`MAX_PATCH_INPUT`] or does not shrink enough ([`worth_compressing`]).
pub fn compress(new: &[u8]) -> Result<Option<Vec<u8>>> {
    let patch = encode(&[], new)?;
    Ok(patch.filter(|patch| worth_compressing(patch.len() as u64, new.len() as u64)))
}

/// One zstd frame of `new` with `old` as the reference prefix (P1), or
/// `None` when either is larger than [`MAX_PATCH_INPUT`].
fn encode(old: &[u8], new: &[u8]) -> Result<Option<Vec<u8>>> {
    if old.len() as u64 > MAX_PATCH_INPUT || new.len() as u64 > MAX_PATCH_INPUT {
        return Ok(None);
    }
    let failed = |e: std::io::Error| Error::io("make a patch for", "a file", e);
    let mut encoder = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), LEVEL, old).map_err(failed)?;
    encoder.window_log(WINDOW_LOG).map_err(failed)?;
    encoder.long_distance_matching(true).map_err(failed)?;
    encoder.include_checksum(false).map_err(failed)?;
    encoder.set_pledged_src_size(Some(new.len() as u64)).map_err(failed)?;
    encoder.write_all(new).map_err(failed)?;
    encoder.finish().map(Some).map_err(failed)
}

/// Applies `patch` to `old`, writing the result to `out`, and checks it
/// against `expected` (the signed manifest's entry for `path`). On any
/// error, what was written to `out` must be discarded.
pub fn apply(
    old: &[u8],
    patch: &mut dyn Read,
    expected: &FileEntry,
    path: &Utf8Path,
    out: &mut dyn Write,
) -> Result<Hashed> {
    let refused = |problem: String| Error::Mismatch { path: path.to_owned(), problem };
    if old.len() as u64 > MAX_PATCH_INPUT || expected.size > MAX_PATCH_INPUT {
        return Err(refused(format!("a patch is never applied to files over {MAX_PATCH_INPUT} bytes")));
    }
    let mut decoder = zstd::stream::read::Decoder::with_ref_prefix(std::io::BufReader::new(patch), old)
        .map_err(|e| refused(format!("cannot start applying the patch: {e}")))?;
    decoder.window_log_max(WINDOW_LOG).map_err(|e| refused(format!("cannot start applying the patch: {e}")))?;
    let hashed = copy_hashing(&mut decoder, Some(out), expected.size, &|_| {})
        .map_err(|e| refused(format!("the patch is damaged or truncated: {e}")))?;
    if hashed.size > expected.size {
        return Err(refused(format!("the patch produces more than the {} bytes signed (oversized)", expected.size)));
    }
    if hashed.size < expected.size {
        return Err(refused(format!(
            "the patch produces {} bytes, the signed manifest says {} (truncated?)",
            hashed.size, expected.size
        )));
    }
    if hashed.digest != expected.digest {
        return Err(refused(format!(
            "the patched file has SHA-256 {}, the signed manifest says {}",
            hashed.digest.short(),
            expected.digest.short()
        )));
    }
    Ok(hashed)
}

/// The manifest entry a patch must produce, for callers that know only
/// the bytes (tests, `ferry diff`).
pub fn entry_of(bytes: &[u8]) -> FileEntry {
    FileEntry { size: bytes.len() as u64, digest: Digest::of(bytes), executable: false, index: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn edited(old: &[u8]) -> Vec<u8> {
        let mut new = old.to_vec();
        new[1000..3000].copy_from_slice(&data(99, 2000));
        new.extend_from_slice(&data(7, 5000));
        new
    }

    #[test]
    fn a_small_edit_gives_a_small_patch_that_reproduces_the_file() {
        let old = data(1, 4 << 20);
        let new = edited(&old);
        let patch = make(&old, &new).unwrap().expect("worth shipping");
        assert!(patch.len() < 10_000, "patch of {} bytes", patch.len());
        let mut out = Vec::new();
        apply(&old, &mut &patch[..], &entry_of(&new), Utf8Path::new("f"), &mut out).unwrap();
        assert_eq!(out, new);
    }

    #[test]
    fn from_nothing_is_the_digest_of_no_bytes() {
        assert_eq!(FROM_NOTHING, Digest::of(b""));
    }

    #[test]
    fn text_is_compressed_and_random_bytes_are_not() {
        let text: Vec<u8> = (0..2000)
            .flat_map(|i| format!("  <entry id=\"{i}\" size=\"{}\"/>\n", i * 7919 % 100_003).into_bytes())
            .collect();
        let compressed = compress(&text).unwrap().expect("text shrinks");
        assert!(compressed.len() < text.len() / 4, "{} of {} bytes", compressed.len(), text.len());
        let mut out = Vec::new();
        apply(&[], &mut &compressed[..], &entry_of(&text), Utf8Path::new("f"), &mut out).unwrap();
        assert_eq!(out, text);
        assert!(compress(&data(5, 100_000)).unwrap().is_none(), "random bytes do not shrink");
        assert!(compress(&text[..600]).unwrap().is_none(), "saves less than a tar block");
    }

    #[test]
    fn unrelated_content_or_large_files_ship_whole() {
        assert!(make(&data(1, 1 << 20), &data(2, 1 << 20)).unwrap().is_none());
        let big = vec![0u8; MAX_PATCH_INPUT as usize + 1];
        assert!(make(&big[..10], &big).unwrap().is_none());
    }

    #[test]
    fn wrong_truncated_and_oversized_results_are_refused() {
        let old = data(1, 1 << 20);
        let new = edited(&old);
        let patch = make(&old, &new).unwrap().unwrap();
        let path = Utf8Path::new("f");
        let apply_to = |old: &[u8], patch: &[u8], expected: &FileEntry| {
            apply(old, &mut &patch[..], expected, path, &mut Vec::new()).unwrap_err().to_string()
        };
        // Another base gives other bytes: the digest check refuses them.
        let other_base = data(3, 1 << 20);
        let error = apply_to(&other_base, &patch, &entry_of(&new));
        assert!(error.contains("SHA-256") || error.contains("damaged"), "{error}");
        let error = apply_to(&old, &patch[..patch.len() / 2], &entry_of(&new));
        assert!(error.contains("truncated"), "{error}");
        let mut shorter = entry_of(&new);
        shorter.size -= 1;
        assert!(apply_to(&old, &patch, &shorter).contains("oversized"));
        let mut wrong = entry_of(&new);
        wrong.digest = Digest([0; 32]);
        assert!(apply_to(&old, &patch, &wrong).contains("SHA-256"));
        assert!(apply_to(&old, b"not a zstd frame", &entry_of(&new)).contains("damaged"));
    }
}
