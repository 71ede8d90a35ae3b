//! Key files, through real files as ferry reads them: the input is written
//! as a `.pub` file (`load_public`) and as a `.key` file (`SecretKey::load`,
//! whose passphrase callback refuses, so no Argon2 run slows the fuzzer
//! down), then split at NUL bytes into up to four `.pub` files of a folder
//! loaded as a trust store (`TrustStore::load`).
#![no_main]

use ferry::signing::{SecretKey, TrustStore, load_public};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = ferry_fuzz::scratch();
    let file = dir.join("one.pub");
    std::fs::write(&file, data).unwrap();
    let _ = load_public(&file);
    let _ = SecretKey::load(&file, &mut |_| Err(ferry::Error::Passphrase("fuzzing: no passphrase".into())));

    let store = dir.join("store");
    let _ = std::fs::remove_dir_all(&store);
    std::fs::create_dir(&store).unwrap();
    for (i, part) in ferry_fuzz::split_nul(data, 4).iter().enumerate() {
        std::fs::write(store.join(format!("k{i}.pub")), part).unwrap();
    }
    let _ = TrustStore::load(&[store]);
});
