//! The audit journal as the event path (formats/audit-journal-v1.md):
//! every import, rollback, override and refusal is chained in
//! `.ferry/audit`, which survives whole-tree switches and rollbacks;
//! `ferry log --verify` names the first broken link of an edited, deleted,
//! reordered or truncated journal and exits 3; a broken chain is never
//! extended; a plain `history` log of earlier versions is kept and bound
//! in; concurrent imports keep one unbroken chain. Real folders, the real
//! binary.

mod support;
use camino::{Utf8Path, Utf8PathBuf};
use support::*;

struct Site {
    _scratch: Scratch,
    public: Utf8PathBuf,
    target: Utf8PathBuf,
    drive1: Utf8PathBuf,
    drive2: Utf8PathBuf,
}

impl Site {
    /// Two snapshots of repository `av` on two drives, nothing installed.
    fn new() -> Self {
        let scratch = Scratch::new();
        let (key, public) = key_pair(&scratch);
        let (source1, source2) = (scratch.path("v1"), scratch.path("v2"));
        versioned_repository(&source1, 1);
        versioned_repository(&source2, 2);
        let (drive1, drive2) = (scratch.path("drive1"), scratch.path("drive2"));
        export(&source1, &drive1, &key, "av", 1);
        export(&source2, &drive2, &key, "av", 2);
        Site { target: scratch.path("target"), public, drive1, drive2, _scratch: scratch }
    }

    fn import(&self, drive: &Utf8Path, extra: &[&str]) -> Run {
        let mut args = vec!["import", drive.as_str(), self.target.as_str(), "--trust", self.public.as_str(), "-q"];
        args.extend_from_slice(extra);
        Run::from(ferry().args(&args).env("USER", "alice").output().unwrap())
    }

    fn journal_path(&self) -> Utf8PathBuf {
        self.target.join(".ferry/audit")
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.journal_path()).unwrap().lines().map(str::to_owned).collect()
    }

    fn write_lines(&self, lines: &[String]) {
        std::fs::write(self.journal_path(), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    }

    fn log(&self, extra: &[&str]) -> Run {
        let mut args = vec!["log", self.target.as_str()];
        args.extend_from_slice(extra);
        run(&args)
    }

    fn log_json(&self) -> serde_json::Value {
        let run = self.log(&["--json"]).ok();
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("log --json: {e}\n{}", run.stdout))
    }

    /// Imports 1, imports 2, rolls back (with a reason), is refused 1 after
    /// 2 is installed again: five entries.
    fn with_history(self) -> Self {
        self.import(&self.drive1, &[]).ok();
        self.import(&self.drive2, &[]).ok();
        run(&["rollback", self.target.as_str(), "--reason", "bases broke the scanner", "-q"]).ok();
        self.import(&self.drive2, &["--switch", "ordered"]).ok();
        self.import(&self.drive1, &[]).expect_code(3);
        self
    }
}

fn actions(log: &serde_json::Value) -> Vec<String> {
    log["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn every_event_is_chained_and_survives_tree_switches_and_rollbacks() {
    let site = Site::new().with_history();
    let log = site.log_json();
    assert_eq!(actions(&log), ["import", "import", "rollback", "import", "refusal"], "{log:#}");
    assert_eq!(log["intact"], true, "{log:#}");
    assert_eq!(log["broken"], serde_json::Value::Null);
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries[0]["sequence"], 1);
    assert_eq!(entries[0]["operator"], "alice");
    assert_eq!(entries[0]["signed_by"].as_array().unwrap().len(), 1);
    assert_eq!(entries[2]["reason"], "from sequence 2: bases broke the scanner");
    assert!(entries[4]["reason"].as_str().unwrap().starts_with("refusing rollback"), "{log:#}");
    // The refused snapshot is named by its manifest digest.
    assert_eq!(entries[4]["sequence"], 1);
    assert_eq!(entries[4]["snapshot_id"], entries[0]["snapshot_id"]);
    let verified = site.log(&["--verify"]).ok();
    assert!(verified.stdout.ends_with("chain intact: 5 entries\n"), "{}", verified.stdout);
}

#[test]
fn an_edited_entry_is_found_at_the_next_one_and_log_verify_exits_3() {
    let site = Site::new().with_history();
    let mut lines = site.lines();
    // Entry 2 is line 3; its reason is `-`: claim someone else did it.
    lines[2] = lines[2].replace(" alice ", " mallory ");
    site.write_lines(&lines);
    let run = site.log(&["--verify"]).expect_code(3);
    assert!(run.stdout.contains("line 4: entry 3 does not chain to entry 2"), "{}", run.stdout);
    assert!(run.stdout.contains("CHAIN BROKEN after entry 2"), "{}", run.stdout);
    // Without --verify the same report, exit 0.
    let plain = site.log(&[]).ok();
    assert!(plain.stdout.contains("CHAIN BROKEN"), "{}", plain.stdout);
    let log = site.log_json();
    assert_eq!((log["intact"].clone(), log["entries"].as_array().unwrap().len()), (false.into(), 2));
}

