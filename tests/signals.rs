//! SIGINT and SIGTERM during `ferry export` and `ferry import` (issue 5,
//! "Signals"), through the real binary.
//!
//! Each trial starts a run that takes a moment (128 MiB of payload), waits
//! for a named moment (the export copying, the import staging or building
//! its next tree, the journal written), sends the signal to the process by
//! its PID, and records what happened: how the process ended, what it left
//! behind, what the target serves, what `ferry status` says. The asserted
//! properties are the safety ones, not an exit code:
//!
//! - import: the target serves the old snapshot or the new one exactly (with
//!   the ordered switch, a tree between the two is allowed only while a
//!   journal is there for the next run to finish); the lock is released (the
//!   next `ferry import` without `--wait` succeeds); after it, the target
//!   serves the new snapshot and nothing is left over;
//! - export: the media holds no `manifest.sig` unless the snapshot on it
//!   verifies; `ferry verify` and `ferry import` refuse the interrupted
//!   media (exit 3) without touching the target; the next export of the
//!   same sequence replaces the unfinished folder.
//!
//! ferry's handler (src/cli/signals.rs) prints one line, `ferry:
//! interrupted; ...`, and ends the process by the same signal (exit status
//! "killed by signal 2/15"; a shell reports 130/143), with no clean-up: the
//! recovery path is what makes it safe, as after SIGKILL. Every trial that
//! was killed by the signal must have printed that line. The table each
//! test prints is the record docs/reliability.md quotes.
//!
//! Run: `cargo test --all-features --test signals -- --nocapture`.

mod support;
use camino::{Utf8Path, Utf8PathBuf};
use rustix::process::{Pid, Signal, kill_process};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use support::*;

type Tree = BTreeMap<String, String>;

const LARGE_FILES: usize = 32;
const LARGE_SIZE: usize = 4 * 1024 * 1024;

/// Version 1 is small; version 2 adds 128 MiB in 32 files and changes an
/// index file, so its export and import take long enough to interrupt.
fn repository(root: &Utf8Path, version: u64) {
    versioned_repository(root, version);
    if version >= 2 {
        for i in 0..LARGE_FILES {
            write(&root.join(format!("large/l{i:02}.bin")), &pseudo_random_bytes(i as u64 + 1, LARGE_SIZE));
        }
    }
}

struct Setup {
    scratch: Scratch,
    key: Utf8PathBuf,
    public: Utf8PathBuf,
    source2: Utf8PathBuf,
    media1: Utf8PathBuf,
    media2: Utf8PathBuf,
    old: Tree,
    new: Tree,
}

impl Setup {
    fn new() -> Self {
        let scratch = Scratch::new();
        let key = scratch.path("key");
        keygen(&key);
        let secret = key.with_extension("key");
        let (source1, source2) = (scratch.path("source1"), scratch.path("source2"));
        repository(&source1, 1);
        repository(&source2, 2);
        let (media1, media2) = (scratch.path("media1"), scratch.path("media2"));
        export(&source1, &media1, &secret, "av", 1);
        export(&source2, &media2, &secret, "av", 2);
        Setup {
            public: key.with_extension("pub"),
            key: secret,
            old: tree_state(&source1),
            new: tree_state(&source2),
            source2,
            media1,
            media2,
            scratch,
        }
    }

    fn import_command(&self, media: &Utf8Path, target: &Utf8Path, switch: &str) -> Command {
        let mut command = ferry();
        command.args(["import", media.as_str(), target.as_str(), "--trust", self.public.as_str(), "--switch", switch]);
        command
    }

    fn export_command(&self, media: &Utf8Path) -> Command {
        let mut command = ferry();
        command.args(["export", self.source2.as_str(), media.as_str(), "--key", self.key.as_str()]);
        command.args(["--repository", "av", "--sequence", "2"]);
        command
    }

    /// "old", "new" or "mixed": what the target serves.
    fn served(&self, target: &Utf8Path) -> &'static str {
        let served = served_tree(target);
        if served == self.old {
            "old"
        } else if served == self.new {
            "new"
        } else {
            "mixed"
        }
    }
}

/// A started process, killed (SIGKILL, by its PID) and reaped if the test
/// ends before it does.
struct Guard(Option<Child>);

