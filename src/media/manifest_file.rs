//! The manifest file of a snapshot folder: `manifest`, or for a delta
//! `manifest.zst`, zstd-compressed (formats/manifest-v3.md §7).
//! Everything signed or named is the uncompressed bytes; this module is
//! the only place that knows the file may be compressed.

use crate::beneath::Dir;
use crate::error::{Error, Result};
use crate::manifest::MAX_MANIFEST_BYTES;
use camino::{Utf8Path, Utf8PathBuf};
use std::borrow::Cow;
use std::io::Read;

/// File name of a compressed (delta) manifest in a snapshot folder (MZ1).
pub const MANIFEST_ZST_FILE: &str = "manifest.zst";
/// zstd level of `manifest.zst` (MZ1). Measured on the delta benchmark's
/// 10,000-entry manifest of 1,097,700 bytes (bench/README.md, "Deltas"):
/// level 1 gives 400,224 bytes in 0.01 s, level 19 386,997 in 1.1 s (the
/// SHA-256 digests in hex are most of it and only entropy coding helps).
pub const MANIFEST_LEVEL: i32 = 1;
/// Largest decoder window accepted (2^27 = 128 MiB, zstd's default limit):
/// bounds the memory a hostile frame can make the reader allocate.
const WINDOW_LOG_MAX: u32 = 27;

/// The name and bytes under which `manifest` (the exact bytes signed) is
/// stored in a snapshot folder: a delta's compressed, any other as it is
/// (MZ1).
pub fn stored(manifest: &[u8], delta: bool) -> Result<(&'static str, Cow<'_, [u8]>)> {
    if !delta {
        return Ok((super::MANIFEST_FILE, Cow::Borrowed(manifest)));
    }
    let mut compressor = zstd::bulk::Compressor::new(MANIFEST_LEVEL)
        .and_then(|mut c| c.include_contentsize(true).map(|_| c))
        .map_err(|e| Error::io("compress the manifest", MANIFEST_ZST_FILE, e))?;
    let compressed =
        compressor.compress(manifest).map_err(|e| Error::io("compress the manifest", MANIFEST_ZST_FILE, e))?;
    Ok((MANIFEST_ZST_FILE, Cow::Owned(compressed)))
}

/// Reads the manifest of the snapshot folder `folder` (MZ3): the path of
/// the file it came from and the uncompressed bytes; `None` when the
/// folder holds neither file.
pub fn read(folder: &Dir) -> Result<Option<(Utf8PathBuf, Vec<u8>)>> {
    let plain = folder.read_capped(Utf8Path::new(super::MANIFEST_FILE), MAX_MANIFEST_BYTES)?;
    let compressed = folder.read_capped(Utf8Path::new(MANIFEST_ZST_FILE), MAX_MANIFEST_BYTES)?;
    let zst_path = folder.path().join(MANIFEST_ZST_FILE);
    match (plain, compressed) {
        (Some(_), Some(_)) => Err(Error::format(
            &zst_path,
            format!("the snapshot folder holds both `{}` and `{MANIFEST_ZST_FILE}`", super::MANIFEST_FILE),
        )),
        (Some(bytes), None) => Ok(Some((folder.path().join(super::MANIFEST_FILE), bytes))),
        (None, Some(bytes)) => Ok(Some((zst_path.clone(), decompress(&bytes, &zst_path)?))),
        (None, None) => Ok(None),
    }
}

/// The manifest of the snapshot folder `folder` below `drive` (MZ3).
pub fn read_below(drive: &Utf8Path, folder: &Utf8Path) -> Result<Option<(Utf8PathBuf, Vec<u8>)>> {
    match Dir::root(drive)?.open_if_present(crate::beneath::relative(drive, folder)?)? {
        Some(dir) => read(&dir),
        None => Ok(None),
    }
}

/// The path of the manifest file in `folder` below `drive`: `manifest.zst`
/// when that is what the folder holds, else `manifest`.
pub fn path_below(drive: &Utf8Path, folder: &Utf8Path) -> Utf8PathBuf {
    let zst = folder.join(MANIFEST_ZST_FILE);
    match crate::beneath::kind(drive, &zst) {
        Ok(Some(_)) => zst,
        _ => folder.join(super::MANIFEST_FILE),
    }
}

/// Decompresses `manifest.zst` read from `origin` (MZ4): one zstd frame,
/// nothing after it, at most [`MAX_MANIFEST_BYTES`] out, whatever the
/// frame declares.
pub fn decompress(bytes: &[u8], origin: &Utf8Path) -> Result<Vec<u8>> {
    decompress_capped(bytes, origin, MAX_MANIFEST_BYTES)
}

