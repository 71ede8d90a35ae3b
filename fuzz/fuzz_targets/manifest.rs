//! `Manifest::decode` on arbitrary bytes: no panic, and whatever decodes
//! re-encodes to the very same bytes (the encoding is canonical) and decodes
//! again to an equal manifest. Decoding is reached through the verifier
//! (the bytes are signed with the TEST-ONLY key first), as in the library.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = ferry_fuzz::decode_signed(data) {
        let encoded = manifest.encode();
        assert_eq!(encoded, data, "accepted manifest bytes are not canonical");
        let again = ferry_fuzz::decode_signed(&encoded).expect("re-encoded manifest decodes");
        assert_eq!(again, manifest);
        let _ = manifest.payload_bytes();
    }
});
