//! Ctrl-C and `kill`: one line on stderr saying what the interruption
//! left, then the process ends by the same signal, exactly as without a
//! handler (a shell reports 130 for SIGINT, 143 for SIGTERM; a parent sees
//! "killed by signal"). Nothing is cleaned up here: every command is safe
//! to kill at any moment, and the next run finishes or discards what an
//! interrupted one left (docs/reliability.md, "Signals").

use super::args::Command;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::IsTerminal;

/// What to tell the operator when `command` is interrupted.
fn message(command: &Command) -> String {
    let text = match command {
        Command::Export(_) => {
            "ferry: interrupted; an export is signed last, so an unfinished one is never imported: run it again"
        }
        Command::Import(_) | Command::Publish(_) | Command::Rollback(_) | Command::Promote(_) => {
            "ferry: interrupted; the next run of the same command finishes or rolls back what this one started"
        }
        Command::Verify(_)
        | Command::List(_)
        | Command::Status(_)
        | Command::Log(_)
        | Command::Diff(_)
        | Command::Policy(_)
        | Command::Completions(_)
        | Command::Man(_) => "ferry: interrupted; nothing was written",
        Command::Verdict(_) => {
            "ferry: interrupted; the verdict is replaced atomically: `ferry status` shows which one holds"
        }
        Command::Inventory(_) => "ferry: interrupted; the inventory is written atomically: run it again",
        Command::Receipt(_) => "ferry: interrupted; the receipt is written atomically: run it again",
        Command::Sign(_) | Command::Rotate(_) => "ferry: interrupted; run the same command again to finish",
        Command::Trust(_) => {
            "ferry: interrupted; the trust store is replaced atomically: `ferry trust list` shows which state it is in"
        }
        Command::Keygen(args) => {
            // keygen refuses to start when either file exists: any there now
            // are this run's, possibly unfinished.
            return format!(
                "ferry: interrupted; delete {0}.key and {0}.pub if either was written, then run keygen again",
                args.prefix
            );
        }
    };
    text.to_owned()
}

/// Installs the handler for `command` on a thread of its own. Without it
/// (the thread or the handler could not be set up) the signals keep their
/// default action, which is just as safe, only silent.
pub fn on_interrupt(command: &Command) {
    let message = message(command);
    let wanted: Vec<i32> = [SIGINT, SIGTERM].into_iter().filter(|s| !ignored_at_start(*s)).collect();
    if wanted.is_empty() {
        return;
    }
    let Ok(mut signals) = Signals::new(wanted) else { return };
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            // A progress bar may be half-drawn on the terminal's last line.
            let newline = if std::io::stderr().is_terminal() { "\n" } else { "" };
            eprintln!("{newline}{message}");
            // The default action again, then the same signal: the process
            // ends as it would have without this handler.
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            std::process::exit(128 + signal);
        }
    });
}

/// Whether the process started with `signal` ignored, as a shell script
/// starts its background jobs (`ferry import ... &`) with SIGINT ignored so
/// that Ctrl-C stops only the foreground. Installing a handler would undo
/// that, so such a signal stays ignored. Read from the kernel's `SigIgn`
/// mask (Linux); where it cannot be read, the signal counts as not ignored.
fn ignored_at_start(signal: i32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return false };
    let mask = status.lines().find_map(|line| line.strip_prefix("SigIgn:"));
    let mask = mask.and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
    mask.is_some_and(|mask| (1..=64).contains(&signal) && mask & (1 << (signal - 1)) != 0)
}