impl Guard {
    fn start(mut command: Command) -> Self {
        Guard(Some(command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start ferry")))
    }

    fn finished(&mut self) -> bool {
        self.0.as_mut().unwrap().try_wait().unwrap().is_some()
    }

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.0.as_ref().unwrap().id() as i32).unwrap();
        // The process may have finished (ESRCH is fine: it is a zombie we own).
        let _ = kill_process(pid, signal);
    }

    fn wait(mut self) -> (ExitStatus, String) {
        let output = self.0.take().unwrap().wait_with_output().unwrap();
        (output.status, String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls until `ready` holds (true) or the process has exited (false).
fn wait_until(child: &mut Guard, ready: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        if child.finished() {
            return ready();
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    panic!("the moment never came");
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => format!("{status:?}"),
    }
}

fn signal_name(signal: Signal) -> &'static str {
    if signal == Signal::INT { "SIGINT" } else { "SIGTERM" }
}

/// What an interrupted run left for the next one.
fn leftovers(site: &Utf8Path, target: &Utf8Path) -> Vec<String> {
    let mut found: Vec<String> = tree_state(&target.join(".ferry"))
        .into_keys()
        .filter(|p| p == "journal" || p == "staging" || p == "incoming")
        .map(|p| format!(".ferry/{p}"))
        .collect();
    if site.join(".target.ferry-next").exists() {
        found.push(".target.ferry-next".to_owned());
    }
    found
}

// ---------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------

/// Moments at which an import is interrupted: the marker that must exist,
/// then an extra delay.
fn import_moments(switch: &str) -> Vec<(&'static str, &'static str, u64)> {
    let early = if switch == "tree" { ".target.ferry-next" } else { "target/.ferry/staging" };
    let mut moments = vec![("copying, at once", early, 0), ("copying, +60 ms", early, 60)];
    if switch == "ordered" {
        moments.push(("journal written", "target/.ferry/journal", 0));
    } else {
        moments.push(("new tree's state written", ".target.ferry-next/.ferry/state", 0));
    }
    moments
}

fn signals_during_import(switch: &str) {
    let s = Setup::new();
    let mut table = Vec::new();
    let mut interrupted = 0;
    for signal in [Signal::INT, Signal::TERM] {
        for (moment, marker, delay) in import_moments(switch) {
            let site = s.scratch.path(&format!("site-{}-{}", signal_name(signal), moment.replace([' ', ','], "")));
            std::fs::create_dir_all(&site).unwrap();
            let target = site.join("target");
            Run::from(s.import_command(&s.media1, &target, switch).output().unwrap()).ok();
            assert_eq!(s.served(&target), "old");

            let mut child = Guard::start(s.import_command(&s.media2, &target, switch));
            let reached = wait_until(&mut child, || site.join(marker).exists());
            std::thread::sleep(Duration::from_millis(delay));
            child.signal(signal);
            let (status, stderr) = child.wait();
            let served = s.served(&target);
            let left = leftovers(&site, &target);
            let killed = status.signal() == Some(signal.as_raw());
            interrupted += usize::from(killed);
            let context = format!(
                "{switch} switch, {} at '{moment}' (reached: {reached}): {}, serves {served}, left {left:?}\n  stderr: {stderr}",
                signal_name(signal),
                describe_status(status)
            );
            if killed {
                assert!(stderr.contains("ferry: interrupted"), "no message on the signal: {context}");
            }
            // The safety property: the old or the new snapshot exactly; a
            // mixed ordered tree only with a journal to finish it.
            match served {
                "old" | "new" => {}
                _ => {
                    assert_eq!(switch, "ordered", "{context}");
                    assert!(target.join(".ferry/journal").is_file(), "mixed tree without a journal: {context}");
                }
            }
            if status.success() {
                assert_eq!(served, "new", "{context}");
            }
            let status_run = run(&["status", target.as_str()]);
            // The lock is free and the next import (no --wait) completes.
            let next = Run::from(s.import_command(&s.media2, &target, switch).output().unwrap());
            assert_eq!(next.code, 0, "{context}\nnext import: exit {}: {}", next.code, next.stderr);
            assert_eq!(s.served(&target), "new", "{context}");
            assert!(
                leftovers(&site, &target).is_empty(),
                "{context}\nafter the next import: {:?}",
                leftovers(&site, &target)
            );
            let recovered = next
                .stdout
                .lines()
                .chain(next.stderr.lines())
                .find(|l| l.contains("recover") || l.contains("finished") || l.contains("removed"))
                .unwrap_or("")
                .trim()
                .to_owned();
            table.push(format!(
                "| {switch} | {} | {moment} | {} | {served} | {} | status exit {} | next import exit 0: {} |",
                signal_name(signal),
                describe_status(status),
                if left.is_empty() { "nothing".to_owned() } else { left.join(", ") },
                status_run.code,
                if recovered.is_empty() { "-".to_owned() } else { recovered }
            ));
        }
    }
    println!("| switch | signal | moment | process | serves after | left behind | status | next run |");
    println!("{}", table.join("\n"));
    assert!(interrupted > 0, "no trial was interrupted: the runs finish before the signal arrives");
}

#[test]
fn signals_during_import_tree_switch() {
    signals_during_import("tree");
}

#[test]
fn signals_during_import_ordered_switch() {
    signals_during_import("ordered");
}

// ---------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------

#[test]
fn signals_during_export() {
    let s = Setup::new();
    let moments = [
        ("copying, at once", "ferry/av/2/payload", 0),
        ("copying, +100 ms", "ferry/av/2/payload", 100),
        ("manifest written", "ferry/av/2/manifest", 0),
        ("read-back", "ferry/av/2/manifest.sig", 0),
    ];
    let mut table = Vec::new();
    let mut interrupted = 0;
    for signal in [Signal::INT, Signal::TERM] {
        for (moment, marker, delay) in moments {
            let media = s.scratch.path(&format!("m-{}-{}", signal_name(signal), moment.replace([' ', ',', '+'], "")));
            std::fs::create_dir_all(&media).unwrap();
            let mut child = Guard::start(s.export_command(&media));
            let reached = wait_until(&mut child, || media.join(marker).exists());
            std::thread::sleep(Duration::from_millis(delay));
            child.signal(signal);
            let (status, stderr) = child.wait();
            let killed = status.signal() == Some(signal.as_raw());
            interrupted += usize::from(killed);
            let snapshot = media.join("ferry/av/2");
            let signed = snapshot.join("manifest.sig").exists();
            let context = format!(
                "export, {} at '{moment}' (reached: {reached}): {}, snapshot folder {}, signed {signed}\n  stderr: {stderr}",
                signal_name(signal),
                describe_status(status),
                if snapshot.exists() { "left" } else { "absent" }
            );
            if killed {
                assert!(stderr.contains("ferry: interrupted"), "no message on the signal: {context}");
            }
            let verify = run(&["verify", media.as_str(), "--trust", s.public.as_str()]);
            if signed {
                // A signature is written only after payload and manifest are
                // flushed: the snapshot must verify completely.
                assert_eq!(verify.code, 0, "{context}\nverify: {}", verify.stderr);
            } else {
                assert_eq!(verify.code, 3, "{context}\nverify: {}", verify.stderr);
                // Import refuses it and does not create the target.
                let target = s.scratch.path("never-created");
                let import = Run::from(s.import_command(&media, &target, "auto").output().unwrap());
                assert_eq!(import.code, 3, "{context}\nimport: {}", import.stderr);
                assert!(!target.exists(), "{context}");
            }
            // The next export of the same sequence replaces what was left.
            let again = Run::from(s.export_command(&media).arg("-q").output().unwrap());
            let next = match (signed, again.code) {
                (false, 0) => "next export exit 0".to_owned(),
                (true, 1) if again.stderr.contains("already exists") => "next export refused: already exists".into(),
                (_, code) => panic!("{context}\nnext export: exit {code}: {}", again.stderr),
            };
            run(&["verify", media.as_str(), "--trust", s.public.as_str()]).ok();
            table.push(format!(
                "| {} | {moment} | {} | {} | {} | verify exit {}: {} | {next} |",
                signal_name(signal),
                describe_status(status),
                if snapshot.exists() { "left" } else { "absent" },
                if signed { "present" } else { "absent" },
                verify.code,
                verify.stderr.lines().next().unwrap_or("").replace(media.as_str(), "MEDIA")
            ));
        }
    }
    println!("| signal | moment | process | snapshot folder | manifest.sig | verify | next export |");
    println!("{}", table.join("\n"));
    assert!(interrupted > 0, "no trial was interrupted: the exports finish before the signal arrives");
}
