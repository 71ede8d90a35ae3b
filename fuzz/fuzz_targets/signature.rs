//! `signing::verify` with the TEST-ONLY sample keys as the trust store.
//! Input: SIGNATURE-FILE [NUL MANIFEST]; without a NUL the manifest is the
//! signed sample manifest, so the fuzzer works on the signature file alone.
#![no_main]

use camino::Utf8Path;
use libfuzzer_sys::fuzz_target;

const SAMPLE_MANIFEST: &[u8] = include_bytes!("../../samples/media/ferry/sample/1/manifest");

fuzz_target!(|data: &[u8]| {
    let parts = ferry_fuzz::split_nul(data, 2);
    let signature = parts[0].to_vec();
    let manifest = parts.get(1).map_or(SAMPLE_MANIFEST.to_vec(), |m| m.to_vec());
    let _ = ferry::signing::verify(
        manifest,
        Utf8Path::new("fuzz/manifest"),
        signature,
        Utf8Path::new("fuzz/manifest.sig"),
        ferry_fuzz::trust(),
    );
});
