//! What the user sees: reports as text or JSON on stdout, errors on
//! stderr, a progress bar on stderr only when it is a terminal.

use ferry::report::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;

/// How to print.
pub struct Output {
    json: bool,
    quiet: bool,
    verbose: bool,
}

impl Output {
    /// Output as the global flags ask.
    pub fn new(json: bool, quiet: bool, verbose: bool) -> Self {
        Output { json, quiet, verbose }
    }

    /// Prints a command's report: JSON with `--json`, else `text()` unless quiet.
    pub fn report<T: Serialize>(&self, report: &T, text: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(report) {
                Ok(json) => println!("{json}"),
                Err(e) => eprintln!("error: cannot encode the report as JSON: {e}"),
            }
        } else if !self.quiet {
            println!("{}", text());
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
            let object = serde_json::json!({ "error": error.to_string(), "exit_code": code });
            println!("{object}");
        }
    }

    /// A progress sink for one command.
    pub fn progress(&self) -> Bar {
        let visible = !self.quiet && !self.json && std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        let style = ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Bar { bar, verbose: self.verbose, quiet: self.quiet || self.json }
    }
}

/// A progress bar that is silent when stderr is not a terminal.
pub struct Bar {
    bar: ProgressBar,
    verbose: bool,
    quiet: bool,
}

impl Bar {
    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total_bytes: u64) {
        self.bar.set_message(name.to_owned());
        self.bar.set_length(total_bytes);
        self.bar.set_position(0);
        if self.verbose {
            self.notice(&format!("{name}: {}", ferry::report::human_bytes(total_bytes)));
        }
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
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
