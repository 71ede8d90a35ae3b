//! FTP and FTPS update sources (issue 4), through the real binary.
//!
//! The conformance cases run against every server available: the
//! in-process libunftp server (plain and FTPS, always), and pure-ftpd and
//! vsftpd (plain and FTPS) when `.ci/ftp-servers.sh start` has set
//! `FERRY_TEST_PUREFTPD` / `FERRY_TEST_VSFTPD` (tests for absent servers say
//! so and pass). Every server here runs on this machine, so what it serves
//! is compared on its disk; one case also mirrors it back with lftp.
//! The fault tests (cut and stalled connections, rename refused over an
//! existing file, a full disk) use the in-process server.

mod ftp_support;
mod support;

use camino::{Utf8Path, Utf8PathBuf};
use ftp_support::*;
use std::collections::BTreeMap;
use support::*;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// Bytes an ASCII-mode transfer would mangle.
const BINARY: &[u8] = b"CR\rLF\nCRLF\r\nNUL\0SUB\x1a\x1a\n\r\n\r\r\nLF-CR\n\r\0\0\r\n\x1a";

struct Keys {
    key: Utf8PathBuf,
    public: Utf8PathBuf,
    other_public: Utf8PathBuf,
}

/// Two snapshots of one repository (plus the trees they hold) on media.
struct Fixture {
    scratch: Scratch,
    keys: Keys,
    media1: Utf8PathBuf,
    media2: Utf8PathBuf,
    tree1: BTreeMap<String, String>,
    tree2: BTreeMap<String, String>,
}

fn binary_file() -> Vec<u8> {
    let mut bytes = BINARY.to_vec();
    bytes.extend((0..=255u8).cycle().take(5000));
    bytes.extend_from_slice(BINARY);
    bytes
}

fn repository_v1(root: &Utf8Path) {
    small_repository(root);
    write(&root.join("binary/mixed.bin"), &binary_file());
    write(&root.join("binary/unix.txt"), b"line one\nline two\n\nline four\n");
    write(&root.join("binary/dos.txt"), b"line one\r\nline two\r\n");
    write(&root.join("binary/only-cr.txt"), b"\r");
    write(&root.join("index/updates.xml"), b"<updates><file name=\"bases/av-2.dat\"/></updates>\n");
    write(&root.join("old/gone.dat"), b"removed by the second snapshot\n");
}

/// The second snapshot: changes, additions and removals, index files too.
fn repository_v2(root: &Utf8Path) {
    repository_v1(root);
    write(&root.join("bases/av-1.dat"), b"antivirus database one, updated\n");
    write(&root.join("bases/av-3.dat"), &[0x5A; 40_000]);
    std::fs::remove_file(root.join("bases/av-2.dat")).unwrap();
    write(&root.join("index/master.xml"), b"<index><file name=\"bases/av-3.dat\"/></index>\n");
    write(&root.join("index/new.xml"), b"<new/>\n");
    std::fs::remove_file(root.join("index/updates.xml")).unwrap();
    std::fs::remove_dir_all(root.join("old")).unwrap();
    std::fs::remove_dir_all(root.join("empty-folder")).unwrap();
    write(&root.join("added/deep/er/file.dat"), b"new\n");
    let mut mixed = binary_file();
    mixed.reverse();
    write(&root.join("binary/mixed.bin"), &mixed);
}

fn keys(scratch: &Scratch) -> Keys {
    keygen(&scratch.path("key"));
    keygen(&scratch.path("other"));
    Keys { key: scratch.path("key.key"), public: scratch.path("key.pub"), other_public: scratch.path("other.pub") }
}

fn fixture() -> Fixture {
    fixture_with(repository_v1, repository_v2)
}

fn fixture_with(v1: fn(&Utf8Path), v2: fn(&Utf8Path)) -> Fixture {
    let scratch = Scratch::new();
    let keys = keys(&scratch);
    let (source1, source2) = (scratch.path("source1"), scratch.path("source2"));
    v1(&source1);
    v2(&source2);
    let (media1, media2) = (scratch.path("media1"), scratch.path("media2"));
    export(&source1, &media1, &keys.key, "av", 1);
    export(&source2, &media2, &keys.key, "av", 2);
    let (tree1, tree2) = (content_tree(&source1), content_tree(&source2));
    Fixture { scratch, keys, media1, media2, tree1, tree2 }
}

