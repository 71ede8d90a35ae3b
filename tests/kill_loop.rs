//! Kill loop (issue 5): `ferry import` is started again and again and killed
//! with SIGKILL after a random delay; after every kill the target must serve
//! exactly one complete snapshot (the old or the new one), `ferry status`
//! must agree with it, and where an ordered switch was interrupted in its
//! rename phase the next `ferry import` must finish it and leave nothing
//! behind.
//!
//! Three kinds of target: a folder with `--switch tree`, a folder with
//! `--switch ordered`, and the in-process FTP server (always ordered).
//!
//! The loop is seeded and repeatable in its choices (which snapshot comes
//! next, how long to wait before the kill): the seed is printed, and
//! `FERRY_KILL_SEED=N` replays it (where the kill lands still depends on the
//! machine's speed). `FERRY_KILL_LOOP=N` sets the iterations per kind
//! (default 20, for CI). The long run:
//!
//! ```text
//! FERRY_KILL_LOOP=200 cargo test --all-features --release --test kill_loop -- --nocapture
//! ```
//!
//! Each kind prints a summary line: iterations, where the kills landed
//! (before the switch, during the ordered switch's rename phase, after the
//! commit point, or after the import had already finished) and how many
//! target states were checked. No assertion depends on how long anything
//! takes: half the delays are drawn from 0 to a little more than the
//! duration of one import measured at the start, half from a window that
//! follows the commit point (moved later after a kill that landed before it,
//! earlier after one that landed past it).

mod ftp_support;
mod support;

use camino::{Utf8Path, Utf8PathBuf};
use ftp_support::{InProcess, PASSWORD, ServerConfig, content_tree};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

// ---------------------------------------------------------------------------
// Seeded choices
// ---------------------------------------------------------------------------

/// xorshift64*: tiny, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn iterations() -> usize {
    match std::env::var("FERRY_KILL_LOOP") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("FERRY_KILL_LOOP={text:?} is not a number")),
        Err(_) => 20,
    }
}

fn base_seed() -> u64 {
    match std::env::var("FERRY_KILL_SEED") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("FERRY_KILL_SEED={text:?} is not a number")),
        Err(_) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
            now.as_secs() ^ u64::from(now.subsec_nanos())
        }
    }
}

// ---------------------------------------------------------------------------
// Three versions of a repository
// ---------------------------------------------------------------------------

const VERSIONS: usize = 3;
const LARGE: usize = 4 * 1024 * 1024;

fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed * 7919 + i / 251) % 253) as u8).collect()
}

/// Version `v` (0, 1 or 2) of the repository. Between any two versions:
/// unchanged files, files changed in place (some keeping their size), a
/// large changed file, a folder of files only one version has (added and
/// removed), empty folders, a mode change, index files (`*.xml`) naming the
/// data of their version, and at least one file that becomes a folder or
/// folder that becomes a file:
/// `swap/thing` is a folder in version 1 and a file otherwise,
/// `swap/other` is a folder in version 0 and a file otherwise.
fn version(root: &Utf8Path, v: usize) {
    for i in 0..30 {
        put(&root.join(format!("common/c{i:02}.dat")), &pattern(i, 200 + i * 50), false);
    }
    let mut listed = Vec::new();
    for i in 0..120 {
        let path = format!("data/d{}/f{i:03}.dat", i % 6);
        let bytes = match i % 3 {
            0 => pattern(100 + i, 700),
            1 => pattern(100 + i + 1000 * v, 700),
            _ => pattern(100 + i + 1000 * v, 300 + 100 * v + i * 40),
        };
        put(&root.join(&path), &bytes, false);
        listed.push(path);
    }
    for i in 0..8 {
        let path = format!("gen{v}/g{i}.dat");
        put(&root.join(&path), &pattern(5000 + 10 * v + i, 900 + i * 10), false);
        listed.push(path);
    }
    put(&root.join("big/large.bin"), &pseudo_random_bytes(v as u64 + 1000, LARGE), false);
    std::fs::create_dir_all(root.join(format!("empty-v{v}/inner"))).unwrap();
    put(&root.join("modules/tool.sh"), b"#!/bin/sh\necho tool\n", v != 2);

    let names: String = listed.iter().map(|p| format!("  <file name=\"{p}\"/>\n")).collect();
    put(&root.join("index/master.xml"), format!("<index version=\"{v}\">\n{names}</index>\n").as_bytes(), false);
    put(&root.join("index/small.xml"), format!("<small version=\"{v}\"/>\n").as_bytes(), false);
    put(&root.join("data/catalog.xml"), format!("<catalog version=\"{v}\"/>\n").as_bytes(), false);

    if v == 1 {
        put(&root.join("swap/thing/inner.dat"), b"thing is a folder\n", false);
    } else {
        put(&root.join("swap/thing"), format!("thing is a file in version {v}\n").as_bytes(), false);
    }
    if v == 0 {
        put(&root.join("swap/other/x.dat"), b"other is a folder\n", false);
        put(&root.join("swap/other/sub/y.dat"), b"deeper\n", false);
    } else {
        put(&root.join("swap/other"), format!("other is a file in version {v}\n").as_bytes(), false);
    }
}

