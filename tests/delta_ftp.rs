//! A delta imported into an FTP update source (formats/delta-v1.md DI4):
//! the old versions of patched files are downloaded from the server, the
//! result equals the source, and an FTP target holding no base refuses it.

mod ftp_support;
mod support;

use ftp_support::{Endpoint, InProcess, ServerConfig, content_tree};
use support::*;

#[test]
fn a_delta_onto_an_ftp_target_reads_its_bases_from_the_server() {
    let server = InProcess::start(ServerConfig::default());
    let endpoint = Endpoint::for_server(&server, "delta-site");
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let (ledger, source) = (scratch.path("ledger"), scratch.path("source"));
    let mut module = pseudo_random_bytes(3, 2 << 20);
    write(&source.join("engine/module.bin"), &module);
    write(&source.join("index.xml"), b"<day 0/>");
    let export = |drive: &str, sequence: &str, since: &[&str]| {
        let drive = scratch.path(drive);
        let mut args = vec!["export", source.as_str(), drive.as_str(), "--key", key.as_str(), "--repository", "av"];
        args.extend(["--sequence", sequence, "--ledger", ledger.as_str(), "-q"]);
        args.extend(since);
        run(&args).ok();
        drive
    };
    let full = export("d0", "1", &[]);
    endpoint.run(&["import", full.as_str(), &endpoint.url, "--trust", public.as_str(), "-q"]).ok();
    let receipt = scratch.path("receipt");
    endpoint.run(&["receipt", &endpoint.url, receipt.as_str(), "-q"]).ok();
    module[1_000_000..1_004_000].copy_from_slice(&pseudo_random_bytes(4, 4000));
    write(&source.join("engine/module.bin"), &module);
    write(&source.join("index.xml"), b"<day 1/>");
    let delta = export("d1", "2", &["--since", receipt.as_str()]);
    let carried: u64 = walkdir::WalkDir::new(&delta).into_iter().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(carried < 200_000, "the delta medium holds {carried} bytes");
    endpoint.run(&["import", delta.as_str(), &endpoint.url, "--trust", public.as_str(), "-q"]).ok();
    assert_eq!(content_tree(&endpoint.dir), content_tree(&source));

    let (empty_url, empty_dir) = endpoint.sibling("empty-site");
    let refused = endpoint.run(&["import", delta.as_str(), &empty_url, "--trust", public.as_str()]).expect_code(3);
    assert!(refused.stderr.contains("no snapshot installed by ferry"), "{}", refused.stderr);
    assert!(content_tree(&empty_dir).is_empty());
}
