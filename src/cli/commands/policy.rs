//! `ferry policy check`.

use super::Context;
use crate::cli::exit;
use camino::Utf8PathBuf;
use clap::{Args, Subcommand};
use ferry::ops::policy::{self, PolicyReport};
use ferry::report::counted;

/// Shown after the options by `-h` and `--help`: real command lines.
const AFTER_HELP: &str = "\
Examples:
  ferry policy check /srv/update-repository --policy /etc/ferry/policy.toml
  ferry policy check /srv/update-repository --policy /etc/ferry/policy.toml --json";

/// `ferry policy`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub action: PolicyAction,
}

/// What to do with a policy.
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Show what an export of SOURCE with this policy would carry, and what
    /// it would hold back and why. Writes nothing.
    Check {
        /// The repository folder, as given to `ferry export`.
        source: Utf8PathBuf,
        /// The approval policy (formats/policy-v1.md).
        #[arg(long, value_name = "FILE")]
        policy: Utf8PathBuf,
        /// Glob naming index files, as for `ferry export --index` (repeatable).
        #[arg(long, value_name = "GLOB")]
        index: Vec<String>,
    },
}

/// Runs the check and prints its report.
pub fn run(args: &PolicyArgs, ctx: &Context) -> ferry::Result<i32> {
    let PolicyAction::Check { source, policy, index } = &args.action;
    let index = if index.is_empty() {
        ferry::scan::DEFAULT_INDEX_PATTERNS.iter().map(|p| p.to_string()).collect()
    } else {
        index.clone()
    };
    let report = policy::check(source, policy, &index)?;
    ctx.out.report(&report, || {
        let mut lines = vec![format!("policy {} on {source}:", report.policy)];
        for c in &report.components {
            let accepted =
                c.eula_accepted.as_ref().map_or(String::new(), |a| format!(", EULA accepted by {} at {}", a.by, a.at));
            lines.push(format!(
                "  {} ({}{}{accepted}): {} ship, {} held{}",
                c.name,
                c.status.as_str(),
                if c.eula { ", EULA" } else { "" },
                counted(c.shipped_files, "file", "files"),
                c.held_files,
                c.held_because.map_or(String::new(), |r| format!(" ({})", r.as_str())),
            ));
        }
        lines.push(held_text(&report));
        lines.join("\n")
    });
    Ok(exit::OK)
}

/// The totals and the held files, one line each.
pub fn held_text(report: &PolicyReport) -> String {
    let mut text = format!(
        "  policy: {} ({}) ship; {} held",
        counted(report.shipped_files, "file", "files"),
        ferry::report::human_bytes(report.shipped_bytes),
        counted(report.held_files, "file", "files")
    );
    for held in &report.held {
        text.push_str(&format!("\n  held {} ({}: {})", held.path, held.component, held.reason.as_str()));
    }
    text
}