fn is_index(path: &str) -> bool {
    path.ends_with(".xml") || path.starts_with("index/")
}

// ---------------------------------------------------------------------------
// Old, new, or a mix (after tests/crash.rs)
// ---------------------------------------------------------------------------

/// The promise of the ordered switch in its rename phase: each entry is
/// the old or the new one, and once any new index file is served, every
/// data file of the new snapshot is in place.
fn check_ordered_mix(served: &Tree, from: &Tree, to: &Tree) -> Result<(), String> {
    if let Served::Mixed { torn, .. } = classify(served, from, to)
        && !torn.is_empty()
    {
        return Err(format!("entries that are neither old nor new:\n  {}", torn.join("\n  ")));
    }
    let new_index = to
        .iter()
        .find(|(p, v)| is_index(p) && v.starts_with("file") && from.get(*p) != Some(*v) && served.get(*p) == Some(*v));
    if let Some((index, _)) = new_index {
        let missing: Vec<&String> = to
            .iter()
            .filter(|(p, v)| v.starts_with("file") && !is_index(p) && served.get(*p) != Some(*v))
            .map(|(p, _)| p)
            .collect();
        if !missing.is_empty() {
            return Err(format!("the new index {index} is served but these data files are not new: {missing:?}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The loop
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TreeSwitch,
    OrderedSwitch,
    Ftp,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::TreeSwitch => "folder, --switch tree",
            Kind::OrderedSwitch => "folder, --switch ordered",
            Kind::Ftp => "FTP (in-process server, ordered)",
        }
    }

    fn ordered(self) -> bool {
        self != Kind::TreeSwitch
    }
}

#[derive(Default)]
struct Counts {
    iterations: usize,
    /// The import had finished (exit 0) before the kill.
    finished: usize,
    /// Killed before the commit point with no journal: the old snapshot.
    before: usize,
    /// Killed with the ordered switch's journal in place and the state
    /// marker not yet written (renames not started, under way or done).
    during: usize,
    /// Of `during`: the target served neither snapshot exactly (a mix).
    mixed: usize,
    /// Files absent between the two renames of an FTP `swap`, their old
    /// version kept (formats/target-ftp-v1.md FN2).
    absent_in_swap: usize,
    /// Killed after the commit point (the state marker names the new snapshot).
    after: usize,
    /// States checked: after every kill and after every re-import.
    states: usize,
    /// Uninterrupted re-imports of the interrupted snapshot.
    reimports: usize,
}

struct Loop {
    kind: Kind,
    scratch: Scratch,
    secret: Utf8PathBuf,
    public: Utf8PathBuf,
    sources: Vec<Utf8PathBuf>,
    trees: Vec<Tree>,
    /// Folder targets: the target and the folder holding it.
    site: Utf8PathBuf,
    target: Utf8PathBuf,
    /// FTP: the server, the URL, and the folder on disk the URL maps to.
    _server: Option<InProcess>,
    url: String,
    home: tempfile::TempDir,
    context: String,
}

impl Loop {
    fn new(kind: Kind, seed: u64) -> Self {
        let scratch = Scratch::new();
        let key = scratch.path("key");
        keygen(&key);
        let mut sources = Vec::new();
        let mut trees = Vec::new();
        for v in 0..VERSIONS {
            let source = scratch.path(&format!("source{v}"));
            version(&source, v);
            trees.push(if kind == Kind::Ftp { content_tree(&source) } else { tree_state(&source) });
            sources.push(source);
        }
        for a in 0..VERSIONS {
            for b in 0..a {
                assert_ne!(trees[a], trees[b]);
            }
        }
        let site = scratch.path("site");
        std::fs::create_dir_all(&site).unwrap();
        let (server, url, target) = if kind == Kind::Ftp {
            let server = InProcess::start(ServerConfig::default());
            let url = server.url("site/target");
            let dir = server.root.join("site/target");
            (Some(server), url, dir)
        } else {
            (None, String::new(), site.join("target"))
        };
        let site = target.parent().unwrap().to_owned();
        Loop {
            kind,
            secret: key.with_extension("key"),
            public: key.with_extension("pub"),
            sources,
            trees,
            site,
            target,
            _server: server,
            url,
            home: tempfile::tempdir().unwrap(),
            context: format!("kill loop [{}], seed {seed}", kind.label()),
            scratch,
        }
    }

    /// Exports version `v` as sequence `sequence` to its own media folder.
    fn export(&self, v: usize, sequence: u64) -> Utf8PathBuf {
        let media = self.scratch.path(&format!("media{sequence}"));
        export(&self.sources[v], &media, &self.secret, "av", sequence);
        media
    }

    fn target_arg(&self) -> &str {
        if self.kind == Kind::Ftp { &self.url } else { self.target.as_str() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = ferry();
        command.args(args);
        if self.kind == Kind::Ftp {
            command.env("FERRY_FTP_PASSWORD", PASSWORD).env("HOME", self.home.path());
        }
        command
    }

    fn import_command(&self, media: &Utf8Path) -> Command {
        let switch = if self.kind == Kind::TreeSwitch { "tree" } else { "ordered" };
        let mut command =
            self.command(&["import", media.as_str(), self.target_arg(), "--trust", self.public.as_str(), "-q"]);
        if self.kind != Kind::Ftp {
            command.args(["--switch", switch]);
        }
        command
    }

    /// An import that is not killed. A watchdog (10 minutes) only turns a
    /// hang into a failure.
    fn import(&self, media: &Utf8Path) -> Run {
        let stderr = self.scratch.path("import.stderr");
        let mut child = self
            .import_command(media)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start ferry import");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(600) {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("{}: an import not killed by the test hangs", self.context);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: std::fs::read_to_string(stderr).unwrap(),
        }
    }

    fn served(&self) -> Tree {
        if self.kind == Kind::Ftp { content_tree(&self.target) } else { served_tree(&self.target) }
    }

    /// FTP's `swap` step moves the old file to `.ferry/previous/tree/P`,
    /// then the staged one to `P`: a kill between the two renames leaves
    /// `P` absent until the next run finishes the journal
    /// (formats/target-ftp-v1.md FN2). Puts back, as served, every absent
    /// file that the new snapshot replaces and whose old version is kept
    /// there byte for byte (nothing lost), and says how many.
    fn fill_swap_window(&self, served: &mut Tree, old: &Tree, new: &Tree) -> usize {
        let kept_root = self.state_dir().join("previous/tree");
        if !kept_root.is_dir() {
            return 0;
        }
        let kept = content_tree(&kept_root);
        let in_window: Vec<(String, String)> = old
            .iter()
            .filter(|(path, what)| {
                let replaced = new.get(*path).is_some_and(|now| now.starts_with("file") && now != *what);
                replaced && !served.contains_key(*path) && kept.get(*path) == Some(*what)
            })
            .map(|(path, what)| (path.clone(), what.clone()))
            .collect();
        let count = in_window.len();
        served.extend(in_window);
        count
    }

    fn state_dir(&self) -> Utf8PathBuf {
        self.target.join(".ferry")
    }

    fn journal_pending(&self) -> bool {
        self.state_dir().join("journal").exists()
    }

    /// The sequence `ferry status --json` reports; it must succeed.
    fn status(&self) -> u64 {
        self.try_status().unwrap_or_else(|problem| panic!("{}: {problem}", self.context))
    }

    /// The sequence `ferry status --json` reports, or why it failed.
    fn try_status(&self) -> Result<u64, String> {
        let output = self.command(&["status", self.target_arg(), "--json"]).output().unwrap();
        let run = Run::from(output);
        if run.code != 0 {
            return Err(format!("ferry status failed with exit {}: {}", run.code, run.stderr.trim()));
        }
        let json: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{}: {e}: {}", self.context, run.stdout));
        Ok(json["sequence"].as_u64().expect("sequence"))
    }

    /// Nothing of an unfinished switch is left behind.
    fn assert_no_leftovers(&self, what: &str) {
        let leftovers = switch_leftovers(&self.state_dir(), |p| p.starts_with("lock"));
        assert!(leftovers.is_empty(), "{}, {what}: leftovers in .ferry: {leftovers:?}", self.context);
        let temporary: Vec<String> =
            tree_state(&self.target).into_keys().filter(|p| p.ends_with(".ferry-tmp")).collect();
        assert!(temporary.is_empty(), "{}, {what}: temporary files left: {temporary:?}", self.context);
        let siblings = target_siblings(&self.site);
        assert!(siblings.is_empty(), "{}, {what}: unexpected folders beside the target: {siblings:?}", self.context);
    }

    /// Runs the loop; returns the counts and the kills after which
    /// `ferry status` failed (a known bug, see below).
    fn run(mut self, seed: u64, iterations: usize) -> (Counts, Vec<String>) {
        let mut rng = Rng::new(seed);
        let mut counts = Counts::default();
        let mut status_failures: Vec<String> = Vec::new();

        // Version 0 as sequence 1, then version 1 as sequence 2, timed.
        let media = self.export(0, 1);
        self.import(&media).ok();
        assert_eq!(self.served(), self.trees[0], "{}: first import", self.context);
        std::fs::remove_dir_all(&media).unwrap();
        let media = self.export(1, 2);
        let started = Instant::now();
        self.import(&media).ok();
        let duration = started.elapsed();
        assert_eq!(self.served(), self.trees[1], "{}: second import", self.context);
        assert_eq!(self.status(), 2);
        self.assert_no_leftovers("after the second import");
        std::fs::remove_dir_all(&media).unwrap();
        eprintln!(
            "{}: one import took {duration:?}; half the kills land from 0 to 1.25 times that, half around the commit point",
            self.context
        );
        let max_delay_us = (duration.as_micros() as u64 * 5 / 4).max(1000);

        // `focus` tracks where the kills start landing after the commit
        // point: it moves later after a kill before it and earlier after
        // one past it, so that half of the kills land around the switch.
        let mut focus_us = max_delay_us * 3 / 4;
        let window_us = (max_delay_us / 10).max(1);
        let (mut installed_v, mut installed_seq, mut next_seq) = (1usize, 2u64, 3u64);
        for iteration in 0..iterations {
            let new_v = (installed_v + 1 + rng.below(VERSIONS as u64 - 1) as usize) % VERSIONS;
            let new_seq = next_seq;
            // Half the kills anywhere in the import, half near `focus`.
            let focused = rng.below(2) == 1;
            let delay_us = if focused {
                focus_us.saturating_sub(window_us) + rng.below(2 * window_us)
            } else {
                rng.below(max_delay_us)
            };
            let delay = Duration::from_micros(delay_us);
            // Besides the re-imports a pending journal requires, some
            // after other kills too (fewer on FTP, where imports are slow).
            let reimport_anyway = rng.below(if self.kind == Kind::Ftp { 8 } else { 4 }) == 0;
            self.context = format!(
                "kill loop [{}], seed {seed}, iteration {iteration}: version {installed_v} (seq {installed_seq}) -> \
                 version {new_v} (seq {new_seq}), kill after {delay:?}",
                self.kind.label()
            );
            let media = self.export(new_v, new_seq);
            let failures_before = status_failures.len();
            let (old, new) = (&self.trees[installed_v], &self.trees[new_v]);

            let stderr_path = self.scratch.path("killed.stderr");
            let mut child = self
                .import_command(&media)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr_path).unwrap())
                .spawn()
                .expect("start ferry import");
            std::thread::sleep(delay);
            let _ = child.kill();
            let status = child.wait().unwrap();
            if self.kind == Kind::Ftp {
                // Let the server finish any command the killed client had
                // already sent before looking at its disk.
                std::thread::sleep(Duration::from_millis(100));
            }
            counts.iterations += 1;
            let finished = match (status.code(), status.signal()) {
                (Some(0), _) => true,
                (_, Some(9)) => false,
                _ => panic!(
                    "{}: the import failed on its own: {status:?}\n{}",
                    self.context,
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                ),
            };

            // What the target serves now, and what status says.
            let mut served = self.served();
            let journal = self.kind.ordered() && self.journal_pending();
            if journal && self.kind == Kind::Ftp {
                counts.absent_in_swap += self.fill_swap_window(&mut served, old, new);
            }
            let class = classify(&served, old, new);
            let sequence = match self.try_status() {
                Ok(sequence) => sequence,
                // Known bug, recorded and reported at the end so that the
                // loop goes on looking for others: between F1 (the new
                // manifest copied to .ferry/manifest) and F2 (the new state
                // marker) of an ordered switch, `ferry status` fails with
                // "does not match the snapshot id" (exit 3).
                Err(problem) if journal && problem.contains("does not match the snapshot id") => {
                    status_failures.push(format!("{}: {problem}", self.context));
                    counts.during += 1;
                    if let Err(problem) = check_ordered_mix(&served, old, new) {
                        panic!("{}: served {}\n{problem}", self.context, summary(&class));
                    }
                    installed_seq
                }
                Err(problem) => panic!("{}: after the kill, {problem}", self.context),
            };
            counts.states += 1;
            let describe =
                || format!("{}: served {:?}, status {sequence}, journal {journal}", self.context, summary(&class));
            if focused {
                let committed = finished || sequence == new_seq;
                focus_us = if committed { focus_us.saturating_sub(window_us / 3) } else { focus_us + window_us / 3 };
                focus_us = focus_us.clamp(window_us, max_delay_us * 3);
            }
            let mut must_reimport = journal;
            if status_failures.len() > failures_before {
                // Counted above.
            } else if finished {
                counts.finished += 1;
                assert_eq!(class, Served::New, "{}", describe());
                assert_eq!(sequence, new_seq, "{}", describe());
                self.assert_no_leftovers("after an import that finished before the kill");
            } else if sequence == new_seq {
                // After the commit point: exactly the new snapshot.
                counts.after += 1;
                assert_eq!(class, Served::New, "{}", describe());
            } else {
                assert_eq!(sequence, installed_seq, "{}", describe());
                if journal {
                    counts.during += 1;
                    must_reimport = true;
                    match &class {
                        Served::Old | Served::New => {}
                        Served::Mixed { .. } => {
                            counts.mixed += 1;
                            if let Err(problem) = check_ordered_mix(&served, old, new) {
                                panic!("{}\n{problem}", describe());
                            }
                        }
                    }
                } else {
                    counts.before += 1;
                    assert_eq!(class, Served::Old, "{}", describe());
                }
            }

            // The next uninterrupted import of the same snapshot completes
            // whatever was interrupted.
            if must_reimport || (!finished && reimport_anyway) {
                counts.reimports += 1;
                let run = self.import(&media);
                assert_eq!(run.code, 0, "{}: re-import failed:\n{}", describe(), run.stderr);
                counts.states += 1;
                let after = self.served();
                assert_eq!(classify(&after, old, new), Served::New, "{}: after the re-import", describe());
                assert_eq!(self.status(), new_seq, "{}: status after the re-import", describe());
                self.assert_no_leftovers("after the re-import");
            }

            // A snapshot not installed is never imported again: the next
            // one gets a higher sequence anyway.
            let _ = std::fs::remove_dir_all(&media);
            let now = self.status();
            if now == new_seq {
                installed_v = new_v;
            } else {
                assert_eq!(now, installed_seq, "{}", self.context);
            }
            installed_seq = now;
            next_seq += 1;
        }

        // Finally, one uninterrupted import leaves a clean target.
        let final_v = (installed_v + 1) % VERSIONS;
        let final_seq = next_seq;
        self.context = format!("kill loop [{}], seed {seed}, final import", self.kind.label());
        let media = self.export(final_v, final_seq);
        let run = self.import(&media);
        assert_eq!(run.code, 0, "{}: {}", self.context, run.stderr);
        assert_eq!(self.served(), self.trees[final_v], "{}", self.context);
        assert_eq!(self.status(), final_seq, "{}", self.context);
        self.assert_no_leftovers("after the final import");
        counts.states += 1;
        (counts, status_failures)
    }
}

