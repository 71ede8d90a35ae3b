//! The update workflow of issue 12 through the real binary: the
//! verification gate at a test update source (`import --stage
//! --verify-cmd`, `ferry verdict`) and `ferry promote` to folders and FTP
//! servers (formats/verdict-v1.md). Approval policies are in tests/policy.rs.

mod ftp_support;
mod support;

use camino::{Utf8Path, Utf8PathBuf};
use ftp_support::*;
use support::*;

/// A repository exported twice (sequences 1 and 2) and a key to trust.
struct Site {
    scratch: Scratch,
    public: Utf8PathBuf,
    usb1: Utf8PathBuf,
    usb2: Utf8PathBuf,
    test: Utf8PathBuf,
}

fn site() -> Site {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("source");
    versioned_repository(&source, 1);
    let usb1 = scratch.path("usb1");
    export(&source, &usb1, &key, "av", 1);
    versioned_repository(&source, 2);
    let usb2 = scratch.path("usb2");
    export(&source, &usb2, &key, "av", 2);
    let test = scratch.path("test-updates");
    Site { scratch, public, usb1, usb2, test }
}

impl Site {
    fn stage(&self, usb: &Utf8Path, verify: Option<&str>, extra: &[&str]) -> Run {
        let mut args = vec!["import", usb.as_str(), self.test.as_str(), "--trust", self.public.as_str(), "--stage"];
        if let Some(command) = verify {
            args.extend(["--verify-cmd", command]);
        }
        args.extend_from_slice(extra);
        run(&args)
    }

    fn promote(&self, targets: &[&str], extra: &[&str]) -> Run {
        let mut args = vec!["promote", self.test.as_str()];
        args.extend_from_slice(targets);
        args.extend(["--trust", self.public.as_str()]);
        args.extend_from_slice(extra);
        run(&args)
    }

    fn status_json(&self) -> serde_json::Value {
        let out = run(&["status", self.test.as_str(), "--json"]);
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    }
}

/// A production folder holding sequence 1, to see that refusals change nothing.
fn production(site: &Site, name: &str) -> (Utf8PathBuf, std::collections::BTreeMap<String, String>) {
    let folder = site.scratch.path(name);
    run(&["import", site.usb1.as_str(), folder.as_str(), "--trust", site.public.as_str(), "-q"]).ok();
    let before = tree_state(&folder);
    (folder, before)
}

#[test]
fn a_passing_command_sees_the_staged_snapshot_and_records_pass() {
    let site = site();
    let seen = site.scratch.path("seen");
    let command = format!(
        "printf '%s %s %s %s %s' \"$FERRY_STAGED_PATH\" \"$FERRY_REPOSITORY\" \"$FERRY_SEQUENCE\" \"$FERRY_MANIFEST_DIGEST\" \"$PWD\" > {seen}; test -f bases/av-1.dat"
    );
    let staged = site.stage(&site.usb2, Some(&command), &["--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&staged.stdout).unwrap();
    let snapshot = report["import"]["snapshot"]["snapshot_id"].as_str().unwrap().to_owned();
    assert_eq!(report["verdict"]["result"], "pass");
    assert_eq!(report["verdict"]["by"], "command");
    assert_eq!(report["verify_exit_code"], 0);
    let test = site.test.canonicalize_utf8().unwrap();
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), format!("{} av 2 {snapshot} {test}", site.test));
    let status = site.status_json();
    assert_eq!(status["verdict"]["snapshot"], snapshot.as_str());
    assert_eq!(status["verdict_current"], true);
}

#[test]
fn a_failing_command_blocks_promotion_and_changes_no_target() {
    let site = site();
    let (prod, before) = production(&site, "prod");
    let staged = site.stage(&site.usb2, Some("echo 'engine crashed on device 7'; exit 3"), &[]).expect_code(1);
    assert!(
        staged.stdout.contains("verdict: fail by command") && staged.stdout.contains("exit status 3"),
        "{}",
        staged.stdout
    );
    assert!(
        staged.stdout.contains("engine crashed on device 7"),
        "the output's last lines are shown:\n{}",
        staged.stdout
    );
    let output = std::fs::read_to_string(site.test.join(".ferry/verify-output")).unwrap();
    assert_eq!(output, "engine crashed on device 7\n");
    let test_before = tree_state(&site.test);
    let refused = site.promote(&[prod.as_str()], &[]).expect_code(3);
    assert!(refused.stderr.contains("the verdict is fail by command"), "{}", refused.stderr);
    assert_tree_unchanged(&before, &tree_state(&prod), "the production folder after a refused promote");
    assert_tree_unchanged(&test_before, &tree_state(&site.test), "the test target after a refused promote");
}