impl Fixture {
    fn import(&self, endpoint: &Endpoint, media: &Utf8Path) -> Run {
        endpoint.run(&["import", media.as_str(), &endpoint.url, "--trust", self.keys.public.as_str()])
    }
}

/// Nothing of an unfinished switch is left in the state folder.
fn assert_clean_state(dir: &Utf8Path) {
    for leftover in ["journal", "staging", "incoming", "lock"] {
        assert!(!dir.join(".ferry").join(leftover).exists(), "{dir}/.ferry/{leftover} is left over");
    }
    let temporary: Vec<_> = tree_state(dir).into_keys().filter(|p| p.ends_with(".ferry-tmp")).collect();
    assert!(temporary.is_empty(), "temporary files left on the server: {temporary:?}");
}

fn status_json(endpoint: &Endpoint) -> serde_json::Value {
    let run = endpoint.run(&["status", &endpoint.url, "--json"]).ok();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("status --json: {e}\n{}", run.stdout))
}

// ---------------------------------------------------------------------------
// Conformance cases: each runs against every available server
// ---------------------------------------------------------------------------

/// First import into an empty folder, byte-identical; re-import is a no-op;
/// a second snapshot with changes, additions and removals; rollback;
/// re-import after rollback; status along the way.
fn import_update_rollback(endpoint: &Endpoint) {
    let f = fixture();
    let first = f.import(endpoint, &f.media1).ok();
    assert!(
        first.stdout.contains("installed av sequence 1") && first.stdout.contains("ordered switch"),
        "{}",
        first.stdout
    );
    assert_eq!(content_tree(&endpoint.dir), f.tree1, "{}: first import", endpoint.name);
    assert_eq!(std::fs::read(endpoint.dir.join("binary/mixed.bin")).unwrap(), binary_file(), "binary bytes changed");
    assert_eq!(std::fs::read(endpoint.dir.join("binary/unix.txt")).unwrap(), b"line one\nline two\n\nline four\n");
    assert_eq!(std::fs::read(endpoint.dir.join("binary/only-cr.txt")).unwrap(), b"\r");
    assert_clean_state(&endpoint.dir);
    let status = status_json(endpoint);
    assert_eq!(status["sequence"], 1, "{status}");
    assert_eq!(status["freshness"], "fresh", "{status}");

    // The same snapshot again changes nothing at all.
    let before = tree_state(&endpoint.dir);
    let again = f.import(endpoint, &f.media1).ok();
    assert!(again.stdout.contains("already installed"), "{}", again.stdout);
    assert_eq!(tree_state(&endpoint.dir), before, "re-import changed the server");

    // The second snapshot.
    let second = f.import(endpoint, &f.media2).ok();
    assert!(second.stdout.contains("installed av sequence 2"), "{}", second.stdout);
    assert_eq!(content_tree(&endpoint.dir), f.tree2, "{}: second import", endpoint.name);
    assert!(!endpoint.dir.join("old").exists() && !endpoint.dir.join("empty-folder").exists());
    assert_clean_state(&endpoint.dir);
    endpoint.run(&["verify", &endpoint.url, "--deep", "--trust", f.keys.public.as_str()]).ok();

    // Rollback, then a second rollback is refused without changing anything.
    let rolled = endpoint.run(&["rollback", &endpoint.url]).ok();
    assert!(rolled.stdout.contains("back from sequence 2 to sequence 1"), "{}", rolled.stdout);
    assert_eq!(content_tree(&endpoint.dir), f.tree1, "{}: after rollback", endpoint.name);
    assert_clean_state(&endpoint.dir);
    let status = status_json(endpoint);
    assert_eq!((status["sequence"].clone(), status["rolled_back_from"].clone()), (1.into(), 2.into()), "{status}");
    let journal = std::fs::read_to_string(endpoint.dir.join(".ferry/audit")).unwrap();
    assert!(journal.lines().any(|l| l.contains(" rollback ") && l.ends_with(" from%20sequence%202")), "{journal}");
    endpoint.run(&["verify", &endpoint.url, "--deep", "--trust", f.keys.public.as_str()]).ok();
    let before = tree_state(&endpoint.dir);
    let twice = endpoint.run(&["rollback", &endpoint.url]);
    assert_ne!(twice.code, 0, "a second rollback succeeded:\n{}", twice.stdout);
    assert_eq!(tree_state(&endpoint.dir), before, "a refused second rollback changed the server");

    // Back to the second snapshot.
    f.import(endpoint, &f.media2).ok();
    assert_eq!(content_tree(&endpoint.dir), f.tree2, "{}: re-import after rollback", endpoint.name);
    assert_clean_state(&endpoint.dir);

    // What a client downloads is what was exported.
    let mirror = f.scratch.path("mirror");
    let ca = endpoint.args.iter().position(|a| a == "--ca-file").map(|n| Utf8PathBuf::from(&endpoint.args[n + 1]));
    let pinned_only = endpoint.args.iter().any(|a| a == "--pin-sha256");
    if !pinned_only && lftp_mirror(&endpoint.url, &endpoint.password, ca.as_deref(), &mirror) {
        assert_eq!(content_tree(&mirror), f.tree2, "{}: mirrored back with lftp", endpoint.name);
    }
}