fn summary(class: &Served) -> String {
    match class {
        Served::Old => "old".into(),
        Served::New => "new".into(),
        Served::Mixed { torn, old_only, new_only } => {
            format!("mix ({old_only} old entries, {new_only} new, {} torn: {torn:?})", torn.len())
        }
    }
}

fn kill_loop(kind: Kind, salt: u64) {
    let base = base_seed();
    let seed = base ^ salt;
    let iterations = iterations();
    eprintln!("kill loop [{}]: FERRY_KILL_SEED={base} (seed {seed}), {iterations} iterations", kind.label());
    let (counts, status_failures) = Loop::new(kind, seed).run(seed, iterations);
    let line = format!(
        "kill loop [{}]: FERRY_KILL_SEED={base}: {} iterations; kills landed: {} before the switch, {} during the \
         ordered switch ({} of them serving a mix; {} files absent between the two renames of a swap, kept), {} \
         after the commit point, {} after the import had finished; {} re-imports; {} states checked",
        kind.label(),
        counts.iterations,
        counts.before,
        counts.during,
        counts.mixed,
        counts.absent_in_swap,
        counts.after,
        counts.finished,
        counts.reimports,
        counts.states
    );
    println!("{line}");
    // A loop whose kills all came after the import had ended tested nothing.
    assert!(counts.finished < counts.iterations, "no kill landed while an import ran: {line}");
    assert!(
        status_failures.is_empty(),
        "`ferry status` failed after {} of {} kills, each time with the ordered switch's journal in place \
         (killed between copying the new manifest and writing the new state marker, target-state-v1.md §7.6 \
         F1-F2); the next import finished the switch each time:\n{}",
        status_failures.len(),
        counts.iterations,
        status_failures.join("\n")
    );
}

