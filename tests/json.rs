//! `--json` (docs/reference/json.md): every command run on the bundled
//! sample prints one object whose top-level fields are exactly those the
//! page documents for it; errors print the documented error object.

mod support;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use support::*;

/// The first table under each `## ` heading of json.md: heading to fields.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference/json.md")).unwrap();
    let mut sections = BTreeMap::new();
    for section in page.split("\n## ").skip(1) {
        let (heading, body) = section.split_once('\n').unwrap();
        let fields: BTreeSet<String> = body
            .lines()
            .skip_while(|line| !line.starts_with("| field"))
            .skip(2)
            .take_while(|line| line.starts_with("| `"))
            .map(|line| line.split('`').nth(1).unwrap().to_owned())
            .collect();
        sections.insert(heading.trim().to_owned(), fields);
    }
    sections
}

fn object(run: &Run) -> serde_json::Map<String, Value> {
    match serde_json::from_str(&run.stdout) {
        Ok(Value::Object(map)) => map,
        other => panic!("not one JSON object: {other:?}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr),
    }
}

fn check(docs: &BTreeMap<String, BTreeSet<String>>, section: &str, command: &str, run: &Run) {
    let object = object(run);
    let fields = docs.get(section).unwrap_or_else(|| panic!("json.md has no section `{section}`"));
    let printed: BTreeSet<String> = object.keys().cloned().collect();
    let missing: Vec<_> = fields.difference(&printed).collect();
    let undocumented: Vec<_> = printed.difference(fields).collect();
    assert!(missing.is_empty(), "{section}: documented but not printed: {missing:?}\n{}", run.stdout);
    assert!(undocumented.is_empty(), "{section}: printed but not in json.md: {undocumented:?}");
    assert_eq!(object["schema"], 1, "{section}");
    assert_eq!(object["command"], command, "{section}");
}

#[test]
fn every_command_prints_its_documented_fields() {
    let docs = documented();
    let scratch = Scratch::new();
    let (secret, public, source) = support::bundled_sample();
    let (usb, target, mirror, key) =
        (scratch.path("usb"), scratch.path("target"), scratch.path("mirror"), scratch.path("new-key"));
    let json = |args: &[&str]| run(&[&["--json"], args].concat());

    check(&docs, "`ferry keygen`", "keygen", &json(&["keygen", key.as_str(), "--no-passphrase"]).ok());
    let exported = json(&["export", &source, usb.as_str(), "--key", &secret, "--sequence", "1"]).ok();
    check(&docs, "`ferry export`", "export", &exported);
    let planned = json(&["export", &source, usb.as_str(), "--key", &secret, "--sequence", "2", "--dry-run"]).ok();
    check(&docs, "`ferry export --dry-run`", "export", &planned);
    let exported = object(&exported);
    assert_eq!(exported["dir"], exported["snapshot_dir"]);
    assert_eq!(exported["signed_by"], exported["key_id"]);
    json(&["export", &source, usb.as_str(), "--key", &secret, "--sequence", "2"]).ok();
    check(&docs, "`ferry verify` (media)", "verify", &json(&["verify", usb.as_str(), "--trust", &public]).ok());
    check(&docs, "`ferry list`", "list", &json(&["list", usb.as_str(), "--trust", &public]).ok());
    let import = ["import", usb.as_str(), target.as_str(), "--trust", &public];
    check(&docs, "`ferry import`", "import", &json(&[&import[..], &["--sequence", "1"]].concat()).ok());
    json(&import).ok();
    check(&docs, "`ferry verify` (installed update source)", "verify", &json(&["verify", target.as_str()]).ok());
    let publish = json(&["publish", target.as_str(), mirror.as_str(), "--trust", &public]).ok();
    check(&docs, "`ferry publish`", "publish", &publish);
    check(&docs, "`ferry status`", "status", &json(&["status", target.as_str()]).ok());
    check(&docs, "`ferry rollback`", "rollback", &json(&["rollback", target.as_str()]).ok());
    // The workflow of issue 12: policy check, staging, verdict, promote.
    let policy = scratch.path("policy.toml");
    std::fs::write(&policy, "version = 1\nship_undefined = true\n").unwrap();
    let check_run = json(&["policy", "check", &source, "--policy", policy.as_str()]).ok();
    check(&docs, "`ferry policy check`", "policy", &check_run);
    let test = scratch.path("test-target");
    let stage = ["import", usb.as_str(), test.as_str(), "--trust", &public, "--stage", "--verify-cmd", "true"];
    check(&docs, "`ferry import --stage`", "import", &json(&stage).ok());
    check(&docs, "`ferry verdict`", "verdict", &json(&["verdict", test.as_str(), "pass", "--reason", "ok"]).ok());
    let promote = json(&["promote", test.as_str(), scratch.path("production").as_str(), "--trust", &public]).ok();
    check(&docs, "`ferry promote`", "promote", &promote);
    check(&docs, "`ferry inventory`", "inventory", &json(&["inventory", test.as_str()]).ok());
    check(&docs, "`ferry log`", "log", &json(&["log", target.as_str(), "--verify"]).ok());
}

#[test]
fn trust_and_delta_commands_print_their_documented_fields() {
    let docs = documented();
    let scratch = Scratch::new();
    let (secret, public, source) = support::bundled_sample();
    let (usb, target, store) = (scratch.path("usb"), scratch.path("target"), scratch.path("store"));
    let (second, third, receipt) = (scratch.path("second"), scratch.path("third"), scratch.path("site.receipt"));
    keygen(&second);
    keygen(&third);
    let json =
        |args: &[&str]| Run::from(ferry().env("FERRY_TRUST_STORE", &store).arg("--json").args(args).output().unwrap());
    let pub_of = |prefix: &camino::Utf8Path| format!("{prefix}.pub");
    let key_of = |prefix: &camino::Utf8Path| format!("{prefix}.key");

    let ledger = scratch.path("ledger");
    let export = ["export", &source, usb.as_str(), "--key", &secret, "--repository", "sample", "-q"];
    run(&[&export[..], &["--ledger", ledger.as_str()]].concat()).ok();
    check(&docs, "`ferry sign`", "sign", &json(&["sign", usb.as_str(), "--key", &key_of(&second)]).ok());
    let added = json(&["trust", "add", &public, "--repository", "sample", "--name", "connected-side"]).ok();
    check(&docs, "`ferry trust`", "trust", &added);
    json(&["import", usb.as_str(), target.as_str()]).ok();
    check(&docs, "`ferry receipt`", "receipt", &json(&["receipt", target.as_str(), receipt.as_str()]).ok());
    let diff = json(&["diff", receipt.as_str(), &source, "--ledger", ledger.as_str()]).ok();
    check(&docs, "`ferry diff`", "diff", &diff);

    json(&["trust", "add", &pub_of(&second), "--repository", "sample"]).ok();
    check(&docs, "`ferry trust`", "trust", &json(&["trust", "threshold", "sample", "2"]).ok());
    check(&docs, "`ferry trust`", "trust", &json(&["trust", "list"]).ok());
    let rotate = ["rotate", usb.as_str(), "--repository", "sample", "--number", "1", "--threshold", "2"];
    let keys = ["--key", &secret, "--key", &key_of(&second), "--add", &pub_of(&third)];
    check(&docs, "`ferry rotate`", "rotate", &json(&[&rotate[..], &keys[..]].concat()).ok());
}

#[test]
fn errors_print_the_documented_object_with_structured_problems() {
    let docs = documented();
    let root = env!("CARGO_MANIFEST_DIR");
    let public = format!("{root}/samples/keys/TEST-ONLY-DO-NOT-USE.pub");
    // One problem: the list has one entry, the message.
    let scratch = Scratch::new();
    let target = scratch.path("target");
    let damaged = format!("{root}/samples/invalid/payload-file-missing");
    let missing = run(&["--json", "import", &damaged, target.as_str(), "--trust", &public]).expect_code(3);
    check(&docs, "Errors", "import", &missing);
    let printed = object(&missing);
    assert_eq!(printed["exit_code"], 3);
    let problems = printed["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].as_str().unwrap().contains("bases/"), "{problems:?}");
    // An error that carries no list: one entry, the whole message.
    let no_trust = run(&["--json", "verify", &format!("{root}/samples/media")]).expect_code(2);
    check(&docs, "Errors", "verify", &no_trust);
    let printed = object(&no_trust);
    assert_eq!(printed["problems"], serde_json::json!([printed["error"]]));
    assert!(no_trust.stderr.starts_with("error: "), "{}", no_trust.stderr);
}

/// Several problems: each is its own entry, while `error` keeps the one
/// summary message of the text output. (A failing `verify` of media prints
/// its report instead, with `failure`: see json.md.)
#[test]
fn several_problems_are_listed_one_by_one() {
    let scratch = Scratch::new();
    let root = env!("CARGO_MANIFEST_DIR");
    let source = scratch.path("source");
    write(&source.join("good.dat"), b"fine");
    std::os::unix::fs::symlink("good.dat", source.join("link-one")).unwrap();
    std::os::unix::fs::symlink("good.dat", source.join("link-two")).unwrap();
    let key = format!("{root}/samples/keys/TEST-ONLY-DO-NOT-USE.key");
    let usb = scratch.path("usb");
    let refused = run(&["--json", "export", source.as_str(), usb.as_str(), "--key", &key]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    let docs = documented();
    check(&docs, "Errors", "export", &refused);
    let object = object(&refused);
    let problems: Vec<&str> = object["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("link-one")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("link-two")), "{problems:?}");
    assert!(object["error"].as_str().unwrap().contains("2 problems"), "{}", object["error"]);
    assert_eq!(object["exit_code"], refused.code);
}