#[test]
fn a_deleted_entry_is_found() {
    let site = Site::new().with_history();
    let mut lines = site.lines();
    lines.remove(3);
    site.write_lines(&lines);
    let run = site.log(&["--verify"]).expect_code(3);
    assert!(run.stdout.contains("line 4: entry 4 where 3 was expected"), "{}", run.stdout);
}

#[test]
fn reordered_entries_are_found() {
    let site = Site::new().with_history();
    let mut lines = site.lines();
    lines.swap(2, 3);
    site.write_lines(&lines);
    let run = site.log(&["--verify"]).expect_code(3);
    assert!(run.stdout.contains("line 3: entry 3 where 2 was expected"), "{}", run.stdout);
}

#[test]
fn a_truncated_entry_is_found() {
    let site = Site::new().with_history();
    let text = std::fs::read_to_string(site.journal_path()).unwrap();
    std::fs::write(site.journal_path(), &text[..text.len() - 10]).unwrap();
    let run = site.log(&["--verify"]).expect_code(3);
    assert!(run.stdout.contains("line 6: truncated entry"), "{}", run.stdout);
}

#[test]
fn a_broken_chain_is_never_extended_and_nothing_is_installed() {
    let site = Site::new();
    site.import(&site.drive1, &[]).ok();
    let mut lines = site.lines();
    lines[1] = lines[1].replace(" import ", " rollback ");
    lines.push(lines[1].clone());
    site.write_lines(&lines);
    let journal = std::fs::read(site.journal_path()).unwrap();
    let served = served_tree(&site.target);
    for switch in ["tree", "ordered"] {
        let run = site.import(&site.drive2, &["--switch", switch]).expect_code(3);
        assert!(run.stderr.contains("audit") && run.stderr.contains("line 3"), "{switch}: {}", run.stderr);
        assert!(run.stderr.contains("hint: "), "{switch}: {}", run.stderr);
        assert_eq!(std::fs::read(site.journal_path()).unwrap(), journal, "{switch}: the journal was extended");
        assert_eq!(served_tree(&site.target), served, "{switch}: something was installed");
    }
    // Moved aside as the hint says, a new journal starts.
    std::fs::rename(site.journal_path(), site.target.join(".ferry/audit.broken")).unwrap();
    site.import(&site.drive2, &[]).ok();
    assert_eq!(actions(&site.log_json()), ["import"]);
}

#[test]
fn a_history_log_of_an_earlier_version_is_kept_and_bound_into_the_chain() {
    let site = Site::new();
    site.import(&site.drive1, &[]).ok();
    // What an earlier version left: a plain history log, no journal.
    std::fs::remove_file(site.journal_path()).unwrap();
    let old = "ferry history v1\n2026-11-23T13:04:10Z import 1 26f97d9c0acd signed-by 56475aa75463474c from /media/usb/ferry/av/1\n";
    std::fs::write(site.target.join(".ferry/history"), old).unwrap();
    site.import(&site.drive2, &["--switch", "tree"]).ok();
    assert_eq!(std::fs::read_to_string(site.target.join(".ferry/history")).unwrap(), old, "carried into the new tree");
    let log = site.log_json();
    assert_eq!(actions(&log), ["history", "import"], "{log:#}");
    assert_eq!(log["legacy_history"]["records"].as_array().unwrap().len(), 1, "{log:#}");
    assert_eq!(log["entries"][0]["snapshot_id"], log["legacy_history"]["sha256"]);
    assert_eq!(log["entries"][0]["reason"], "history kept as it was (1 records of `ferry history v1`)");
    // The rollback's tree gets it too; an edit of the old log is found.
    run(&["rollback", site.target.as_str(), "-q"]).ok();
    site.log(&["--verify"]).ok();
    std::fs::write(site.target.join(".ferry/history"), old.replace("import 1", "import 7")).unwrap();
    let run = site.log(&["--verify"]).expect_code(3);
    assert!(run.stdout.contains("does not have the SHA-256 that entry 1"), "{}", run.stdout);
}

#[test]
fn concurrent_imports_keep_one_unbroken_chain() {
    let site = Site::new();
    site.import(&site.drive1, &[]).ok();
    let children: Vec<_> = (0..6)
        .map(|i| {
            let drive = if i % 2 == 0 { &site.drive2 } else { &site.drive1 };
            ferry()
                .args(["import", drive.as_str(), site.target.as_str(), "--trust", site.public.as_str(), "--wait"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut installed, mut refused) = (0, 0);
    for child in children {
        let run = Run::from(child.wait_with_output().unwrap());
        match run.code {
            0 if run.stdout.contains("installed av sequence") => installed += 1,
            0 => {}
            3 => refused += 1,
            _ => panic!("exit {}\n{}\n{}", run.code, run.stdout, run.stderr),
        }
    }
    let log = site.log_json();
    assert_eq!(log["intact"], true, "{log:#}");
    let actions = actions(&log);
    assert_eq!(actions.len(), 1 + installed + refused, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "refusal").count(), refused, "{actions:?}");
    assert_eq!(installed, 1, "sequence 2 is installed once: {actions:?}");
    site.log(&["--verify"]).ok();
}

#[test]
fn log_of_a_folder_without_ferry_state_is_an_error() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("empty")).unwrap();
    let run = run(&["log", scratch.path("empty").as_str(), "--verify"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);
}
