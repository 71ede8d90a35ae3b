//! What the user sees: reports as text or JSON on stdout, errors on
//! stderr, a progress bar on stderr only when it is a terminal.

use ferry::report::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How to print.
pub struct Output {
    /// The command's name, for the JSON `command` field.
    command: String,
    json: bool,
    quiet: bool,
    verbose: bool,
}

/// How long a command's library call took, and the bytes it handled in
/// that time (when the command has a meaningful count).
pub struct Timing {
    elapsed: Duration,
    bytes: Option<u64>,
}

impl Timing {
    /// Runs `call`, measuring it.
    pub fn measure<T>(call: impl FnOnce() -> T) -> (T, Duration) {
        let started = Instant::now();
        let value = call();
        (value, started.elapsed())
    }

    /// A timing of `elapsed` over `bytes` (`None`: no rate is shown).
    pub fn new(elapsed: Duration, bytes: Option<u64>) -> Self {
        Timing { elapsed, bytes }
    }

    /// Seconds, to the millisecond (the JSON `elapsed_seconds`).
    fn seconds(&self) -> f64 {
        (self.elapsed.as_secs_f64() * 1000.0).round() / 1000.0
    }

    /// The text summary's last line: `  done in 2.4 s, 131.0 MiB/s`.
    fn summary(&self) -> String {
        let seconds = self.elapsed.as_secs_f64();
        let rate = match self.bytes {
            // Below a millisecond the rate says nothing.
            Some(bytes) if seconds >= 0.001 => {
                format!(", {}/s", ferry::report::human_bytes((bytes as f64 / seconds) as u64))
            }
            _ => String::new(),
        };
        format!("  done in {}{rate}", describe_elapsed(self.elapsed))
    }
}

/// `35 ms`, `2.4 s`, `2 min 05 s`, `1 h 02 min`.
fn describe_elapsed(elapsed: Duration) -> String {
    let whole = elapsed.as_secs();
    if whole < 1 {
        format!("{} ms", elapsed.as_millis())
    } else if whole < 60 {
        format!("{:.1} s", elapsed.as_secs_f64())
    } else if whole < 3600 {
        format!("{} min {:02} s", whole / 60, whole % 60)
    } else {
        format!("{} h {:02} min", whole / 3600, whole % 3600 / 60)
    }
}

/// The version of the JSON vocabulary (docs/reference/json.md): raised
/// only when a field is removed or changes meaning, never for additions.
const SCHEMA: u32 = 1;

/// A report with what `--json` adds to every command's report: the schema
/// version and the command first, the elapsed time last.
#[derive(Serialize)]
struct Envelope<'a, T> {
    schema: u32,
    command: &'a str,
    #[serde(flatten)]
    report: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_seconds: Option<f64>,
}

impl Output {
    /// Output as the global flags ask.
    pub fn new(command: String, json: bool, quiet: bool, verbose: bool) -> Self {
        Output { command, json, quiet, verbose }
    }

    /// Prints a command's report: JSON with `--json`, else `text()` unless quiet.
    pub fn report<T: Serialize>(&self, report: &T, text: impl FnOnce() -> String) {
        self.print(report, None, text);
    }

    /// [`Output::report`] for a command that moves data: the text ends with
    /// the elapsed time and rate, the JSON has `elapsed_seconds`.
    pub fn timed_report<T: Serialize>(&self, report: &T, timing: &Timing, text: impl FnOnce() -> String) {
        self.print(report, Some(timing), || format!("{}\n{}", text(), timing.summary()));
    }

    fn print<T: Serialize>(&self, report: &T, timing: Option<&Timing>, text: impl FnOnce() -> String) {
        if self.json {
            let envelope = Envelope {
                schema: SCHEMA,
                command: &self.command,
                report,
                elapsed_seconds: timing.map(Timing::seconds),
            };
            match serde_json::to_string_pretty(&envelope) {
                Ok(json) => print_stdout(&json),
                Err(e) => eprintln!("error: cannot encode the report as JSON: {e}"),
            }
        } else if !self.quiet {
            print_stdout(&text());
        }
    }

