//! `ferry log`.

use super::{Context, open_target};
use crate::cli::args::FtpArgs;
use crate::cli::exit;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::log::{self, LogReport};

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry log /srv/updates
  ferry log /srv/updates --verify --json
  ferry log ftp://ferry@updates.example/av --password-file /etc/ferry/ftp-password

Environment:
  FERRY_FTP_PASSWORD  the FTP password, when --password-file is not given (else ~/.netrc)";

/// `ferry log`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct LogArgs {
    /// The update source: a folder or an ftp:// / ftps:// URL.
    pub target: String,
    /// Where ferry's state is, if not TARGET/.ferry.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<Utf8PathBuf>,
    /// Exit with 3 when the chain is broken (an entry edited, deleted,
    /// reordered or cut short).
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub ftp: FtpArgs,
}

/// Prints the journal and whether its chain holds.
pub fn run(args: &LogArgs, ctx: &Context) -> ferry::Result<i32> {
    let target = open_target(&args.target, args.state_dir.as_deref(), false, &args.ftp)?;
    let report = log::log(target.as_ref())?;
    ctx.out.report(&report, || text(&report));
    Ok(if args.verify && !report.intact { exit::REFUSED } else { exit::OK })
}

fn text(report: &LogReport) -> String {
    let mut text = String::new();
    if let Some(old) = &report.legacy_history {
        text.push_str(&format!("kept history log {} (sha256 {}):\n", old.path, &old.sha256[..12]));
        for line in &old.records {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text.push_str(&format!("audit journal {}:\n", report.journal));
    for entry in &report.entries {
        let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".into());
        text.push_str(&format!(
            "{:>4} {} {:<8} {} {} {} signed-by {} by {}{}{}\n",
            entry.number,
            entry.time,
            entry.action,
            or_dash(entry.repository.clone()),
            or_dash(entry.sequence.map(|n| n.to_string())),
            or_dash(entry.snapshot_id.as_ref().map(|id| id[..12].to_owned())),
            if entry.signed_by.is_empty() { "-".into() } else { entry.signed_by.join(",") },
            or_dash(entry.operator.clone()),
            entry.reason.as_ref().map_or(String::new(), |reason| format!(": {reason}")),
            match entry.removed_declined {
                0 => String::new(),
                count => format!(" ({count} removed as declined)"),
            },
        ));
    }
    match &report.broken {
        None => text.push_str(&format!("chain intact: {} entries", report.entries.len())),
        Some(problem) => text.push_str(&format!("CHAIN BROKEN after entry {}: {problem}", report.entries.len())),
    }
    text
}