fn decompress_capped(bytes: &[u8], origin: &Utf8Path, cap: u64) -> Result<Vec<u8>> {
    let damaged = |problem: String| Error::format(origin, format!("not a valid zstd frame ({problem})"));
    let too_large = || Error::format(origin, format!("decompresses to more than the {cap}-byte limit"));
    let frame =
        zstd::zstd_safe::find_frame_compressed_size(bytes).map_err(|_| damaged("bad header or block".into()))?;
    if frame != bytes.len() {
        return Err(damaged(format!("{} bytes after the frame", bytes.len() - frame)));
    }
    if let Ok(Some(declared)) = zstd::zstd_safe::get_frame_content_size(bytes)
        && declared > cap
    {
        return Err(too_large());
    }
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(bytes).map_err(|e| damaged(e.to_string()))?.single_frame();
    decoder.window_log_max(WINDOW_LOG_MAX).map_err(|e| damaged(e.to_string()))?;
    let mut out = Vec::new();
    decoder.take(cap + 1).read_to_end(&mut out).map_err(|e| damaged(e.to_string()))?;
    if out.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(out)
}

/// The first `limit` uncompressed bytes of the manifest file in `folder`,
/// if it has one; a compressed manifest that cannot be read gives `None`
/// (for the clean-up's proof of ownership, which then looks elsewhere).
pub fn head(folder: &Dir, limit: u64) -> Result<Option<Vec<u8>>> {
    for (name, compressed) in [(super::MANIFEST_FILE, false), (MANIFEST_ZST_FILE, true)] {
        let Some(crate::beneath::Kind::File) = folder.kind(Utf8Path::new(name))? else { continue };
        let path = folder.path().join(name);
        let file = folder.open_file(Utf8Path::new(name))?;
        let mut head = Vec::new();
        let read = match compressed {
            false => file.take(limit).read_to_end(&mut head),
            true => match zstd::stream::read::Decoder::new(file) {
                Ok(decoder) => decoder.single_frame().take(limit).read_to_end(&mut head),
                Err(_) => return Ok(None),
            },
        };
        match read {
            Ok(_) => return Ok(Some(head)),
            Err(_) if compressed => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_is_compressed_and_round_trips_others_are_not() {
        let v3 = b"ferry manifest v3\nrepository: av\n".repeat(1000);
        let (name, bytes) = stored(&v3, true).unwrap();
        assert_eq!(name, MANIFEST_ZST_FILE);
        assert!(bytes.len() * 20 < v3.len());
        assert_eq!(decompress(&bytes, Utf8Path::new("m")).unwrap(), v3);
        let v1 = b"ferry manifest v1\n";
        assert_eq!(stored(v1, false).unwrap(), (crate::media::MANIFEST_FILE, Cow::Borrowed(&v1[..])));
    }

    #[test]
    fn bombs_damage_and_trailing_bytes_are_refused() {
        let origin = Utf8Path::new("manifest.zst");
        const CAP: u64 = 1 << 20;
        let refused = |bytes: &[u8]| decompress_capped(bytes, origin, CAP).unwrap_err().to_string();
        // Declares its size: refused before decoding.
        let bomb = zstd::bulk::compress(&vec![0; CAP as usize + 1], 1).unwrap();
        assert!(refused(&bomb).contains("more than the 1048576-byte limit"), "{}", refused(&bomb));
        // Does not declare it: decoding stops at the cap.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        encoder.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut encoder, &vec![0; CAP as usize + 1]).unwrap();
        let silent = encoder.finish().unwrap();
        assert!(refused(&silent).contains("more than the"), "{}", refused(&silent));
        assert_eq!(decompress_capped(&silent, origin, CAP + 1).unwrap().len() as u64, CAP + 1);
        let good = zstd::bulk::compress(b"ferry manifest v3\n", 3).unwrap();
        assert!(refused(&[&good[..], b"x"].concat()).contains("bytes after the frame"));
        assert!(refused(&good[..good.len() - 2]).contains("not a valid zstd frame"));
        assert!(refused(b"ferry manifest v3\n").contains("not a valid zstd frame"));
        let mut flipped = zstd::bulk::compress(&b"ferry manifest v3\nentries: 0\n".repeat(50), 3).unwrap();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0xff;
        assert!(decompress(&flipped, origin).map_or(true, |out| out != b"ferry manifest v3\nentries: 0\n".repeat(50)));
    }
}
