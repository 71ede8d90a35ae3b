//! Receipts (formats/receipt-v1.md) and `ferry diff`, through the real
//! binary: receipts of folder and FTP update sources, refused receipts, and
//! the bytes a delta would carry for a day-to-day change of about 2%.

mod ftp_support;
mod support;

use camino::{Utf8Path, Utf8PathBuf};
use ftp_support::{Endpoint, InProcess, ServerConfig};
use support::*;

struct Site {
    scratch: Scratch,
    key: Utf8PathBuf,
    public: Utf8PathBuf,
    site_key: Utf8PathBuf,
    site_public: Utf8PathBuf,
    ledger: Utf8PathBuf,
    source: Utf8PathBuf,
    drive: Utf8PathBuf,
}

/// An exporting key, a site key and a source.
fn keys_and_source() -> Site {
    let scratch = Scratch::new();
    keygen(&scratch.path("k"));
    keygen(&scratch.path("site"));
    let site = Site {
        key: scratch.path("k.key"),
        public: scratch.path("k.pub"),
        site_key: scratch.path("site.key"),
        site_public: scratch.path("site.pub"),
        ledger: scratch.path("ledger"),
        source: scratch.path("source"),
        drive: scratch.path("drive"),
        scratch,
    };
    small_repository(&site.source);
    site
}

fn ferry_with_ledger(site: &Site, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--ledger", site.ledger.as_str()]);
    run(&all)
}