/// `verify` compares sizes (and hashes with `--deep`) and names every
/// missing, extra and changed file, with exit code 3.
fn verify_reports_drift(endpoint: &Endpoint) {
    let f = fixture();
    f.import(endpoint, &f.media1).ok();
    let ok = endpoint.run(&["verify", &endpoint.url, "--trust", f.keys.public.as_str()]).ok();
    assert!(ok.stdout.contains("sizes compared") && ok.stdout.contains("signature verified"), "{}", ok.stdout);
    let deep = endpoint.run(&["verify", &endpoint.url, "--deep", "--json"]).ok();
    assert!(deep.stdout.contains("\"deep\": true"), "{}", deep.stdout);

    // Same size, other bytes: only --deep sees it.
    let path = endpoint.dir.join("bases/av-1.dat");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    endpoint.run(&["verify", &endpoint.url]).ok();
    let drift = endpoint.run(&["verify", &endpoint.url, "--deep"]).expect_code(3);
    assert!(drift.stderr.contains("changed: bases/av-1.dat"), "{}", drift.stderr);

    // Other size, missing, extra.
    std::fs::write(endpoint.dir.join("binary/dos.txt"), b"line one\nline two\n").unwrap();
    std::fs::remove_file(endpoint.dir.join("index/updates.xml")).unwrap();
    std::fs::write(endpoint.dir.join("bases/planted.dat"), b"not in the manifest").unwrap();
    let before = tree_state(&endpoint.dir);
    let drift = endpoint.run(&["verify", &endpoint.url]).expect_code(3);
    for needle in ["changed: binary/dos.txt", "missing: index/updates.xml", "extra: bases/planted.dat"] {
        assert!(drift.stderr.contains(needle), "`{needle}` not reported:\n{}", drift.stderr);
    }
    assert_eq!(tree_state(&endpoint.dir), before, "verify wrote to the server");
}

/// Refused input leaves the server exactly as it was, state folder included.
fn refusals_change_nothing(endpoint: &Endpoint) {
    let f = fixture();
    // Nothing installed: rollback is refused and creates nothing.
    let refused = endpoint.run(&["rollback", &endpoint.url]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);

    f.import(endpoint, &f.media2).ok();
    let before = tree_state_but_journal(&endpoint.dir);
    let untrusted = endpoint
        .run(&["import", f.media2.as_str(), &endpoint.url, "--trust", f.keys.other_public.as_str()])
        .expect_code(3);
    assert!(untrusted.stderr.to_lowercase().contains("trust"), "{}", untrusted.stderr);
    assert_eq!(tree_state_but_journal(&endpoint.dir), before, "an untrusted snapshot changed the server");
    let older = f.import(endpoint, &f.media1).expect_code(3);
    assert!(older.stderr.contains('1') && older.stderr.contains('2'), "{}", older.stderr);
    assert_eq!(tree_state_but_journal(&endpoint.dir), before, "an older snapshot changed the server");
    assert_eq!(last_journal_action(&endpoint.dir.join(".ferry")), "refusal", "the refusal is journaled on the server");
    let no_previous = endpoint.run(&["rollback", &endpoint.url]);
    assert_ne!(no_previous.code, 0, "rollback without a previous snapshot succeeded: {}", no_previous.stdout);
    assert_eq!(tree_state_but_journal(&endpoint.dir), before, "a refused rollback changed the server");

    // A damaged payload file on the media is refused before anything is visible.
    let damaged = f.scratch.path("damaged");
    let copy = std::process::Command::new("cp").args(["-a", f.media2.as_str(), damaged.as_str()]).status().unwrap();
    assert!(copy.success());
    let newer = f.scratch.path("source3");
    repository_v2(&newer);
    write(&newer.join("bases/av-3.dat"), &[0x11; 40_000]);
    let media3 = f.scratch.path("media3");
    let snapshot = export_with(&newer, &media3, &f.keys.key, "av", 3, &["--layout", "tree"]);
    std::fs::write(snapshot.join("payload/bases/av-3.dat"), [0x12; 40_000]).unwrap();
    let tampered = f.import(endpoint, &media3).expect_code(3);
    assert!(tampered.stderr.contains("av-3.dat"), "{}", tampered.stderr);
    assert_eq!(content_tree(&endpoint.dir), f.tree2, "a tampered snapshot became visible");
    assert_clean_state(&endpoint.dir);
}

