//! `Manifest::decode` on arbitrary bytes: no panic, and whatever decodes
//! re-encodes to the very same bytes (the encoding is canonical) and decodes
//! again to an equal manifest.
#![no_main]

use camino::Utf8Path;
use ferry::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::decode(data, Utf8Path::new("fuzz/manifest")) {
        let encoded = manifest.encode();
        assert_eq!(encoded, data, "accepted manifest bytes are not canonical");
        let again = Manifest::decode(&encoded, Utf8Path::new("fuzz/manifest")).expect("re-encoded manifest decodes");
        assert_eq!(again, manifest);
        let _ = manifest.payload_bytes();
    }
});
