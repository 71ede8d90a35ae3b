//! `ferry status`.

use super::{Context, open_target};
use crate::cli::args::{FtpArgs, Span, parse_span};
use crate::cli::exit;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::status::{self, Freshness};

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry status /srv/updates
  ferry status /srv/updates --out-of-date 12h --extremely-out-of-date 3d
  ferry status ftp://ferry@updates.example/av --json

Environment:
  FERRY_FTP_PASSWORD  the FTP password, when --password-file is not given (else ~/.netrc)";

/// `ferry status`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct StatusArgs {
    /// The update source: a folder or an ftp:// / ftps:// URL.
    pub target: String,
    /// Where ferry's state is, if not TARGET/.ferry.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<Utf8PathBuf>,
    /// Age after which the source is out of date (12h, 1d, "36 hours", ...).
    #[arg(long, value_name = "DURATION", default_value = "1d", value_parser = parse_span)]
    pub out_of_date: Span,
    /// Age after which the source is extremely out of date.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_span)]
    pub extremely_out_of_date: Span,
    #[command(flatten)]
    pub ftp: FtpArgs,
}

/// The policy summary, and the verdict and promotions of a test update
/// source, if it is one.
fn workflow_text(report: &status::StatusReport) -> String {
    let policy = report.policy.as_ref().map_or(String::new(), |p| format!("\n  {}", p.describe()));
    let Some(verdict) = &report.verdict else { return policy };
    let stale = if report.verdict_current { "" } else { " (STALE: about another snapshot)" };
    let mut text = format!("{policy}\n  verdict: {}{stale}", verdict.describe());
    for p in &report.promoted {
        text.push_str(&format!("\n  promoted {} to {} at {} ({})", &p.snapshot[..12], p.target, p.time, p.status));
    }
    text
}

/// Prints what the target serves; the exit code is the freshness verdict.
pub fn run(args: &StatusArgs, ctx: &Context) -> ferry::Result<i32> {
    let target = open_target(&args.target, args.state_dir.as_deref(), false, &args.ftp)?;
    let thresholds =
        status::Thresholds { out_of_date: args.out_of_date.0, extremely_out_of_date: args.extremely_out_of_date.0 };
    let report = status::status(target.as_ref(), thresholds, ctx.now)?;
    ctx.out.report(&report, || {
        format!(
            "{}: {} sequence {} (snapshot {})\n  created {} ({} ago), installed {}, expires {}{}\n  {}{}",
            report.target,
            report.repository,
            report.sequence,
            &report.snapshot_id[..12],
            report.created,
            report.age,
            report.installed,
            report.expires,
            if report.expired { " (EXPIRED)" } else { "" },
            report.freshness.describe().to_uppercase(),
            report.rolled_back_from.map_or(String::new(), |s| format!(" (rolled back from sequence {s})")),
        ) + &workflow_text(&report)
    });
    Ok(match report.freshness {
        Freshness::Fresh => exit::OK,
        Freshness::OutOfDate => exit::OUT_OF_DATE,
        Freshness::ExtremelyOutOfDate => exit::EXTREMELY_OUT_OF_DATE,
    })
}