/// `publish` from an installed folder to two FTP targets and a folder.
fn publish_to_many(endpoint: &Endpoint) {
    let f = fixture();
    let installed = f.scratch.path("installed");
    run(&["import", f.media1.as_str(), installed.as_str(), "--trust", f.keys.public.as_str(), "-q"]).ok();
    let (second_url, second_dir) = endpoint.sibling("second");
    let folder = f.scratch.path("folder-target");
    let publish = |expect: &str| {
        let out = endpoint
            .run(&[
                "publish",
                installed.as_str(),
                &endpoint.url,
                &second_url,
                folder.as_str(),
                "--trust",
                f.keys.public.as_str(),
            ])
            .ok();
        // One indented line per target, then the closing `  done in` line.
        let lines: Vec<_> =
            out.stdout.lines().filter(|l| l.starts_with("  ") && !l.starts_with("  done in ")).collect();
        assert_eq!(lines.len(), 3, "one line per target:\n{}", out.stdout);
        assert!(lines.iter().all(|l| l.trim_start().starts_with(expect)), "expected `{expect}`:\n{}", out.stdout);
    };
    publish("updated");
    for dir in [&endpoint.dir, &second_dir, &folder] {
        assert_eq!(content_tree(dir), f.tree1, "published to {dir}");
    }
    publish("up to date");
    run(&["import", f.media2.as_str(), installed.as_str(), "--trust", f.keys.public.as_str(), "-q"]).ok();
    publish("updated");
    for dir in [&endpoint.dir, &second_dir, &folder] {
        assert_eq!(content_tree(dir), f.tree2, "published to {dir}");
        assert_clean_state(dir);
    }
    endpoint.run(&["verify", &second_url, "--deep", "--trust", f.keys.public.as_str()]).ok();

    // --json carries no password either (Endpoint::run checks every output).
    let json = endpoint.run(&[
        "publish",
        installed.as_str(),
        &endpoint.url,
        &second_url,
        "--trust",
        f.keys.public.as_str(),
        "--json",
    ]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert!(json.stdout.contains("up to date"), "{}", json.stdout);
}

/// The password never appears in output, --json, errors or on the server.
fn password_never_shown(endpoint: &Endpoint) {
    let f = fixture();
    let trust = f.keys.public.as_str();
    endpoint.run(&["import", f.media1.as_str(), &endpoint.url, "--trust", trust, "-v"]).ok();
    endpoint.run(&["import", f.media2.as_str(), &endpoint.url, "--trust", trust, "--json"]).ok();
    endpoint.run(&["status", &endpoint.url, "--json"]).ok();
    endpoint.run(&["status", &endpoint.url, "-v"]).ok();
    endpoint.run(&["verify", &endpoint.url, "--deep", "--json"]).ok();
    endpoint.run(&["rollback", &endpoint.url, "--json"]).ok();
    // Failures: a wrong password, a path that cannot be created, a user in the URL with a password.
    let wrong = format!("{}-but-wrong", endpoint.password);
    for json in [false, true] {
        let mut args = vec!["status", endpoint.url.as_str()];
        if json {
            args.push("--json");
        }
        let failed = endpoint.run_env(&args, &[("FERRY_FTP_PASSWORD", &wrong)]);
        assert_ne!(failed.code, 0, "a wrong password was accepted");
        assert_no_password(&failed, &wrong, &args);
    }
    let with_password = endpoint.url.replacen("@", &format!(":{}@", endpoint.password), 1);
    let refused = endpoint.run(&["status", &with_password]);
    assert_eq!(refused.code, 2, "a password in the URL must be a usage error:\n{}", refused.stderr);
    // Nothing ferry stored on the server holds it.
    for (path, _) in tree_state(&endpoint.dir) {
        let full = endpoint.dir.join(&path);
        if full.is_file() {
            let bytes = std::fs::read(&full).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&endpoint.password),
                "the password is stored in {path} on the server"
            );
        }
    }
}

