//! Freeze and fast-forward protection (formats/threat-model.md §F,
//! formats/target-state-v1.md §9): snapshots created before the installed
//! one, expired snapshots and sequence jumps beyond the bound are refused
//! with exit 3 and the served tree unchanged; the overrides need a reason
//! and are journaled. Real folders, the real binary.

mod support;
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeMap;
use support::*;

/// 2025-12-01T12:00:00Z, a fixed creation time.
const DAY_1: u64 = 1_764_590_400;
const DAY: u64 = 86_400;

struct Site {
    _scratch: Scratch,
    root: Utf8PathBuf,
    key: Utf8PathBuf,
    public: Utf8PathBuf,
    target: Utf8PathBuf,
}

impl Site {
    fn new() -> Self {
        let scratch = Scratch::new();
        let root = scratch.root.clone();
        let (key, public) = key_pair(&scratch);
        small_repository(&root.join("repo"));
        Site { target: root.join("target"), _scratch: scratch, root, key, public }
    }

    /// Exports the repository as `sequence`, created at `created` (Unix
    /// seconds), onto a drive of its own; returns the drive.
    fn export(&self, sequence: u64, created: u64, extra: &[&str]) -> Utf8PathBuf {
        let drive = self.root.join(format!("drive-{sequence}-{created}"));
        let (sequence, epoch) = (sequence.to_string(), created.to_string());
        let source = self.root.join("repo");
        let mut args = vec!["export", source.as_str(), drive.as_str(), "--key", self.key.as_str()];
        args.extend(["--repository", "av", "--sequence", &sequence, "-q"]);
        args.extend_from_slice(extra);
        Run::from(ferry().args(&args).env("SOURCE_DATE_EPOCH", &epoch).output().unwrap()).ok();
        drive
    }

    fn import(&self, drive: &Utf8Path, extra: &[&str]) -> Run {
        let mut args = vec!["import", drive.as_str(), self.target.as_str(), "--trust", self.public.as_str()];
        args.extend_from_slice(extra);
        Run::from(ferry().args(&args).env("USER", "tester").output().unwrap())
    }

    /// The journal's entries, its chain checked.
    fn journal(&self) -> Vec<ferry::audit::Entry> {
        let bytes = std::fs::read(self.target.join(".ferry/audit")).unwrap();
        ferry::audit::Journal::decode(Some(&bytes), Utf8Path::new("audit")).unwrap().entries().to_vec()
    }

    /// What devices see, and the state folder without the journal.
    fn observed(&self) -> BTreeMap<String, String> {
        tree_state(&self.target).into_iter().filter(|(path, _)| path != ".ferry/audit").collect()
    }
}

/// The action and the reason of a journal entry.
fn action_and_reason(entry: &ferry::audit::Entry) -> (String, String) {
    (entry.record.action.as_str().to_owned(), entry.record.reason.clone().unwrap_or_default())
}

/// Refused with exit 3, the message naming `words`.
fn assert_refused(run: Run, words: &[&str]) {
    let run = run.expect_code(3);
    for word in words {
        assert!(run.stderr.contains(word), "`{word}` missing from:\n{}", run.stderr);
    }
}

#[test]
fn a_snapshot_created_before_the_installed_one_is_refused_naming_both_times() {
    let site = Site::new();
    site.import(&site.export(1, DAY_1 + DAY, &["--expires", "never"]), &[]).ok();
    let older = site.export(2, DAY_1, &["--expires", "never"]);
    let (before, journal) = (site.observed(), site.journal());
    let run = site.import(&older, &[]);
    assert_refused(
        run,
        &["2025-12-01T12:00:00Z", "before the installed snapshot of sequence 1", "2025-12-02T12:00:00Z"],
    );
    assert_tree_unchanged(&before, &site.observed(), "a target refusing an older snapshot");
    let after = site.journal();
    assert_eq!(after.len(), journal.len() + 1, "{after:?}");
    assert_eq!(action_and_reason(&after[journal.len()]).0, "refusal");
    // No override exists for this one: --allow-expired does not lift it.
    let run = site.import(&older, &["--allow-expired", "--reason", "try"]);
    assert_refused(run, &["before the installed snapshot"]);
}

