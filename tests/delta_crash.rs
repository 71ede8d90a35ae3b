//! Crash points inside a delta import (formats/delta-v1.md §6): killed with
//! SIGKILL after the patched files were rebuilt, and at the switch's own
//! points, the target serves the old snapshot or the new one (the ordered
//! switch's rename phase: each file old or new); the next run finishes,
//! and rollback restores the old snapshot exactly.

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use std::os::unix::process::ExitStatusExt;
use support::*;

struct Fixture {
    _scratch: Scratch,
    public: Utf8PathBuf,
    target: Utf8PathBuf,
    delta: Utf8PathBuf,
    old: Tree,
    new: Tree,
}

type Tree = std::collections::BTreeMap<String, String>;

fn version(root: &Utf8Path, day: u64) {
    for i in 0..12u64 {
        let mut bytes = pseudo_random_bytes(i, 60_000);
        if day > 0 && i % 3 == 0 {
            bytes[20_000..22_000].copy_from_slice(&pseudo_random_bytes(100 + i, 2000));
        }
        write(&root.join(format!("bases/db-{i:02}.cvd")), &bytes);
    }
    write(&root.join(format!("bases/only-{day}.cvd")), &pseudo_random_bytes(50 + day, 3000));
    write(&root.join("index/master.xml"), format!("<day {day}/>").as_bytes());
}

impl Fixture {
    fn new(switch: &str) -> Fixture {
        let scratch = Scratch::new();
        let (key, public) = key_pair(&scratch);
        let (ledger, source, target) = (scratch.path("ledger"), scratch.path("source"), scratch.path("site/target"));
        std::fs::create_dir_all(scratch.path("site")).unwrap();
        let export = |drive: &str, sequence: &str, since: Option<&Utf8Path>| {
            let drive = scratch.path(drive);
            let mut args = vec!["export", source.as_str(), drive.as_str(), "--key", key.as_str(), "--repository"];
            args.extend(["av", "--sequence", sequence, "--ledger", ledger.as_str()]);
            if let Some(since) = since {
                args.extend(["--since", since.as_str()]);
            }
            run(&args).ok();
            drive
        };
        version(&source, 0);
        let old = tree_state(&source);
        let full = export("d1", "1", None);
        run(&["import", full.as_str(), target.as_str(), "--trust", public.as_str(), "--switch", switch]).ok();
        let receipt = scratch.path("receipt");
        run(&["receipt", target.as_str(), receipt.as_str()]).ok();
        std::fs::remove_file(source.join("bases/only-0.cvd")).unwrap();
        version(&source, 1);
        let new = tree_state(&source);
        let delta = export("d2", "2", Some(&receipt));
        Fixture { _scratch: scratch, public, target, delta, old, new }
    }

    fn import(&self, switch: &str, crash_at: Option<&str>) -> std::process::Output {
        let mut command = ferry();
        command.args(["import", self.delta.as_str(), self.target.as_str(), "--trust", self.public.as_str()]);
        command.args(["--switch", switch]);
        if let Some(point) = crash_at {
            command.env("FERRY_CRASH_POINT", point);
        }
        command.output().unwrap()
    }

    fn served(&self) -> Served {
        // Sources are written with the default mode, as ferry installs them.
        classify(&served_tree(&self.target), &self.old, &self.new)
    }
}

fn crash(switch: &str, point: &str) -> Served {
    let fixture = Fixture::new(switch);
    let killed = fixture.import(switch, Some(point));
    assert_eq!(killed.status.signal(), Some(9), "crash point `{point}` not reached: {killed:?}");
    let served = fixture.served();
    if let Served::Mixed { torn, .. } = &served {
        assert!(torn.is_empty(), "{switch} switch, crash at {point}: torn entries {torn:?}");
    }
    let again = fixture.import(switch, None);
    assert!(again.status.success(), "re-import after {point}: {}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(fixture.served(), Served::New, "{switch} switch: after re-importing (crash at {point})");
    run(&["rollback", fixture.target.as_str()]).ok();
    assert_eq!(fixture.served(), Served::Old, "{switch} switch: rollback after a crash at {point}");
    served
}

#[test]
fn killed_after_rebuilding_patched_files_serves_old() {
    assert_eq!(crash("tree", "delta-rebuilt"), Served::Old);
    assert_eq!(crash("ordered", "delta-rebuilt"), Served::Old);
}

#[test]
fn tree_switch_killed_before_or_after_the_exchange_serves_old_or_new() {
    assert_eq!(crash("tree", "tree-built"), Served::Old);
    assert_eq!(crash("tree", "after-exchange"), Served::New);
}

#[test]
fn ordered_switch_killed_at_each_step_serves_old_new_or_whole_files_of_either() {
    assert_eq!(crash("ordered", "staged"), Served::Old);
    crash("ordered", "mid-journal");
    assert_eq!(crash("ordered", "before-state"), Served::New);
}