#[test]
fn kill_loop_folder_tree_switch() {
    kill_loop(Kind::TreeSwitch, 0);
}

#[test]
fn kill_loop_folder_ordered_switch() {
    kill_loop(Kind::OrderedSwitch, 1);
}

#[test]
fn kill_loop_ftp() {
    kill_loop(Kind::Ftp, 2);
}

// ---------------------------------------------------------------------------
// Controls: the checks catch what they are meant to catch
// ---------------------------------------------------------------------------

#[test]
fn control_the_checks_reject_torn_and_early_index_trees() {
    let scratch = Scratch::new();
    let mut trees = Vec::new();
    for v in 0..VERSIONS {
        let source = scratch.path(&format!("v{v}"));
        version(&source, v);
        trees.push(tree_state(&source));
    }
    let (old, new) = (&trees[0], &trees[1]);
    assert_eq!(classify(old, old, new), Served::Old);
    assert_eq!(classify(new, old, new), Served::New);
    // One new data file in the old tree: a legal mix.
    let mut mixed = old.clone();
    mixed.insert("data/d1/f001.dat".into(), new["data/d1/f001.dat"].clone());
    assert!(matches!(classify(&mixed, old, new), Served::Mixed { .. }));
    check_ordered_mix(&mixed, old, new).unwrap();
    // A kind change half done: the path absent is legal.
    let mut absent = mixed.clone();
    absent.remove("swap/thing");
    check_ordered_mix(&absent, old, new).unwrap();
    // A torn file is not.
    let mut torn = old.clone();
    torn.insert("data/d1/f001.dat".into(), "file 644 00".into());
    assert!(check_ordered_mix(&torn, old, new).is_err());
    // Nor a new index before all new data.
    let mut early = mixed.clone();
    early.insert("index/master.xml".into(), new["index/master.xml"].clone());
    assert!(check_ordered_mix(&early, old, new).is_err());
    // The new data, then the new index, is fine.
    let mut late = new.clone();
    for (path, value) in old.iter().filter(|(p, _)| !new.contains_key(*p)) {
        late.insert(path.clone(), value.clone());
    }
    check_ordered_mix(&late, old, new).unwrap();
}

#[test]
fn control_the_seeded_choices_repeat() {
    let (mut a, mut b) = (Rng::new(42), Rng::new(42));
    let first: Vec<u64> = (0..100).map(|_| a.below(1000)).collect();
    let second: Vec<u64> = (0..100).map(|_| b.below(1000)).collect();
    assert_eq!(first, second);
    assert!(first.iter().collect::<BTreeSet<_>>().len() > 50, "the generator is not spreading");
}