macro_rules! conformance {
    ($($module:ident => $kind:expr),* $(,)?) => {$(
        mod $module {
            use super::*;
            fn endpoint(case: &str) -> Option<Endpoint> {
                $kind.endpoint(case)
            }
            #[test]
            fn import_update_rollback() {
                if let Some(e) = endpoint("import") { super::import_update_rollback(&e) }
            }
            #[test]
            fn verify_reports_drift() {
                if let Some(e) = endpoint("drift") { super::verify_reports_drift(&e) }
            }
            #[test]
            fn refusals_change_nothing() {
                if let Some(e) = endpoint("refusals") { super::refusals_change_nothing(&e) }
            }
            #[test]
            fn publish_to_many() {
                if let Some(e) = endpoint("publish") { super::publish_to_many(&e) }
            }
            #[test]
            fn password_never_shown() {
                if let Some(e) = endpoint("password") { super::password_never_shown(&e) }
            }
        }
    )*};
}

conformance! {
    in_process => Kind::InProcess,
    in_process_ftps => Kind::InProcessTls,
    pure_ftpd => Kind::PureFtpd,
    pure_ftpd_ftps => Kind::PureFtpdTls,
    vsftpd => Kind::Vsftpd,
    vsftpd_ftps => Kind::VsftpdTls,
}

// ---------------------------------------------------------------------------
// Passwords from ~/.netrc and --password-file
// ---------------------------------------------------------------------------