    /// Prints a notice about something done on the way (stderr, so that
    /// stdout stays one report), unless quiet.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("note: {text}");
        }
    }

    /// Prints an error: one line (plus listed problems) on stderr, and with
    /// `--json` an object on stdout too.
    pub fn error(&self, error: &ferry::Error, code: i32) {
        eprintln!("error: {error}");
        if self.json {
            let report = ErrorReport {
                schema: SCHEMA,
                command: &self.command,
                error: error.to_string(),
                exit_code: code,
                problems: problems(error),
            };
            match serde_json::to_string(&report) {
                Ok(json) => print_stdout(&json),
                Err(e) => eprintln!("error: cannot encode the error as JSON: {e}"),
            }
        }
    }

    /// A progress sink for one command.
    pub fn progress(&self) -> Bar {
        let visible = !self.quiet && !self.json && std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        Bar {
            bar,
            verbose: self.verbose,
            quiet: self.quiet || self.json,
            files_done: AtomicUsize::new(0),
            files: AtomicUsize::new(0),
        }
    }
}

/// A bar for a phase with a known amount of bytes, and files when known.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:>10} [{bar:30}] {binary_bytes}/{binary_total_bytes} {prefix}{binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// A spinner for a phase of unknown length (a flush to the drive), so that
/// it never looks stuck at 100%.
fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A progress bar that is silent when stderr is not a terminal.
pub struct Bar {
    bar: ProgressBar,
    verbose: bool,
    quiet: bool,
    /// Files done in the current phase, and how many it has (0: not counted).
    files_done: AtomicUsize,
    files: AtomicUsize,
}

impl Bar {
    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total_bytes: u64) {
        self.files.store(0, Ordering::Relaxed);
        self.files_done.store(0, Ordering::Relaxed);
        self.bar.set_prefix("");
        if total_bytes == 0 {
            self.bar.set_style(spinner_style());
            self.bar.enable_steady_tick(std::time::Duration::from_millis(200));
        } else {
            self.bar.disable_steady_tick();
            self.bar.set_style(bar_style());
        }
        self.bar.set_message(name.to_owned());
        self.bar.set_length(total_bytes);
        self.bar.set_position(0);
        if self.verbose && total_bytes == 0 {
            self.notice(name);
        } else if self.verbose {
            self.notice(&format!("{name}: {}", ferry::report::human_bytes(total_bytes)));
        }
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn files(&self, total: usize) {
        self.files.store(total, Ordering::Relaxed);
        self.bar.set_prefix(format!("0/{total} files "));
    }

    fn file_done(&self) {
        let done = self.files_done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.files.load(Ordering::Relaxed);
        if total > 0 {
            self.bar.set_prefix(format!("{done}/{total} files "));
        }
    }

    fn notice(&self, message: &str) {
        if self.verbose {
            self.bar.suspend(|| eprintln!("ferry: {message}"));
        }
    }

    fn attention(&self, message: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("ferry: {message}"));
        }
    }
}

/// Writes `text` and a newline to stdout. A reader that went away (`ferry
/// list | head -1`) is not an error of ferry's: the write fails quietly
/// instead of panicking as `println!` would.
fn print_stdout(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// What `--json` prints on stdout for an error (docs/reference/json.md).
#[derive(Serialize)]
struct ErrorReport<'a> {
    schema: u32,
    command: &'a str,
    /// The whole message, as on stderr.
    error: String,
    exit_code: i32,
    /// One entry per problem where the error lists several (damaged files,
    /// what does not fit a drive, what cannot be exported), else one entry:
    /// the message.
    problems: Vec<String>,
}

fn problems(error: &ferry::Error) -> Vec<String> {
    match error {
        ferry::Error::Damaged { problems, .. }
        | ferry::Error::DriveUnfit { problems, .. }
        | ferry::Error::UnexportableSource { problems, .. }
        | ferry::Error::KeptFilesChanged { problems, .. } => problems.clone(),
        other => vec![other.to_string()],
    }
}