#[test]
fn a_hanging_command_is_killed_at_the_timeout_and_counts_as_fail() {
    let site = site();
    let pid_file = site.scratch.path("pid");
    // A child in the background that would outlive the shell: the whole group goes.
    let command = format!("sleep 600 & echo $! > {pid_file}; wait");
    let staged = site.stage(&site.usb1, Some(&command), &["--verify-timeout", "2s", "--json"]).expect_code(1);
    let report: serde_json::Value = serde_json::from_str(&staged.stdout).unwrap();
    assert_eq!(report["verdict"]["result"], "fail");
    assert_eq!(report["verify_timed_out"], true);
    assert!(report["verdict"]["reason"].as_str().unwrap().starts_with("timed out after 2s"), "{report}");
    let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_owned();
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ");
    assert!(!alive, "the verify command's background child {pid} survived the timeout");
}

#[test]
fn staging_without_a_command_is_pending_until_an_operator_decides() {
    let site = site();
    let (prod, before) = production(&site, "prod");
    site.stage(&site.usb2, None, &[]).ok();
    assert_eq!(site.status_json()["verdict"]["result"], "pending");
    let refused = site.promote(&[prod.as_str()], &[]).expect_code(3);
    assert!(refused.stderr.contains("the verdict is pending by stage"), "{}", refused.stderr);
    assert_tree_unchanged(&before, &tree_state(&prod), "production after promoting a pending snapshot");
    run(&["verdict", site.test.as_str(), "pass", "--reason", "tested on the lab devices"]).ok();
    let verdict = site.status_json()["verdict"].clone();
    assert_eq!((verdict["result"].as_str(), verdict["by"].as_str()), (Some("pass"), Some("operator")));
    assert_eq!(verdict["reason"], "tested on the lab devices");
    site.promote(&[prod.as_str()], &[]).ok();
    assert_eq!(served_tree(&prod), served_tree(&site.test));
}

#[test]
fn verdict_on_a_target_never_staged_is_refused() {
    let site = site();
    let (prod, before) = production(&site, "prod");
    let refused = run(&["verdict", prod.as_str(), "pass", "--reason", "x"]).expect_code(2);
    assert!(refused.stderr.contains("was never staged"), "{}", refused.stderr);
    let refused =
        run(&["promote", prod.as_str(), site.scratch.path("elsewhere").as_str(), "--trust", site.public.as_str()])
            .expect_code(3);
    assert!(refused.stderr.contains("no verdict"), "{}", refused.stderr);
    assert!(!site.scratch.path("elsewhere").exists());
    assert_tree_unchanged(&before, &tree_state(&prod), "a target that was never staged");
}

#[test]
fn a_snapshot_changed_after_staging_is_refused() {
    let site = site();
    let (prod, before) = production(&site, "prod");
    site.stage(&site.usb2, Some("true"), &[]).ok();
    // A file changed at the test target after the pass.
    let file = site.test.join("bases/av-1.dat");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let refused = site.promote(&[prod.as_str()], &[]).expect_code(3);
    assert!(refused.stderr.contains("bases/av-1.dat"), "{}", refused.stderr);
    assert_tree_unchanged(&before, &tree_state(&prod), "production after promoting a changed snapshot");
}

