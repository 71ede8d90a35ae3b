//! Progress at a million files (issue 14): the phases of `import` and
//! `verify` that run before any byte is copied or hashed (checking the
//! signed manifest, indexing the media, reading the installed manifest,
//! planning the changes) each announce themselves, so that a long one never
//! runs under an empty bar. Through the real binary with `-v`, which prints
//! every phase as it starts; no timing is checked.

mod support;
use support::*;

/// The `ferry: ...` phase lines of a verbose run's stderr, in order, each
/// without its byte count.
fn phases(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix("ferry: "))
        .map(|line| line.split(':').next().unwrap_or(line).to_owned())
        .collect()
}

/// Whether `wanted` appear in `seen` in this order (others may come between).
fn in_order(seen: &[String], wanted: &[&str]) -> bool {
    let mut rest = seen.iter();
    wanted.iter().all(|phase| rest.any(|s| s == phase))
}

#[test]
fn import_and_verify_announce_every_phase_before_copying() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let (source, media, target) = (scratch.path("source"), scratch.path("media"), scratch.path("target"));
    small_repository(&source);
    export_with(&source, &media, &key, "av", 1, &["--layout", "tar"]);

    let verify = run(&["verify", media.as_str(), "--trust", public.as_str(), "-v"]).ok();
    let seen = phases(&verify.stderr);
    let wanted = ["checking the signed manifest", "indexing the media", "verifying"];
    assert!(in_order(&seen, &wanted), "verify phases {seen:?}, expected {wanted:?} in order");

    let first = run(&["import", media.as_str(), target.as_str(), "--trust", public.as_str(), "-v"]).ok();
    let seen = phases(&first.stderr);
    let wanted = ["checking the signed manifest", "indexing the media", "planning the changes", "installing"];
    assert!(in_order(&seen, &wanted), "first import phases {seen:?}, expected {wanted:?} in order");

    write(&source.join("bases/av-1.dat"), b"antivirus database one, updated\n");
    let media2 = scratch.path("media2");
    export_with(&source, &media2, &key, "av", 2, &["--layout", "tar"]);
    let second = run(&["import", media2.as_str(), target.as_str(), "--trust", public.as_str(), "-v"]).ok();
    let seen = phases(&second.stderr);
    let wanted = [
        "reading the installed manifest",
        "checking the signed manifest",
        "indexing the media",
        "planning the changes",
        "installing",
    ];
    assert!(in_order(&seen, &wanted), "incremental import phases {seen:?}, expected {wanted:?} in order");

    let installed = run(&["verify", target.as_str(), "--trust", public.as_str(), "-v"]).ok();
    let seen = phases(&installed.stderr);
    let wanted = ["reading the installed manifest", "listing the target", "checking"];
    assert!(in_order(&seen, &wanted), "verify of a target: phases {seen:?}, expected {wanted:?} in order");
}
