//! The one-line parsers: `RelPath::new`, `backend::location::parse` (with and
//! without implicit TLS), `clock::parse`, `clock::parse_duration` and
//! `clock::parse_flexible`, all on the same UTF-8 text. Accepted values are
//! checked for the invariants the rest of ferry relies on.
#![no_main]

use ferry::clock;
use ferry::rel_path::RelPath;
use ferry::backend::location::{self as spec, Location};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(path) = RelPath::new(text) {
        assert_eq!(path.as_str(), text);
        assert!(!path.as_str().starts_with('/'));
        assert!(path.as_str().split('/').all(|c| !c.is_empty() && c != "." && c != ".."));
        let _ = (path.parent(), path.depth(), path.file_name());
    }
    for implicit in [false, true] {
        if let Ok(Location::Ftp(url)) = spec::parse(text, implicit) {
            assert!(!url.host.is_empty());
            assert!(!url.path.split('/').any(|c| c == ".."), "`..` survived in {url:?}");
            let _ = url.to_string();
        }
    }
    let _ = spec::redact(text);
    if let Some(time) = clock::parse(text) {
        assert_eq!(clock::format(time), text);
    }
    if let Ok(duration) = clock::parse_duration(text) {
        let _ = clock::describe(duration);
    }
    let _ = clock::parse_flexible(text);
});
