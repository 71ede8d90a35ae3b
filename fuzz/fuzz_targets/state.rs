//! The target state files: `InstalledState::decode` and `Journal::decode`
//! on the same bytes; whatever decodes must survive an encode/decode round
//! trip unchanged.
#![no_main]

use camino::Utf8Path;
use ferry::install::state::{InstalledState, Journal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let origin = Utf8Path::new("fuzz/state");
    if let Ok(state) = InstalledState::decode(data, origin) {
        let again = InstalledState::decode(&state.encode(), origin).expect("re-encoded state decodes");
        assert_eq!(again, state);
    }
    if let Ok(Some(journal)) = Journal::decode(data, origin) {
        let again = Journal::decode(&journal.encode(), origin).expect("re-encoded journal decodes");
        assert_eq!(again, Some(journal));
    }
});