#[test]
fn a_pass_counts_only_for_the_snapshot_it_was_reached_for() {
    let site = site();
    let (prod, before) = production(&site, "prod");
    site.stage(&site.usb1, Some("true"), &[]).ok();
    // Another snapshot imported into the test target without staging it.
    run(&["import", site.usb2.as_str(), site.test.as_str(), "--trust", site.public.as_str(), "-q"]).ok();
    assert_eq!(site.status_json()["verdict_current"], false);
    // Both switches keep the old verdict, which names the old snapshot (verdict-v1 §6 L2).
    assert_eq!(site.status_json()["verdict"]["sequence"], 1);
    let refused = site.promote(&[prod.as_str()], &[]).expect_code(3);
    assert!(refused.stderr.contains("no passing verdict for the snapshot it serves"), "{}", refused.stderr);
    assert!(refused.stderr.contains("sequence 2) is installed there now"), "{}", refused.stderr);
    assert_tree_unchanged(&before, &tree_state(&prod), "production after promoting an unverified snapshot");
    // With the ordered switch the old verdict stays, and names the old snapshot.
    let ordered = Site { test: site.scratch.path("test-ordered"), ..site };
    ordered.stage(&ordered.usb1, Some("true"), &["--switch", "ordered"]).ok();
    let import = ["import", ordered.usb2.as_str(), ordered.test.as_str(), "--trust", ordered.public.as_str()];
    run(&[&import[..], &["--switch", "ordered", "-q"]].concat()).ok();
    assert_eq!(ordered.status_json()["verdict"]["sequence"], 1);
    assert_eq!(ordered.status_json()["verdict_current"], false);
    let refused = ordered.promote(&[prod.as_str()], &[]).expect_code(3);
    assert!(refused.stderr.contains("sequence 2) is installed there now"), "{}", refused.stderr);
    assert_tree_unchanged(&before, &tree_state(&prod), "production after promoting an unverified snapshot");
}