#[test]
fn an_expired_snapshot_needs_allow_expired_and_a_reason_which_are_journaled() {
    let site = Site::new();
    site.import(&site.export(1, DAY_1, &["--expires", "never"]), &[]).ok();
    let expired = site.export(2, DAY_1 + DAY, &["--expires", "1d"]);
    let before = site.observed();
    let refused = site.import(&expired, &[]);
    assert_refused(refused, &["expired at 2025-12-03T12:00:00Z", "--allow-expired --reason"]);
    assert_tree_unchanged(&before, &site.observed(), "a target refusing an expired snapshot");
    // The override without a reason is a usage error that writes nothing.
    let journal = site.journal();
    let usage = site.import(&expired, &["--allow-expired"]).expect_code(2);
    assert!(usage.stderr.contains("--reason"), "{}", usage.stderr);
    assert_eq!(site.journal(), journal, "a usage error journals nothing");

    site.import(&expired, &["--allow-expired", "--reason", "vendor late; approved by J. Doe"]).ok();
    let journal = site.journal();
    let (last_two, n) = (&journal[journal.len() - 2..], journal.len());
    assert_eq!(action_and_reason(&last_two[0]).0, "override", "{journal:?}");
    let (_, reason) = action_and_reason(&last_two[0]);
    assert_eq!(reason, "allow-expired (expired at 2025-12-03T12:00:00Z): vendor late; approved by J. Doe");
    assert_eq!(last_two[0].record.operator.as_deref(), Some("tester"));
    assert_eq!(action_and_reason(&last_two[1]).0, "import", "{journal:?}");
    let log = run(&["log", site.target.as_str(), "--verify"]).ok();
    assert!(log.stdout.contains(&format!("chain intact: {n} entries")), "{}", log.stdout);
}

#[test]
fn a_sequence_jump_beyond_the_bound_needs_allow_jump_and_a_reason() {
    let site = Site::new();
    site.import(&site.export(1_000, DAY_1, &["--expires", "never"]), &[]).ok();
    // Within a year of seconds: accepted.
    let near = site.export(1_000 + 300 * DAY, DAY_1 + DAY, &["--expires", "never"]);
    site.import(&near, &[]).ok();
    let far = site.export(1_000 + 300 * DAY + 366 * DAY, DAY_1 + 2 * DAY, &["--expires", "never"]);
    let before = site.observed();
    let run = site.import(&far, &[]);
    assert_refused(run, &["366d 0h ahead", "bound of 365d 0h", "--allow-jump --reason"]);
    assert_tree_unchanged(&before, &site.observed(), "a target refusing a jump");
    // A larger bound is the operator's decision.
    site.import(&far, &["--max-jump", "400d"]).ok();
    let further = site.export(1_000 + 300 * DAY + 800 * DAY, DAY_1 + 3 * DAY, &["--expires", "never"]);
    site.import(&further, &["--allow-jump"]).expect_code(2);
    site.import(&further, &["--allow-jump", "--reason", "renumbered"]).ok();
    let journal = site.journal();
    let (action, reason) = action_and_reason(&journal[journal.len() - 2]);
    assert_eq!(action, "override", "{journal:?}");
    assert!(reason.starts_with("allow-jump (434d 0h ahead") && reason.ends_with(": renumbered"), "{reason}");
}

#[test]
fn a_first_clock_numbered_export_after_hand_numbered_ones_names_the_cause() {
    let site = Site::new();
    site.import(&site.export(7, DAY_1, &["--expires", "never"]), &[]).ok();
    let clock_numbered = site.export(DAY_1 + DAY, DAY_1 + DAY, &["--expires", "never"]);
    assert_refused(site.import(&clock_numbered, &[]), &["numbered by hand (--sequence)", "--allow-jump --reason"]);
    site.import(&clock_numbered, &["--allow-jump", "--reason", "numbered by the clock from now on"]).ok();
}

#[test]
fn a_refused_first_import_writes_nothing() {
    let site = Site::new();
    let expired = site.export(1, DAY_1, &["--expires", "1d"]);
    assert_refused(site.import(&expired, &[]), &["expired"]);
    assert!(!site.target.exists(), "a refused first import left {}", site.target);
}

#[test]
fn the_library_refuses_an_override_without_a_reason() {
    let site = Site::new();
    let drive = site.export(1, DAY_1, &["--expires", "never"]);
    let trust = ferry::signing::TrustStore::load(std::slice::from_ref(&site.public)).unwrap();
    let target = ferry::backend::open(site.target.as_str(), &ferry::backend::BackendOptions::default()).unwrap();
    let mut options = ferry::ops::import::ImportOptions::new(vec![drive], jiff::Timestamp::now());
    options.allow_jump = true;
    let error = ferry::ops::import::import(target.as_ref(), &options, &trust, &ferry::report::Silent).unwrap_err();
    assert!(matches!(&error, ferry::Error::InvalidArgument(m) if m.contains("--reason")), "{error}");
    assert!(!site.target.exists());
}
