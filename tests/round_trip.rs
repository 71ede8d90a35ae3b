//! The basic round trip through the real binary.

mod support;
use support::*;

#[test]
fn small_repository_round_trip_is_byte_identical() {
    let scratch = Scratch::new();
    let (source, media, target, key) = (scratch.path("source"), scratch.path("media"), scratch.path("target"), scratch.path("key"));
    small_repository(&source);
    keygen(&key);
    export(&source, &media, &key.with_extension("key"), "av", 1);
    run(&["verify", media.as_str(), "--trust", key.with_extension("pub").as_str()]).ok();
    run(&["import", media.as_str(), target.as_str(), "--trust", key.with_extension("pub").as_str()]).ok();
    assert_eq!(served_tree(&target), tree_state(&source));
    let status = run(&["status", target.as_str(), "--json"]).ok();
    assert!(status.stdout.contains("\"freshness\": \"fresh\""), "{}", status.stdout);
}
