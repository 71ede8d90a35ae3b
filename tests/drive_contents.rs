//! Several snapshots on one drive: `ferry list`, `import --sequence`,
//! `export --prune`, and the `SHA256SUMS` an auditor checks with coreutils.

mod support;

use camino::Utf8Path;
use support::*;

struct Drive {
    scratch: Scratch,
    key: camino::Utf8PathBuf,
    public: camino::Utf8PathBuf,
    source: camino::Utf8PathBuf,
    media: camino::Utf8PathBuf,
}

impl Drive {
    fn new() -> Self {
        let scratch = Scratch::new();
        let (key, public) = key_pair(&scratch);
        let source = scratch.path("av");
        small_repository(&source);
        let media = scratch.path("media");
        Drive { key, public, source, media, scratch }
    }

    /// Exports sequence `n` of the source, changed a little each time.
    fn export(&self, repository: &str, n: u64, options: &[&str]) -> camino::Utf8PathBuf {
        write(&self.source.join("bases/counter.txt"), format!("{n}\n").as_bytes());
        export_with(&self.source, &self.media, &self.key, repository, n, options)
    }
}

fn sequences_on(media: &Utf8Path, repository: &str) -> Vec<u64> {
    let mut found: Vec<u64> = std::fs::read_dir(media.join("ferry").join(repository))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    found.sort();
    found
}

