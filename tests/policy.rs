//! Approval policies (formats/policy-v1.md) through the real binary:
//! `ferry policy check` and `ferry export --policy` agree; declined and
//! undefined updates and updates whose licence terms are not accepted are
//! held back; an update declined later is removed by the next import.

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeSet;
use support::*;

/// The repository: bases (approved), a new engine with licence terms, beta
/// modules (undefined), a toolbar (declined), and files no rule names.
fn repository(root: &Utf8Path) {
    write(&root.join("bases/av-1.dat"), b"bases one\n");
    write(&root.join("bases/daily/av-2.dat"), b"bases two\n");
    write(&root.join("index/master.xml"), b"<index/>\n");
    write(&root.join("engine/engine.bin"), b"engine 2\n");
    write(&root.join("beta/feature.bin"), b"beta\n");
    write(&root.join("toolbar/toolbar.bin"), b"toolbar\n");
    write(&root.join("misc/readme.txt"), b"readme\n");
}

const POLICY: &str = r#"version = 1
unmatched = "undefined"
ship_undefined = false

[[component]]
name = "bases"
paths = ["bases", "index/*.xml"]
status = "approved"

[[component]]
name = "engine"
paths = ["engine/**"]
status = "approved"
eula = true
ACCEPTANCE

[[component]]
name = "beta"
paths = ["beta"]
ship_undefined = true

[[component]]
name = "toolbar"
paths = ["toolbar/**"]
status = "declined"
"#;

fn policy(scratch: &Scratch, name: &str, acceptance: &str) -> Utf8PathBuf {
    let path = scratch.path(name);
    std::fs::write(&path, POLICY.replace("ACCEPTANCE", acceptance)).unwrap();
    path
}

fn check(source: &Utf8Path, policy: &Utf8Path) -> serde_json::Value {
    let out = run(&["policy", "check", source.as_str(), "--policy", policy.as_str(), "--json"]).ok();
    serde_json::from_str(&out.stdout).unwrap()
}

fn strings(value: &serde_json::Value) -> BTreeSet<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