#[test]
fn password_from_netrc_and_password_file() {
    let endpoint = Kind::InProcess.endpoint("netrc").unwrap();
    let f = fixture();
    f.import(&endpoint, &f.media1).ok();
    let status = ["status", endpoint.url.as_str()];
    // No password at all: the anonymous login is refused by this server.
    let anonymous = endpoint.run_env(&status, &[]);
    assert_eq!(anonymous.code, 1, "{}", anonymous.stderr);
    std::fs::write(endpoint.home().join(".netrc"), format!("machine 127.0.0.1 login {USER} password {PASSWORD}\n"))
        .unwrap();
    endpoint.run_env(&status, &[]).ok();
    std::fs::remove_file(endpoint.home().join(".netrc")).unwrap();
    let file = f.scratch.path("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    endpoint.run_env(&["status", &endpoint.url, "--password-file", file.as_str()], &[]).ok();
}

// ---------------------------------------------------------------------------
// FTPS: pinned fingerprints and CA files
// ---------------------------------------------------------------------------

#[test]
fn ftps_pin_and_ca_file() {
    let server = InProcess::start(ServerConfig { tls: true, ..ServerConfig::default() });
    let pki = server.pki.clone().unwrap();
    let f = fixture();
    let url = server.url("site");
    let dir = server.root.join("site");
    let password = [("FERRY_FTP_PASSWORD", PASSWORD)];
    let ferry_run = |args: &[&str]| {
        let once =
            || Run::from(ferry().envs(password).env("HOME", f.scratch.root.as_str()).args(args).output().unwrap());
        let mut run = once();
        // The in-process server (libunftp) now and then garbles its TLS
        // records ("InvalidContentType") before the certificate is even
        // checked; pure-ftpd and vsftpd never do. One retry keeps that
        // flake of the test server from failing CI; a real refusal repeats.
        if run.stderr.contains("InvalidContentType") {
            eprintln!("retrying once after the in-process server's TLS flake: {}", run.stderr.trim());
            run = once();
        }
        assert_no_password(&run, PASSWORD, args);
        run
    };
    let trust = f.keys.public.as_str();

    // The CA that signed the server certificate.
    ferry_run(&["import", f.media1.as_str(), &url, "--trust", trust, "--ca-file", pki.ca.as_str()]).ok();
    assert_eq!(content_tree(&dir), f.tree1);
    // The right pin, in either spelling.
    let colons = pki.sha256.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(":");
    ferry_run(&["status", &url, "--pin-sha256", &pki.sha256]).ok();
    ferry_run(&["status", &url, "--pin-sha256", &colons.to_uppercase()]).ok();

    let before = tree_state(&server.root);
    // A wrong pin: refused, the server's real fingerprint shown.
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let refused = ferry_run(&["import", f.media2.as_str(), &url, "--trust", trust, "--pin-sha256", &wrong]);
    assert_ne!(refused.code, 0, "a wrong pin was accepted");
    assert!(refused.stderr.contains(&pki.sha256), "the server's fingerprint is not shown:\n{}", refused.stderr);
    // Another CA, and the system roots: refused, fingerprint shown.
    let other = Pki::create(&f.scratch.path("other-pki"));
    let refused = ferry_run(&["import", f.media2.as_str(), &url, "--trust", trust, "--ca-file", other.ca.as_str()]);
    assert_ne!(refused.code, 0, "a certificate from another CA was accepted");
    assert!(refused.stderr.contains(&pki.sha256), "the server's fingerprint is not shown:\n{}", refused.stderr);
    let refused = ferry_run(&["status", &url]);
    assert_ne!(refused.code, 0, "a self-made CA was accepted against the system roots");
    assert!(refused.stderr.contains(&pki.sha256), "the server's fingerprint is not shown:\n{}", refused.stderr);
    assert_eq!(tree_state(&server.root), before, "a refused certificate changed the server");

    // The second snapshot goes in with the pin.
    ferry_run(&["import", f.media2.as_str(), &url, "--trust", trust, "--pin-sha256", &pki.fingerprint]).ok();
    assert_eq!(content_tree(&dir), f.tree2);
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

/// A bigger second snapshot, so data connections carry enough bytes to cut.
fn repository_v2_big(root: &Utf8Path) {
    repository_v2(root);
    let mut bytes = Vec::with_capacity(900_000);
    let mut x: u32 = 7;
    while bytes.len() < 900_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((x >> 16) as u8);
    }
    write(&root.join("large/big.bin"), &bytes);
    for n in 0..20 {
        write(&root.join(format!("many/f{n:02}.dat")), format!("small file {n}\n").repeat(n + 1).as_bytes());
    }
}

/// Installs the first snapshot directly, then the second through a proxy
/// with `fault`; the server must then serve exactly one of the two, and a
/// plain retry must finish the second.
fn import_through_fault(fault: Fault, extra: &[&str]) {
    let f = fixture_with(repository_v1, repository_v2_big);
    let server = InProcess::start(ServerConfig::default());
    let dir = server.root.join("av");
    let password = [("FERRY_FTP_PASSWORD", PASSWORD)];
    let ferry_run = |url: &str, media: &Utf8Path| {
        let args = [&["import", media.as_str(), url, "--trust", f.keys.public.as_str()][..], extra].concat();
        let run = Run::from(ferry().envs(password).env("HOME", f.scratch.root.as_str()).args(&args).output().unwrap());
        assert_no_password(&run, PASSWORD, &args);
        run
    };
    ferry_run(&server.url("av"), &f.media1).ok();
    let proxy = Proxy::start(server.port, Some(fault));
    let outcome = ferry_run(&server.url_via(proxy.port, "av"), &f.media2);
    assert!(proxy.fired(), "{fault:?} never happened; the test proves nothing");
    let which = assert_serves_one_of(&dir, &[&f.tree1, &f.tree2], &format!("after {fault:?}"));
    match outcome.code {
        0 => assert_eq!(which, 1, "ferry said it succeeded but the old snapshot is served"),
        1 => {
            assert!(
                outcome.stderr.contains("error") || outcome.stderr.contains("FTP") || outcome.stderr.contains("ftp"),
                "an unclear error:\n{}",
                outcome.stderr
            );
            eprintln!("{fault:?}: failed cleanly: {}", outcome.stderr.trim());
        }
        other => panic!("exit code {other} after {fault:?}:\n{}\n{}", outcome.stdout, outcome.stderr),
    }
    drop(proxy);
    // A run without the fault finishes the job (recovering whatever was left).
    let retry = ferry_run(&server.url("av"), &f.media2).ok();
    assert_eq!(content_tree(&dir), f.tree2, "after the retry:\n{}", retry.stdout);
    assert_clean_state(&dir);
    Run::from(
        ferry()
            .envs(password)
            .env("HOME", f.scratch.root.as_str())
            .args(["verify", &server.url("av"), "--deep", "--trust", f.keys.public.as_str()])
            .output()
            .unwrap(),
    )
    .ok();
}

#[test]
fn fault_data_connection_cut_mid_upload() {
    for after in [1_000, 300_000, 700_000] {
        import_through_fault(Fault::Cut { channel: Channel::Data, after }, &[]);
    }
}

#[test]
fn fault_control_connection_cut() {
    for after in [400, 2_000, 6_000, 15_000] {
        import_through_fault(Fault::Cut { channel: Channel::Control, after }, &[]);
    }
}

#[test]
fn fault_data_connection_stalls() {
    for after in [10, 200_000] {
        import_through_fault(Fault::Stall { channel: Channel::Data, after }, &["--ftp-timeout", "2s"]);
    }
}

#[test]
fn fault_control_connection_stalls() {
    import_through_fault(Fault::Stall { channel: Channel::Control, after: 3_000 }, &["--ftp-timeout", "2s"]);
}

/// Servers that refuse rename over an existing file (ProFTPD, IIS by
/// default) get delete-then-rename.
#[test]
fn fault_rename_over_existing_file_refused() {
    let server = InProcess::start(ServerConfig { refuse_rename_over: true, ..ServerConfig::default() });
    let f = fixture();
    let endpoint = Endpoint::for_server(&server, "av");
    f.import(&endpoint, &f.media1).ok();
    assert_eq!(content_tree(&endpoint.dir), f.tree1);
    f.import(&endpoint, &f.media2).ok();
    assert!(
        server.refused_renames.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "no rename was refused: the test proves nothing"
    );
    assert_eq!(content_tree(&endpoint.dir), f.tree2);
    assert_clean_state(&endpoint.dir);
    endpoint.run(&["verify", &endpoint.url, "--deep", "--trust", f.keys.public.as_str()]).ok();
    endpoint.run(&["rollback", &endpoint.url]).ok();
    assert_eq!(content_tree(&endpoint.dir), f.tree1);
    f.import(&endpoint, &f.media2).ok();
    assert_eq!(content_tree(&endpoint.dir), f.tree2);
    assert_clean_state(&endpoint.dir);
}

/// A full disk: a clear error, the old snapshot still served, and the next
/// import with room succeeds.
#[test]
fn fault_disk_full() {
    let Some(tmpfs) = Tmpfs::mount("2m") else { return };
    let server = InProcess::start(ServerConfig { root: Some(tmpfs.dir.clone()), ..ServerConfig::default() });
    let f = fixture_with(repository_v1, |root| {
        repository_v2(root);
        write(&root.join("large/too-big.bin"), &vec![0xC3; 3 * 1024 * 1024]);
    });
    let endpoint = Endpoint::for_server(&server, "av");
    f.import(&endpoint, &f.media1).ok();
    let full = f.import(&endpoint, &f.media2);
    assert_eq!(full.code, 1, "a full disk must fail the import:\n{}\n{}", full.stdout, full.stderr);
    eprintln!("disk full: {}", full.stderr.trim());
    assert_eq!(content_tree(&endpoint.dir), f.tree1, "the old snapshot is no longer served intact");
    assert_eq!(status_json(&endpoint)["sequence"], 1);
    endpoint.run(&["verify", &endpoint.url, "--deep", "--trust", f.keys.public.as_str()]).ok();
    tmpfs.resize("32m");
    f.import(&endpoint, &f.media2).ok();
    assert_eq!(content_tree(&endpoint.dir), f.tree2);
    assert_clean_state(&endpoint.dir);
    drop(server);
}