#[test]
fn list_shows_every_snapshot_and_checks_signatures_only_with_trust() {
    let d = Drive::new();
    d.export("av", 1, &[]);
    d.export("av", 2, &["--layout", "tree"]);
    d.export("patches", 7, &[]);
    // An unfinished export: a folder without a signature.
    std::fs::create_dir_all(d.media.join("ferry/av/3/volumes")).unwrap();

    let unchecked = run(&["list", d.media.as_str()]).ok();
    assert!(unchecked.stdout.contains("av 1 [unchecked]"), "{}", unchecked.stdout);
    assert!(unchecked.stdout.contains("av 3 [incomplete]"), "{}", unchecked.stdout);

    let listed = run(&["--json", "list", d.media.as_str(), "--trust", d.public.as_str()]).ok();
    let report: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let rows: Vec<(String, u64, String, String)> = report["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["repository"].as_str().unwrap().to_owned(),
                s["sequence"].as_u64().unwrap(),
                s["status"].as_str().unwrap().to_owned(),
                s["layout"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let expected = [("av", 1, "trusted", "tar"), ("av", 2, "trusted", "tree"), ("av", 3, "incomplete", "-")]
        .iter()
        .chain(&[("patches", 7, "trusted", "tar")])
        .map(|(r, n, s, l)| (r.to_string(), *n, s.to_string(), l.to_string()))
        .collect::<Vec<_>>();
    assert_eq!(rows, expected);

    // Another key's trust store: every signed snapshot is refused, none hidden.
    let other = d.scratch.path("other");
    keygen(&other);
    let refused = run(&["list", d.media.as_str(), "--trust", other.with_extension("pub").as_str()]).ok();
    assert_eq!(refused.stdout.matches("[refused]").count(), 3, "{}", refused.stdout);
}

#[test]
fn import_takes_the_newest_of_the_repository_or_the_sequence_asked_for() {
    let d = Drive::new();
    for n in 1..=3 {
        d.export("av", n, &[]);
    }
    d.export("patches", 9, &[]);
    let target = d.scratch.path("target");
    let trust = d.public.as_str();
    // Two repositories on the drive: the operator must say which.
    let ambiguous = run(&["import", d.media.as_str(), target.as_str(), "--trust", trust]).expect_code(2);
    assert!(ambiguous.stderr.contains("several repositories"), "{}", ambiguous.stderr);
    assert!(!target.exists() || served_tree(&target).is_empty());

    run(&["import", d.media.as_str(), target.as_str(), "--trust", trust, "--repository", "av", "--sequence", "2"]).ok();
    assert_eq!(std::fs::read_to_string(target.join("bases/counter.txt")).unwrap(), "2\n");
    // Without --sequence: the newest of the installed repository.
    run(&["import", d.media.as_str(), target.as_str(), "--trust", trust]).ok();
    assert_eq!(std::fs::read_to_string(target.join("bases/counter.txt")).unwrap(), "3\n");
    // A sequence that is not on the drive is named; nothing changes.
    let before = tree_state_but_journal(&target);
    let missing =
        run(&["import", d.media.as_str(), target.as_str(), "--trust", trust, "--sequence", "8"]).expect_code(2);
    assert!(missing.stderr.contains("no trusted snapshot with sequence 8"), "{}", missing.stderr);
    // An older sequence asked for by number is still a rollback: refused.
    let older = run(&["import", d.media.as_str(), target.as_str(), "--trust", trust, "--sequence", "1"]).expect_code(3);
    assert!(older.stderr.contains("sequence 1"), "{}", older.stderr);
    assert_eq!(tree_state_but_journal(&target), before);
    assert_eq!(last_journal_action(&target.join(".ferry")), "refusal", "the refusal is journaled");
}

#[test]
fn prune_keeps_the_newest_snapshots_of_one_repository_only() {
    let d = Drive::new();
    for n in 1..=4 {
        d.export("av", n, &[]);
    }
    d.export("patches", 1, &[]);
    // An export killed early: its folder holds ferry's `unfinished` note.
    std::fs::create_dir_all(d.media.join("ferry/av/3000/volumes")).unwrap();
    std::fs::write(d.media.join("ferry/av/3000/unfinished"), b"ferry unfinished export v1\n").unwrap();
    let report = run(&["export", d.source.as_str(), d.media.as_str(), "--key", d.key.as_str(), "--repository", "av"])
        .ok()
        .stdout;
    assert!(!report.contains("pruned"), "pruned without --prune: {report}");
    let all = sequences_on(&d.media, "av");
    assert_eq!(all.len(), 6, "{all:?}");
    let newest = *all.last().unwrap();

    let next = (newest + 1).to_string();
    let args =
        ["export", d.source.as_str(), d.media.as_str(), "--key", d.key.as_str(), "--repository", "av", "--sequence"];
    let pruned = run(&[&args[..], &[next.as_str(), "--prune", "2"]].concat()).ok();
    assert!(pruned.stdout.contains("pruned"), "{}", pruned.stdout);
    // The two newest complete ones stay (the unfinished 3000 goes too);
    // the other repository is untouched.
    assert_eq!(sequences_on(&d.media, "av"), vec![newest, newest + 1]);
    assert_eq!(sequences_on(&d.media, "patches"), vec![1]);
    run(&["verify", d.media.as_str(), "--trust", d.public.as_str()]).ok();
}

#[test]
fn sha256sums_check_with_coreutils_alone_in_both_layouts() {
    let d = Drive::new();
    for (n, layout) in [(1, "tar"), (2, "tree")] {
        let snapshot = d.export("av", n, &["--layout", layout]);
        let check = std::process::Command::new("sha256sum")
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(&snapshot)
            .output()
            .expect("sha256sum (coreutils) is needed");
        let stdout = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "{layout}: {stdout}{}", String::from_utf8_lossy(&check.stderr));
        // Every payload file (or volume) and the manifest are listed.
        let listed = stdout.lines().count();
        let manifest = std::fs::read_to_string(snapshot.join("manifest")).unwrap();
        let files = manifest.lines().filter(|l| l.starts_with("file ")).count();
        let expected = if layout == "tree" { files } else { 1 } + 1;
        assert_eq!(listed, expected, "{layout}: {stdout}");
        // A changed byte is caught by the same check.
        let victim =
            if layout == "tree" { snapshot.join("payload/bases/av-2.dat") } else { snapshot.join("volumes/0001.tar") };
        let mut bytes = std::fs::read(&victim).unwrap();
        bytes[600] ^= 1;
        std::fs::write(&victim, bytes).unwrap();
        let check = std::process::Command::new("sha256sum")
            .args(["--check", "--quiet", "SHA256SUMS"])
            .current_dir(&snapshot)
            .output()
            .unwrap();
        assert!(!check.status.success(), "{layout}: sha256sum missed a flipped bit");
    }
}
