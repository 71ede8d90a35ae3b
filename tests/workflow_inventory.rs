//! Only what is requested (issue 12): `export --only` and `--inventory`
//! carry the requested components and every index file; `ferry inventory`
//! derives an inventory from an update source (formats/inventory-v1.md).

mod support;

use camino::Utf8Path;
use support::*;

#[test]
fn only_requested_components_and_the_index_files_are_carried() {
    let scratch = Scratch::new();
    let (key, _) = key_pair(&scratch);
    let source = scratch.path("source");
    versioned_repository(&source, 1);
    let usb = scratch.path("usb");
    let only = ["--layout", "tree", "--only", "data/d1", "--only", "bases/*.dat", "--json"];
    let snapshot = export_with(&source, &usb, &key, "av", 1, &only);
    let expected = set(&[
        "bases/av-1.dat",
        "bases/av-2.dat",
        "bases/empty.dat",
        "data/d1/f01.dat",
        "data/d1/f05.dat",
        "data/d1/f09.dat",
        "data/d1/f13.dat",
        "data/d1/f17.dat",
        "index/master.xml",
    ]);
    assert_eq!(exported_files(&snapshot), expected);
    assert!(!snapshot.join("payload/modules").exists() && !snapshot.join("payload/empty-folder").exists());
    // The signed manifest says the snapshot is partial, and what it covers.
    let manifest = std::fs::read_to_string(snapshot.join("manifest")).unwrap();
    assert!(manifest.contains("\npolicy: 3\n"), "{manifest}");
    assert!(manifest.contains("\nscope partial\ncovers data/d1\ncovers bases/*.dat\n"), "{manifest}");
}

#[test]
fn status_says_the_installed_snapshot_is_partial() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("source");
    versioned_repository(&source, 1);
    let (usb, target) = (scratch.path("usb"), scratch.path("target"));
    export_with(&source, &usb, &key, "av", 1, &["--only", "bases"]);
    run(&["import", usb.as_str(), target.as_str(), "--trust", public.as_str(), "-q"]).ok();
    let out = run(&["status", target.as_str(), "--json"]).ok();
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let expected = serde_json::json!({
        "scope": "partial", "covers": ["bases"], "approved": 0, "undefined": 0, "declined": [], "held": [],
    });
    assert_eq!(status["policy"], expected, "{status}");
}

#[test]
fn an_inventory_from_an_update_source_drives_the_next_export() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("source");
    versioned_repository(&source, 1);
    let (usb1, usb2, target) = (scratch.path("usb1"), scratch.path("usb2"), scratch.path("target"));
    export(&source, &usb1, &key, "av", 1);
    run(&["import", usb1.as_str(), target.as_str(), "--trust", public.as_str(), "-q"]).ok();
    let inventory = scratch.path("inventory.txt");
    let out = run(&["inventory", target.as_str(), "--depth", "1", "--out", inventory.as_str(), "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["method"], "installed");
    let text = std::fs::read_to_string(&inventory).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, ["ferry inventory v1", "bases", "data", "modules"], "{text}");
    // The site uses only bases: carry only them (and the index).
    std::fs::write(&inventory, "ferry inventory v1\n# by hand\n\nbases\n").unwrap();
    versioned_repository(&source, 2);
    let snapshot = export_with(&source, &usb2, &key, "av", 2, &["--layout", "tree", "--inventory", inventory.as_str()]);
    let carried = exported_files(&snapshot);
    assert_eq!(
        carried,
        set(&[
            "bases/av-1.dat",
            "bases/av-2.dat",
            "bases/empty.dat",
            "bases/sub/ünïcødé naïve.bin",
            "index/master.xml"
        ])
    );
}

/// inventory-v1 §4: a partial snapshot keeps the components it does not
/// cover as the site holds them (kept from the previous export).
#[test]
fn a_partial_import_keeps_uncovered_components() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("source");
    versioned_repository(&source, 1);
    let (usb1, usb2, target, ledger) =
        (scratch.path("usb1"), scratch.path("usb2"), scratch.path("target"), scratch.path("ledger"));
    export_with(&source, &usb1, &key, "av", 1, &["--ledger", ledger.as_str()]);
    run(&["import", usb1.as_str(), target.as_str(), "--trust", public.as_str(), "-q"]).ok();
    let installed = served_tree(&target);
    versioned_repository(&source, 2);
    std::fs::remove_file(source.join("data/d3/f03.dat")).unwrap();
    let only = ["--layout", "tree", "--ledger", ledger.as_str(), "--only", "bases", "--json"];
    let snapshot = export_with(&source, &usb2, &key, "av", 2, &only);
    assert!(!exported_files(&snapshot).iter().any(|f| f.starts_with("data/")));
    let out = run(&["import", usb2.as_str(), target.as_str(), "--trust", public.as_str(), "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // Only the file the repository itself removed goes (policy-v1 §6 PS6).
    assert_eq!(report["removed"], 1, "{report}");
    let now = served_tree(&target);
    assert!(!now.contains_key("data/d3/f03.dat"));
    for (path, state) in installed.iter().filter(|(path, _)| *path != "data/d3/f03.dat") {
        if path.starts_with("data") || path.starts_with("modules") {
            assert_eq!(now.get(path), Some(state), "{path} not kept as installed");
        }
    }
    assert!(now["index/master.xml"] != installed["index/master.xml"], "the index files are carried");
}

#[test]
fn read_counts_only_files_devices_read() {
    let scratch = Scratch::new();
    let (key, public) = key_pair(&scratch);
    let source = scratch.path("source");
    versioned_repository(&source, 1);
    let (usb, target) = (scratch.path("usb"), scratch.path("target"));
    export(&source, &usb, &key, "av", 1);
    run(&["import", usb.as_str(), target.as_str(), "--trust", public.as_str(), "-q"]).ok();
    // A device reads one file.
    std::fs::read(target.join("data/d2/f06.dat")).unwrap();
    let out = run(&["inventory", target.as_str(), "--read", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["method"], "read");
    assert_eq!(report["patterns"], serde_json::json!(["data/d2"]), "{report}");
}

#[test]
fn bad_inventories_and_empty_requests_are_refused_before_anything_is_written() {
    let scratch = Scratch::new();
    let (key, _) = key_pair(&scratch);
    let source = scratch.path("source");
    versioned_repository(&source, 1);
    let usb = scratch.path("usb");
    let inventory = scratch.path("inventory.txt");
    for (text, problem) in [
        ("bases\n", "the first line is not `ferry inventory v1`"),
        ("ferry inventory v1\n# x\nbases[\n", "line 3: pattern `bases[`"),
        ("ferry inventory v1\nnothing-here\n", "no file of the source is requested"),
    ] {
        std::fs::write(&inventory, text).unwrap();
        let args = ["export", source.as_str(), usb.as_str(), "--key", key.as_str(), "--inventory", inventory.as_str()];
        let refused = run(&args).expect_code(2);
        assert!(refused.stderr.contains(problem), "{text}: {}", refused.stderr);
        assert!(list_snapshots(&usb).is_empty(), "{text}: a snapshot was written");
    }
    let refused = run(&["inventory", scratch.path("nothing").as_str()]);
    assert_ne!(refused.code, 0);
}

/// Complete snapshot folders on the drive.
fn list_snapshots(usb: &Utf8Path) -> Vec<String> {
    tree_state(usb).into_keys().filter(|k| k.ends_with("manifest.sig")).collect()
}
