//! A delta imported into an FTP update source (formats/delta-v1.md DI4):
//! the old versions of patched files are downloaded from the server, the
//! result equals the source, and an FTP target holding no base refuses it.
//! Killed with SIGKILL at each crash point of a delta import, the server
//! serves the old snapshot, the new one, or (in the rename phase) whole
//! files of either; the next import finishes it and rollback restores the
//! old snapshot exactly.

mod ftp_support;
mod support;

use ftp_support::{Endpoint, InProcess, PASSWORD, ServerConfig, content_tree};
use std::os::unix::process::ExitStatusExt;
use support::exporter::Exporter;
use support::*;

#[test]
fn a_delta_onto_an_ftp_target_reads_its_bases_from_the_server() {
    let server = InProcess::start(ServerConfig::default());
    let endpoint = Endpoint::for_server(&server, "delta-site");
    let repository = Exporter::new();
    let (scratch, source, public) = (&repository.scratch, &repository.source, &repository.public);
    let mut module = pseudo_random_bytes(3, 2 << 20);
    write(&source.join("engine/module.bin"), &module);
    write(&source.join("index.xml"), b"<day 0/>");
    let full = repository.export_to("d0", 1, &[]);
    endpoint.run(&["import", full.as_str(), &endpoint.url, "--trust", public.as_str(), "-q"]).ok();
    let receipt = scratch.path("receipt");
    endpoint.run(&["receipt", &endpoint.url, receipt.as_str(), "-q"]).ok();
    module[1_000_000..1_004_000].copy_from_slice(&pseudo_random_bytes(4, 4000));
    write(&source.join("engine/module.bin"), &module);
    write(&source.join("index.xml"), b"<day 1/>");
    let delta = repository.export_to("d1", 2, &[&receipt]);
    let carried: u64 = walkdir::WalkDir::new(&delta).into_iter().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(carried < 200_000, "the delta medium holds {carried} bytes");
    endpoint.run(&["import", delta.as_str(), &endpoint.url, "--trust", public.as_str(), "-q"]).ok();
    assert_eq!(content_tree(&endpoint.dir), content_tree(source));

    let (empty_url, empty_dir) = endpoint.sibling("empty-site");
    let refused = endpoint.run(&["import", delta.as_str(), &empty_url, "--trust", public.as_str()]).expect_code(3);
    assert!(refused.stderr.contains("no snapshot installed by ferry"), "{}", refused.stderr);
    assert!(content_tree(&empty_dir).is_empty());
}

#[test]
fn a_delta_import_killed_at_each_crash_point_serves_old_or_new_and_finishes() {
    let server = InProcess::start(ServerConfig::default());
    let endpoint = Endpoint::for_server(&server, "delta-crash");
    let repository = Exporter::new();
    let (scratch, source, public) = (&repository.scratch, &repository.source, &repository.public);
    let version = |day: u64| {
        for i in 0..8u64 {
            let mut bytes = pseudo_random_bytes(i, 50_000);
            if day > 0 && i % 2 == 0 {
                bytes[20_000..22_000].copy_from_slice(&pseudo_random_bytes(100 + i, 2000));
            }
            write(&source.join(format!("bases/db-{i}.cvd")), &bytes);
        }
        let _ = std::fs::remove_file(source.join(format!("bases/only-{}.cvd", 1 - day)));
        write(&source.join(format!("bases/only-{day}.cvd")), &pseudo_random_bytes(50 + day, 3000));
        write(&source.join("index/master.xml"), format!("<day {day}/>").as_bytes());
    };
    version(0);
    let old = content_tree(source);
    let full = repository.export_to("d0", 1, &[]);
    endpoint.run(&["import", full.as_str(), &endpoint.url, "--trust", public.as_str(), "-q"]).ok();
    let receipt = scratch.path("receipt");
    endpoint.run(&["receipt", &endpoint.url, receipt.as_str(), "-q"]).ok();
    version(1);
    let new = content_tree(source);
    let delta = repository.export_to("d1", 2, &[&receipt]);
    let import = ["import", delta.as_str(), &endpoint.url, "--trust", public.as_str(), "-q"];
    for (point, expected) in [
        ("delta-rebuilt", Some(Served::Old)),
        ("staged", Some(Served::Old)),
        ("after-journal", Some(Served::Old)),
        ("mid-journal", None),
        ("before-state", Some(Served::New)),
    ] {
        let killed = ferry()
            .env("FERRY_FTP_PASSWORD", PASSWORD)
            .env("HOME", endpoint.home())
            .env("FERRY_CRASH_POINT", point)
            .args(import)
            .output()
            .unwrap();
        assert_eq!(killed.status.signal(), Some(9), "crash point `{point}` not reached: {killed:?}");
        let served = classify(&content_tree(&endpoint.dir), &old, &new);
        match (&expected, &served) {
            (None, Served::Mixed { torn, .. }) => assert!(torn.is_empty(), "{point}: torn files {torn:?}"),
            (None, _) => {}
            (Some(expected), served) => assert_eq!(served, expected, "served after a kill at {point}"),
        }
        endpoint.run(&import).ok();
        assert_eq!(content_tree(&endpoint.dir), new, "after importing again (killed at {point})");
        endpoint.run(&["rollback", &endpoint.url, "-q"]).ok();
        assert_eq!(content_tree(&endpoint.dir), old, "rollback after a kill at {point}");
    }
}