fn diff(site: &Site, old: &Utf8Path, new: &Utf8Path, extra: &[&str]) -> Run {
    let mut args = vec!["diff", old.as_str(), new.as_str(), "--trust", site.public.as_str(), "--json"];
    args.extend_from_slice(extra);
    ferry_with_ledger(site, &args)
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn a_receipt_of_a_folder_target_states_what_it_serves_and_diff_reads_it() {
    let site = exported_with_ledger();
    let target = site.scratch.path("target");
    run(&["import", site.drive.as_str(), target.as_str(), "--trust", site.public.as_str(), "-q"]).ok();
    let receipt = site.scratch.path("receipt");
    let out = run(&["receipt", target.as_str(), receipt.as_str(), "--key", site.site_key.as_str(), "--json"]).ok();
    let report = json(&out);
    let text = std::fs::read_to_string(&receipt).unwrap();
    assert!(text.starts_with("ferry receipt v1\nrepository: av\nsequence: "), "{text}");
    assert!(text.contains(&format!("snapshot: {}\n", report["snapshot_id"].as_str().unwrap())), "{text}");

    // Unchanged source: nothing to carry.
    let same = diff(&site, &receipt, &site.source, &["--site-trust", site.site_public.as_str()]).ok();
    let same = json(&same);
    assert_eq!((same["added"].as_array().unwrap().len(), same["delta_bytes_whole"].as_u64()), (0, Some(0)));
    assert_eq!(same["delta_bytes_with_patches"].as_u64(), Some(0));

    // The ledger kept the exported contents: a small edit of a 70 KB file
    // is measured as a patch of a few dozen bytes.
    let mut bases = std::fs::read(site.source.join("bases/av-2.dat")).unwrap();
    bases[30_000..30_010].copy_from_slice(b"0123456789");
    std::fs::write(site.source.join("bases/av-2.dat"), &bases).unwrap();
    write(&site.source.join("bases/av-1.dat"), b"changed\n");
    let changed = json(&diff(&site, &receipt, &site.source, &["--site-trust", site.site_public.as_str()]).ok());
    let paths: Vec<&str> = changed["changed"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["bases/av-1.dat", "bases/av-2.dat"]);
    assert_eq!(changed["delta_bytes_whole"].as_u64(), Some(8 + 70_000));
    let patched = changed["delta_bytes_with_patches"].as_u64().unwrap();
    assert!(patched < 8 + 200, "with patches: {patched} bytes");
    assert_eq!(changed["patched_files"].as_u64(), Some(1));
}

/// [`keys_and_source`], exported once onto a drive, recorded in its own ledger.
fn exported_with_ledger() -> Site {
    let site = keys_and_source();
    ferry_with_ledger(
        &site,
        &["export", site.source.as_str(), site.drive.as_str(), "--key", site.key.as_str(), "--repository", "av", "-q"],
    )
    .ok();
    site
}

#[test]
fn a_receipt_of_an_ftp_target_is_read_through_the_ftp_back_end() {
    let site = exported_with_ledger();
    let server = InProcess::start(ServerConfig::default());
    let endpoint = Endpoint::for_server(&server, "receipt-site");
    endpoint.run(&["import", site.drive.as_str(), &endpoint.url, "--trust", site.public.as_str(), "-q"]).ok();
    let receipt = site.scratch.path("receipt");
    endpoint.run(&["receipt", &endpoint.url, receipt.as_str(), "-q"]).ok();
    let text = std::fs::read_to_string(&receipt).unwrap();
    assert!(text.starts_with("ferry receipt v1\nrepository: av\n") && text.ends_with("signature: none\n"), "{text}");
    let report = json(&diff(&site, &receipt, &site.source, &[]).ok());
    assert_eq!(report["unchanged"].as_u64(), Some(6));
}

#[test]
fn tampered_foreign_and_other_repository_receipts_are_refused() {
    let site = exported_with_ledger();
    let target = site.scratch.path("target");
    run(&["import", site.drive.as_str(), target.as_str(), "--trust", site.public.as_str(), "-q"]).ok();
    let signed = site.scratch.path("signed");
    run(&["receipt", target.as_str(), signed.as_str(), "--key", site.site_key.as_str(), "-q"]).ok();
    let unsigned = site.scratch.path("unsigned");
    run(&["receipt", target.as_str(), unsigned.as_str(), "-q"]).ok();
    let site_trust = ["--site-trust", site.site_public.as_str()];
    let refused = |receipt: &Utf8Path, extra: &[&str], expected: &str| {
        let out = diff(&site, receipt, &site.source, extra).expect_code(3);
        assert!(out.stdout.contains(expected), "{expected:?} not in {}", out.stdout);
    };

    // A signed receipt with one field changed: the signature no longer holds.
    let text = std::fs::read_to_string(&signed).unwrap();
    let sequence_line = text.lines().nth(2).unwrap().to_owned();
    let tampered = site.scratch.path("tampered");
    std::fs::write(&tampered, text.replace(&sequence_line, "sequence: 1")).unwrap();
    refused(&tampered, &site_trust, "does not match");

    // Signed by a key this side does not know as a site key.
    keygen(&site.scratch.path("stranger"));
    let foreign = site.scratch.path("foreign");
    run(&["receipt", target.as_str(), foreign.as_str(), "--key", site.scratch.path("stranger.key").as_str(), "-q"])
        .ok();
    refused(&foreign, &site_trust, "none of them is trusted");
    refused(&foreign, &[], "no site keys were given");

    // An unsigned receipt edited by hand disagrees with the ledger.
    let unsigned_text = std::fs::read_to_string(&unsigned).unwrap();
    let edited = site.scratch.path("edited");
    std::fs::write(&edited, unsigned_text.replace(&sequence_line, "sequence: 1")).unwrap();
    refused(&edited, &[], "receipt altered?");
    refused(&unsigned, &site_trust, "not signed");

    // A receipt of another repository.
    let other = site.scratch.path("other");
    std::fs::write(&other, unsigned_text.replace("repository: av", "repository: bv")).unwrap();
    let out = diff(&site, &other, &site.source, &["--repository", "av"]).expect_code(3);
    assert!(out.stdout.contains("of repository `bv`, not `av`"), "{}", out.stdout);
    // Nothing was written to the ledger by any of it.
    assert!(std::fs::read_to_string(site.ledger.join("av/index")).unwrap().lines().count() == 3);
}

/// A repository of 100 files (16 KiB to 1 MiB) changes by about 2%: two
/// files edited in place by a few KB, one with records appended, one file
/// added and one removed. Prints the figures for the closing note.
#[test]
fn diff_of_a_two_percent_change_carries_a_small_fraction() {
    let scratch = Scratch::new();
    let (old, new) = (scratch.path("day-0"), scratch.path("day-1"));
    let size = |n: usize| 16_384 + (n * 37_813) % (1 << 20);
    for n in 0..100 {
        write(&old.join(format!("bases/b{n:03}.dat")), &pseudo_random_bytes(n as u64, size(n)));
    }
    std::process::Command::new("cp").args(["-a", old.as_str(), new.as_str()]).status().unwrap();
    for n in [10, 20] {
        let path = new.join(format!("bases/b{n:03}.dat"));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[5000..8000].copy_from_slice(&pseudo_random_bytes(1000 + n as u64, 3000));
        std::fs::write(&path, bytes).unwrap();
    }
    let appended = new.join("bases/b030.dat");
    let mut bytes = std::fs::read(&appended).unwrap();
    bytes.extend_from_slice(&pseudo_random_bytes(77, 4096));
    std::fs::write(&appended, bytes).unwrap();
    write(&new.join("bases/new.dat"), &pseudo_random_bytes(99, 20_000));
    std::fs::remove_file(new.join("bases/b040.dat")).unwrap();

    let report = json(&run(&["diff", old.as_str(), new.as_str(), "--json"]).ok());
    let (full, whole) = (report["full_bytes"].as_u64().unwrap(), report["delta_bytes_whole"].as_u64().unwrap());
    let patched = report["delta_bytes_with_patches"].as_u64().unwrap();
    eprintln!(
        "2% change: full {full} bytes, delta with whole files {whole} ({:.2}%), with patches {patched} ({:.2}%), {} files patched",
        100.0 * whole as f64 / full as f64,
        100.0 * patched as f64 / full as f64,
        report["patched_files"]
    );
    assert_eq!((report["added"].as_array().unwrap().len(), report["removed"].as_array().unwrap().len()), (1, 1));
    assert_eq!(report["changed"].as_array().unwrap().len(), 3);
    assert_eq!(report["patched_files"].as_u64(), Some(3));
    assert!(whole * 20 < full, "whole files: {whole} of {full}");
    assert!(patched * 100 < full, "with patches: {patched} of {full}");
    let text = run(&["diff", old.as_str(), new.as_str(), "--files"]).ok();
    assert!(text.stdout.contains("1 added, 1 removed, 3 changed, 96 unchanged"), "{}", text.stdout);
    assert!(text.stdout.contains("+ bases/new.dat (- -> 20000)"), "{}", text.stdout);
}

/// A site at the first export of [`exported_with_ledger`], and a tar delta
/// (one file changed) on its own drive: (site, target, delta drive, delta
/// snapshot folder, its snapshot id).
fn a_delta_for_a_site() -> (Site, Utf8PathBuf, Utf8PathBuf, Utf8PathBuf, String) {
    let site = exported_with_ledger();
    let target = site.scratch.path("target");
    run(&["import", site.drive.as_str(), target.as_str(), "--trust", site.public.as_str(), "-q"]).ok();
    let receipt = site.scratch.path("receipt");
    run(&["receipt", target.as_str(), receipt.as_str(), "-q"]).ok();
    write(&site.source.join("bases/av-1.dat"), b"antivirus database one, day two\n");
    let drive = site.scratch.path("delta");
    let (source, key) = (site.source.as_str(), site.key.as_str());
    let args = ["export", source, drive.as_str(), "--key", key, "--repository", "av", "--since", receipt.as_str()];
    let report = json(&ferry_with_ledger(&site, &[&args[..], &["--json"]].concat()).ok());
    let folder = Utf8PathBuf::from(report["dir"].as_str().unwrap());
    let id = report["snapshot_id"].as_str().unwrap().to_owned();
    (site, target, drive, folder, id)
}

/// formats/manifest-v3.md §7: a delta's manifest is on the drive as
/// `manifest.zst`, listed in `SHA256SUMS`; verify, list, import and
/// `--since` read it; what is signed and installed is the uncompressed
/// manifest.
#[test]
fn a_delta_manifest_is_stored_compressed_and_read_everywhere() {
    let (site, target, drive, folder, id) = a_delta_for_a_site();
    assert!(folder.join("manifest.zst").is_file() && !folder.join("manifest").exists());
    assert!(site.drive.join("ferry/av").read_dir().unwrap().all(|d| d.unwrap().path().join("manifest").is_file()));
    let sums = std::fs::read_to_string(folder.join("SHA256SUMS")).unwrap();
    assert!(sums.ends_with("  manifest.zst\n"), "{sums}");
    let mut checked = std::process::Command::new("sha256sum");
    checked.args(["-c", "--quiet", "SHA256SUMS"]).current_dir(&folder);
    assert!(checked.status().expect("sha256sum (coreutils) is needed").success());
    let trust = ["--trust", site.public.as_str()];
    run(&[&["verify", drive.as_str()], &trust[..]].concat()).ok();
    let listed = run(&[&["list", drive.as_str()], &trust[..]].concat()).ok();
    assert!(listed.stdout.contains("delta"), "{}", listed.stdout);
    run(&[&["import", drive.as_str(), target.as_str(), "-q"], &trust[..]].concat()).ok();
    assert_eq!(tree_state(&site.source), served_tree(&target));
    let installed = std::fs::read(target.join(".ferry/manifest")).unwrap();
    assert!(installed.starts_with(b"ferry manifest v3\n"));
    assert_eq!(ferry::digest::Digest::of(&installed).to_hex(), id, "the snapshot id is of the uncompressed bytes");
    // The compressed file names its snapshot for --since as well.
    let since = folder.join("manifest.zst");
    let third = site.scratch.path("third");
    let args = ["export", site.source.as_str(), third.as_str(), "--key", site.key.as_str()];
    ferry_with_ledger(&site, &[&args[..], &["--repository", "av", "--since", since.as_str(), "-q"]].concat()).ok();
}

/// formats/manifest-v3.md §7 MZ3, MZ4: a `manifest.zst` that is truncated,
/// has bytes after its frame, declares 300 MiB (a decompression bomb), or
/// sits beside a `manifest`, is refused by verify and import (exit 3),
/// naming the file, and the target is left as it was.
#[test]
fn a_damaged_or_oversized_compressed_manifest_is_refused_and_nothing_is_written() {
    let (site, target, drive, folder, _) = a_delta_for_a_site();
    let path = folder.join("manifest.zst");
    let good = std::fs::read(&path).unwrap();
    // A frame header declaring 300 MiB (single segment, 8-byte size), then
    // one empty raw block marked last.
    let mut bomb = vec![0x28, 0xB5, 0x2F, 0xFD, 0xE0];
    bomb.extend_from_slice(&(300u64 << 20).to_le_bytes());
    bomb.extend_from_slice(&[0x01, 0x00, 0x00]);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("truncated", good[..good.len() - 3].to_vec(), "not a valid zstd frame"),
        ("trailing bytes", [&good[..], b"junk"].concat(), "4 bytes after the frame"),
        ("bomb", bomb, "decompresses to more than the 268435456-byte limit"),
        ("both files", good.clone(), "holds both `manifest` and `manifest.zst`"),
    ];
    let trust = ["--trust", site.public.as_str()];
    for (case, bytes, expected) in cases {
        std::fs::write(&path, &bytes).unwrap();
        if case == "both files" {
            std::fs::write(folder.join("manifest"), b"ferry manifest v3\n").unwrap();
        }
        let verified = run(&[&["verify", drive.as_str()], &trust[..]].concat()).expect_code(3);
        let all = format!("{}{}", verified.stdout, verified.stderr);
        assert!(all.contains(expected) && all.contains("manifest.zst"), "{case}: {expected:?} not in {all}");
        let before = tree_state_but_journal(&target);
        let imported = run(&[&["import", drive.as_str(), target.as_str()], &trust[..]].concat()).expect_code(3);
        assert!(imported.stderr.contains(expected), "{case}: {expected:?} not in {}", imported.stderr);
        assert_tree_unchanged(&before, &tree_state_but_journal(&target), case);
        let _ = std::fs::remove_file(folder.join("manifest"));
    }
    std::fs::write(&path, &good).unwrap();
    run(&[&["import", drive.as_str(), target.as_str(), "-q"], &trust[..]].concat()).ok();
    assert_eq!(tree_state(&site.source), served_tree(&target));
}