#[test]
fn check_matches_export_and_holds_declined_undefined_and_unaccepted() {
    let scratch = Scratch::new();
    let (key, _) = key_pair(&scratch);
    let source = scratch.path("source");
    repository(&source);
    let held_eula = policy(&scratch, "policy.toml", "");
    let report = check(&source, &held_eula);
    let shipped = set(&["bases/av-1.dat", "bases/daily/av-2.dat", "beta/feature.bin", "index/master.xml"]);
    assert_eq!(strings(&report["shipped"]), shipped);
    let held: Vec<(String, String)> = report["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["path"].as_str().unwrap().to_owned(), h["reason"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        held,
        [
            ("engine/engine.bin".to_owned(), "eula-not-accepted".to_owned()),
            ("misc/readme.txt".to_owned(), "undefined".to_owned()),
            ("toolbar/toolbar.bin".to_owned(), "declined".to_owned()),
        ]
    );
    let usb = scratch.path("usb");
    let snapshot = export_with(&source, &usb, &key, "av", 1, &["--layout", "tree", "--policy", held_eula.as_str()]);
    assert_eq!(exported_files(&snapshot), shipped, "export carries exactly what policy check said");
    assert!(!snapshot.join("payload/toolbar").exists(), "no folder of a declined component");

    // Accepted: the engine ships, with who accepted it shown.
    let accepted =
        policy(&scratch, "accepted.toml", r#"eula_accepted = { by = "j.smith", at = 2026-12-01T10:00:00Z }"#);
    let report = check(&source, &accepted);
    let engine = &report["components"][1];
    assert_eq!((engine["name"].as_str(), engine["shipped_files"].as_u64()), (Some("engine"), Some(1)));
    assert_eq!(engine["eula_accepted"]["by"], "j.smith");
    assert_eq!(engine["eula_accepted"]["at"], "2026-12-01T10:00:00Z");
    let snapshot = export_with(&source, &usb, &key, "av", 2, &["--layout", "tree", "--policy", accepted.as_str()]);
    let mut with_engine = shipped.clone();
    with_engine.insert("engine/engine.bin".into());
    assert_eq!(exported_files(&snapshot), with_engine);
    assert_eq!(strings(&report["shipped"]), with_engine);
}

#[test]
fn undefined_follows_the_policy() {
    let scratch = Scratch::new();
    let source = scratch.path("source");
    repository(&source);
    let everything = scratch.path("everything.toml");
    std::fs::write(&everything, "version = 1\nship_undefined = true\n").unwrap();
    assert_eq!(check(&source, &everything)["held_files"], 0);
    let nothing = scratch.path("nothing.toml");
    std::fs::write(&nothing, "version = 1\n").unwrap();
    assert_eq!(check(&source, &nothing)["shipped_files"], 0);
    let beta_only = scratch.path("beta.toml");
    std::fs::write(
        &beta_only,
        "version = 1\n[[component]]\nname = \"beta\"\npaths = [\"beta\"]\nship_undefined = true\n",
    )
    .unwrap();
    assert_eq!(strings(&check(&source, &beta_only)["shipped"]), set(&["beta/feature.bin"]));
}

#[test]
fn a_previously_installed_update_declined_now_is_removed_by_the_next_import() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("source");
    repository(&source);
    let (usb1, usb2, target) = (scratch.path("usb1"), scratch.path("usb2"), scratch.path("target"));
    export(&source, &usb1, &key, "av", 1);
    run(&["import", usb1.as_str(), target.as_str(), "--trust", public.as_str(), "-q"]).ok();
    assert!(target.join("toolbar/toolbar.bin").exists());
    let accepted =
        policy(&scratch, "accepted.toml", r#"eula_accepted = { by = "j.smith", at = 2026-12-01T10:00:00Z }"#);
    export_with(&source, &usb2, &key, "av", 2, &["--policy", accepted.as_str()]);
    let out = run(&["import", usb2.as_str(), target.as_str(), "--trust", public.as_str(), "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // toolbar (declined) and misc (undefined, not shipped) are removed;
    // the signed manifest says which of them is declined.
    assert_eq!(report["removed"], 2, "{report}");
    assert_eq!(report["removed_declined"], 1, "{report}");
    assert!(!target.join("toolbar").exists(), "the declined update is still installed");
    assert!(target.join("engine/engine.bin").exists());
    // The target's audit journal says so too (audit-journal-v1 §6a).
    let journal = std::fs::read_to_string(target.join(".ferry/audit")).unwrap();
    assert!(journal.ends_with(" declined=1\n"), "{journal}");
    let log: serde_json::Value = serde_json::from_str(&run(&["log", target.as_str(), "--json"]).ok().stdout).unwrap();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!((entries[0]["removed_declined"].as_u64(), entries[1]["removed_declined"].as_u64()), (Some(0), Some(1)));
    let text = run(&["log", target.as_str(), "--verify"]).ok().stdout;
    assert!(text.contains(" (1 removed as declined)\n") && text.contains("chain intact: 2 entries"), "{text}");
}

#[test]
fn the_signed_manifest_records_the_decisions_and_status_shows_them() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("source");
    repository(&source);
    let (usb1, usb2, target) = (scratch.path("usb1"), scratch.path("usb2"), scratch.path("target"));
    export(&source, &usb1, &key, "av", 1);
    run(&["import", usb1.as_str(), target.as_str(), "--trust", public.as_str(), "-q"]).ok();
    let held = policy(&scratch, "held.toml", "");
    let args = ["export", source.as_str(), usb2.as_str(), "--key", key.as_str(), "--repository", "av"];
    let out = run(&[&args[..], &["--sequence", "2", "--layout", "tree", "--policy", held.as_str()]].concat()).ok();
    assert!(out.stdout.contains("held files are not in this snapshot: an import removes them"), "{}", out.stdout);
    let snapshot = usb2.join("ferry/av/2");
    let manifest = std::fs::read_to_string(snapshot.join("manifest")).unwrap();
    assert!(manifest.starts_with("ferry manifest v3\n") && manifest.contains("\nbase: none\n"), "{manifest}");
    for line in [
        "policy: 4\n",
        "\nscope full\n",
        "\nheld declined toolbar/toolbar.bin\n",
        "\nheld eula-not-accepted engine/engine.bin\n",
        "\nheld undefined misc/readme.txt\n",
        " a bases/av-1.dat\n",
        " u beta/feature.bin\n",
    ] {
        assert!(manifest.contains(line), "{line:?} not in\n{manifest}");
    }
    // A v3 manifest with only the policy section verifies like any other.
    run(&["verify", snapshot.as_str(), "--trust", public.as_str(), "-q"]).ok();
    let out = run(&["import", usb2.as_str(), target.as_str(), "--trust", public.as_str()]).ok();
    assert!(out.stdout.contains("3 removed (1 removed as declined)"), "{}", out.stdout);
    let out = run(&["status", target.as_str(), "--json"]).ok();
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let expected = serde_json::json!({
        "scope": "full",
        "covers": [],
        "approved": 3,
        "undefined": 1,
        "declined": ["toolbar/toolbar.bin"],
        "held": ["engine/engine.bin: eula-not-accepted", "misc/readme.txt: undefined"],
    });
    assert_eq!(status["policy"], expected, "{status}");
    let text = run(&["status", target.as_str()]).ok().stdout;
    assert!(text.contains("policy: full snapshot; 3 approved, 1 undefined; 1 declined, 2 held"), "{text}");
}

#[test]
fn a_bad_policy_is_refused_before_anything_is_written() {
    let scratch = Scratch::new();
    let (key, _) = key_pair(&scratch);
    let source = scratch.path("source");
    repository(&source);
    let bad = scratch.path("bad.toml");
    for (text, problem) in [
        ("version = 2\n", "version 2 is not supported"),
        ("version = 1\n[[component]]\nname = \"x\"\npaths = [\"a\"]\nstatus = \"maybe\"\n", "unknown variant `maybe`"),
        ("version = 1\n[[component]]\nname = \"x\"\npaths = [\"a[\"]\n", "pattern `a[`"),
        ("version = 1\nshipundefined = true\n", "unknown field `shipundefined`"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let usb = scratch.path("usb");
        let args = ["export", source.as_str(), usb.as_str(), "--key", key.as_str(), "--policy", bad.as_str()];
        let refused = run(&args).expect_code(2);
        let first = refused.stderr.lines().next().unwrap_or_default().to_owned();
        assert!(first.contains(&format!("policy `{bad}`")) && first.contains(problem), "{text}: {}", refused.stderr);
        assert!(!usb.exists(), "{text}: export wrote to the drive");
        let checked = run(&["policy", "check", source.as_str(), "--policy", bad.as_str()]).expect_code(2);
        assert!(checked.stderr.contains(problem), "{}", checked.stderr);
    }
}

#[test]
fn a_delta_exported_with_a_policy_records_both_sections() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("source");
    repository(&source);
    let (usb1, usb2, target, ledger) =
        (scratch.path("usb1"), scratch.path("usb2"), scratch.path("target"), scratch.path("ledger"));
    let base = export_with(&source, &usb1, &key, "av", 1, &["--layout", "tree", "--ledger", ledger.as_str()]);
    run(&["import", usb1.as_str(), target.as_str(), "--trust", public.as_str(), "-q"]).ok();
    let accepted =
        policy(&scratch, "accepted.toml", r#"eula_accepted = { by = "j.smith", at = 2026-12-01T10:00:00Z }"#);
    let since = base.join("manifest");
    let options =
        ["--layout", "tree", "--ledger", ledger.as_str(), "--since", since.as_str(), "--policy", accepted.as_str()];
    let snapshot = export_with(&source, &usb2, &key, "av", 2, &options);
    let manifest = manifest_text(&snapshot);
    assert!(!manifest.contains("\nbase: none\n") && manifest.contains("\npolicy: 3\n"), "{manifest}");
    assert!(manifest.contains(" ba bases/av-1.dat\n") && manifest.contains("\nheld declined toolbar/toolbar.bin\n"));
    // misc (undefined, held) is kept from the base the receipt names.
    assert!(manifest.contains(" b misc/readme.txt\n") && manifest.contains("\nheld undefined misc/readme.txt\n"));
    let out = run(&["import", usb2.as_str(), target.as_str(), "--trust", public.as_str(), "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((report["removed"].as_u64(), report["removed_declined"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!(std::fs::read(target.join("misc/readme.txt")).unwrap(), b"readme\n");
    let status: serde_json::Value =
        serde_json::from_str(&run(&["status", target.as_str(), "--json"]).ok().stdout).unwrap();
    assert_eq!(status["policy"]["declined"], serde_json::json!(["toolbar/toolbar.bin"]), "{status}");
}

/// policy-v1 §6 PS6: an update held back stays installed, byte for byte,
/// until the policy ships it; declined ones are removed; a site that does
/// not hold the snapshot kept from is refused with nothing changed.
#[test]
fn held_updates_stay_installed_until_they_ship() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("source");
    repository(&source);
    let ledger = scratch.path("ledger");
    let (usb1, usb2, usb3) = (scratch.path("usb1"), scratch.path("usb2"), scratch.path("usb3"));
    let (site, other) = (scratch.path("site"), scratch.path("other"));
    let import = |usb: &Utf8Path, target: &Utf8Path| {
        let out = run(&["import", usb.as_str(), target.as_str(), "--trust", public.as_str(), "--json"]).ok();
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()
    };
    export_with(&source, &usb1, &key, "av", 1, &["--ledger", ledger.as_str()]);
    import(&usb1, &site);
    import(&usb1, &other);
    let installed = served_tree(&site);

    // New versions of the engine (licence not accepted) and of misc
    // (undefined): held, so the site keeps the versions it has.
    write(&source.join("engine/engine.bin"), b"engine 3\n");
    write(&source.join("misc/readme.txt"), b"readme 2\n");
    write(&source.join("bases/av-1.dat"), b"bases one, updated\n");
    let held = policy(&scratch, "held.toml", "");
    let args = ["export", source.as_str(), usb2.as_str(), "--key", key.as_str(), "--repository", "av"];
    let out =
        run(&[&args[..], &["--sequence", "2", "--ledger", ledger.as_str(), "--policy", held.as_str()]].concat()).ok();
    assert!(out.stdout.contains("kept: 2 files held or not covered stay as installed"), "{}", out.stdout);
    let manifest = manifest_text(&usb2.join("ferry/av/2"));
    assert!(!manifest.contains("\nbase: none\n"), "{manifest}");
    for line in [" b engine/engine.bin\n", " b misc/readme.txt\n", "\nheld eula-not-accepted engine/engine.bin\n"] {
        assert!(manifest.contains(line), "{line:?} not in\n{manifest}");
    }
    let listed = |path: &str| manifest.lines().any(|l| l.starts_with("file ") && l.ends_with(&format!(" {path}")));
    assert!(!listed("toolbar/toolbar.bin"), "a declined file is never kept:\n{manifest}");
    let report = import(&usb2, &site);
    assert_eq!((report["removed"].as_u64(), report["removed_declined"].as_u64()), (Some(1), Some(1)), "{report}");
    let now = served_tree(&site);
    for path in ["engine/engine.bin", "misc/readme.txt"] {
        assert_eq!(now.get(path), installed.get(path), "{path} changed");
    }
    assert!(!now.contains_key("toolbar/toolbar.bin") && now["bases/av-1.dat"] != installed["bases/av-1.dat"]);

    // Accepted later: the engine ships (misc is still held and kept).
    let accepted =
        policy(&scratch, "accepted.toml", r#"eula_accepted = { by = "j.smith", at = 2026-12-01T10:00:00Z }"#);
    export_with(&source, &usb3, &key, "av", 3, &["--ledger", ledger.as_str(), "--policy", accepted.as_str()]);
    import(&usb3, &site);
    assert_eq!(std::fs::read(site.join("engine/engine.bin")).unwrap(), b"engine 3\n");
    assert_eq!(std::fs::read(site.join("misc/readme.txt")).unwrap(), b"readme\n");

    // A site still at sequence 1 does not hold sequence 2, kept from: refused, unchanged.
    let before = tree_state_but_journal(&other);
    let refused = run(&["import", usb3.as_str(), other.as_str(), "--trust", public.as_str()]).expect_code(3);
    assert!(refused.stderr.contains("refusing delta") && refused.stderr.contains("--since"), "{}", refused.stderr);
    assert_tree_unchanged(&before, &tree_state_but_journal(&other), "the site on another base");
    // --standalone keeps nothing: it imports anywhere, a new site included.
    let usb4 = scratch.path("usb4");
    let standalone = ["--ledger", ledger.as_str(), "--policy", accepted.as_str(), "--standalone"];
    let snapshot = export_with(&source, &usb4, &key, "av", 4, &standalone);
    assert!(std::fs::read_to_string(snapshot.join("manifest")).unwrap().contains("\nbase: none\n"));
    import(&usb4, &scratch.path("new-site"));
    assert!(!scratch.path("new-site/misc").exists());
}

/// policy-v1 §6 PS6: one snapshot cannot keep a held file at two sites
/// holding different versions of it; the export is refused, nothing written.
#[test]
fn sites_holding_different_versions_of_a_held_file_are_refused() {
    let scratch = Scratch::new();
    let (key, _) = key_pair(&scratch);
    let source = scratch.path("source");
    repository(&source);
    let ledger = scratch.path("ledger");
    let first = export_with(&source, &scratch.path("usb1"), &key, "av", 1, &["--ledger", ledger.as_str()]);
    write(&source.join("misc/readme.txt"), b"readme 2\n");
    let second = export_with(&source, &scratch.path("usb2"), &key, "av", 2, &["--ledger", ledger.as_str()]);
    let held = policy(&scratch, "held.toml", "");
    let usb3 = scratch.path("usb3");
    let (a, b) = (first.join("manifest"), second.join("manifest"));
    let args = ["export", source.as_str(), usb3.as_str(), "--key", key.as_str(), "--ledger", ledger.as_str()];
    let options = ["--repository", "av", "--policy", held.as_str(), "--since", a.as_str(), "--since", b.as_str()];
    let refused = run(&[&args[..], &options[..]].concat()).expect_code(2);
    assert!(refused.stderr.contains("`misc/readme.txt` is held or not covered"), "{}", refused.stderr);
    assert!(refused.stderr.contains("hint: export for each site separately"), "{}", refused.stderr);
    assert!(!usb3.join("ferry/av").exists() || std::fs::read_dir(usb3.join("ferry/av")).unwrap().next().is_none());
}

/// The manifest of a snapshot folder; one naming bases is stored
/// compressed (formats/manifest-v3.md §7).
fn manifest_text(folder: &camino::Utf8Path) -> String {
    let dir = ferry::beneath::Dir::root(folder).unwrap();
    let (_, bytes) = ferry::media::manifest_file::read(&dir).unwrap().expect("a manifest");
    String::from_utf8(bytes).unwrap()
}