/// A pass promotes exactly the verified bytes to two folders and an FTP
/// server at once; an unreachable server is reported while the others
/// succeed, and the exit code says one failed.
fn promote_to_folders_and_ftp(endpoint: &Endpoint) {
    let site = site();
    let (prod, _) = production(&site, "prod");
    let branch = site.scratch.path("branch-office");
    site.stage(&site.usb2, Some("true"), &[]).ok();
    let unreachable = "ftp://ferry@127.0.0.1:1/nowhere";
    let args = [
        "promote",
        site.test.as_str(),
        prod.as_str(),
        branch.as_str(),
        endpoint.url.as_str(),
        unreachable,
        "--trust",
        site.public.as_str(),
        "--ftp-timeout",
        "10s",
    ];
    let promoted = endpoint.run(&args).expect_code(1);
    let lines: Vec<&str> = promoted.stdout.lines().collect();
    assert!(
        lines[0].starts_with("verdict at ") && lines[1].starts_with("promoted av sequence 2"),
        "{}",
        promoted.stdout
    );
    for target in [prod.as_str(), branch.as_str(), endpoint.url.as_str()] {
        assert!(lines.iter().any(|l| l.starts_with(&format!("  updated {target}"))), "{target}:\n{}", promoted.stdout);
    }
    assert!(lines.iter().any(|l| l.starts_with(&format!("  failed {unreachable}"))), "{}", promoted.stdout);
    let verified = served_tree(&site.test);
    for dir in [&prod, &branch] {
        assert_eq!(served_tree(dir), verified, "promoted to {dir}");
    }
    // FTP servers keep no file modes: the bytes are compared.
    assert_eq!(content_tree(&endpoint.dir), content_tree(&site.test), "promoted to {}", endpoint.url);
    let promoted: Vec<String> = site.status_json()["promoted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["target"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(promoted, [prod.as_str(), branch.as_str(), endpoint.url.as_str()]);
    // Again: everything is up to date but the unreachable server.
    let again = endpoint.run(&args).expect_code(1);
    assert!(again.stdout.contains(&format!("  up to date {}", endpoint.url)), "{}", again.stdout);
}

#[test]
fn promote_to_folders_and_the_in_process_ftp_server() {
    promote_to_folders_and_ftp(&Kind::InProcess.endpoint("promote").unwrap());
}

#[test]
fn promote_to_folders_and_pure_ftpd() {
    if let Some(endpoint) = Kind::PureFtpd.endpoint("promote") {
        promote_to_folders_and_ftp(&endpoint);
    }
}

#[test]
fn promote_to_folders_and_vsftpd() {
    if let Some(endpoint) = Kind::Vsftpd.endpoint("promote") {
        promote_to_folders_and_ftp(&endpoint);
    }
}

/// verdict-v1 §5 R2: an FTP test target is read back through the server,
/// every byte checked against the signed manifest, then published; a file
/// changed there after staging is refused and no target changes.
#[test]
fn promote_from_an_ftp_test_target() {
    let site = site();
    let endpoint = Kind::InProcess.endpoint("staged").unwrap();
    let (prod, before) = production(&site, "prod");
    let trust = ["--trust", site.public.as_str()];
    let stage = ["import", site.usb2.as_str(), endpoint.url.as_str(), "--stage", "--verify-cmd", "true"];
    endpoint.run(&[&stage[..], &trust[..]].concat()).ok();
    let promote = ["promote", endpoint.url.as_str(), prod.as_str(), "--json"];
    // A file changed at the test target after the pass: refused, nothing written.
    let file = endpoint.dir.join("bases/av-1.dat");
    let original = std::fs::read(&file).unwrap();
    std::fs::write(&file, b"changed after staging\n").unwrap();
    let refused = endpoint.run(&[&promote[..], &trust[..]].concat()).expect_code(3);
    assert!(refused.stderr.contains("bases/av-1.dat") && refused.stderr.contains("changed since it was staged"));
    assert_tree_unchanged(&before, &tree_state(&prod), "production after promoting a changed snapshot");
    std::fs::write(&file, original).unwrap();
    let promoted = endpoint.run(&[&promote[..], &trust[..]].concat()).ok();
    let report: serde_json::Value = serde_json::from_str(&promoted.stdout).unwrap();
    assert_eq!(report["targets"][0]["status"], "updated", "{report}");
    assert_eq!(report["snapshot"]["dir"], endpoint.url.as_str(), "{report}");
    assert_eq!(content_tree(&prod), content_tree(&endpoint.dir));
    let status: serde_json::Value =
        serde_json::from_str(&endpoint.run(&["status", endpoint.url.as_str(), "--json"]).ok().stdout).unwrap();
    assert_eq!(status["promoted"][0]["target"], prod.as_str(), "{status}");
}

/// verdict-v1 §6 L1: the record of promotions survives a whole-tree switch
/// to another snapshot and a rollback; a verdict never carries over.
#[test]
fn promotions_survive_whole_tree_switches_and_rollbacks() {
    let site = site();
    let (prod, _) = production(&site, "prod");
    let branch = site.scratch.path("branch");
    site.stage(&site.usb1, Some("true"), &[]).ok();
    site.promote(&[branch.as_str()], &[]).ok();
    let promoted = |site: &Site| -> Vec<(String, String)> {
        let status = site.status_json();
        let list = status["promoted"].as_array().unwrap().clone();
        list.iter()
            .map(|p| (p["snapshot"].as_str().unwrap()[..12].to_owned(), p["target"].as_str().unwrap().to_owned()))
            .collect()
    };
    let first = promoted(&site);
    assert_eq!(first.len(), 1);
    // Sequence 2 staged (whole-tree switch), verified and promoted.
    let staged = site.stage(&site.usb2, Some("true"), &["--switch", "tree", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&staged.stdout).unwrap();
    assert_eq!(report["import"]["switch"], "tree", "{report}");
    site.promote(&[prod.as_str()], &[]).ok();
    let both = promoted(&site);
    assert_eq!((both.len(), &both[0]), (2, &first[0]), "{both:?}");
    assert_ne!(both[0].0, both[1].0, "two snapshots were promoted");
    // A rollback to sequence 1 keeps the record; the pass for 2 does not count for 1.
    run(&["rollback", site.test.as_str(), "-q"]).ok();
    assert_eq!(promoted(&site), both);
    let status = site.status_json();
    assert_eq!((status["verdict"]["sequence"].as_u64(), status["verdict_current"].as_bool()), (Some(2), Some(false)));
    site.promote(&[prod.as_str()], &[]).expect_code(3);
}

#[test]
fn verify_options_need_stage() {
    let site = site();
    let refused = run(&[
        "import",
        site.usb1.as_str(),
        site.test.as_str(),
        "--trust",
        site.public.as_str(),
        "--verify-cmd",
        "true",
    ])
    .expect_code(2);
    assert!(refused.stderr.contains("--stage"), "{}", refused.stderr);
    assert!(!site.test.exists());
}
