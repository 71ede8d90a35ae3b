//! `ferry import --stage` and `ferry verdict`: the verification gate at a
//! test update source (formats/verdict-v1.md).

use super::{Context, open_target};
use crate::cli::args::{FtpArgs, Span, parse_span};
use crate::cli::exit;
use crate::cli::output::Timing;
use camino::Utf8PathBuf;
use clap::{Args, ValueEnum};
use ferry::backend::Backend;
use ferry::ops::import::ImportOptions;
use ferry::ops::verdict::{self, StageReport, VerifyCommand};
use ferry::signing::TrustStore;
use ferry::workflow::{Outcome, Verdict};

/// Shown after the options by `-h` and `--help`: real command lines.
const AFTER_HELP: &str = "\
Examples:
  ferry verdict /srv/test-updates pass --reason lab-devices-updated-and-scanned
  ferry verdict /srv/test-updates fail --reason engine-crash-on-lab-device-7

Environment:
  FERRY_FTP_PASSWORD  the FTP password, when --password-file is not given (else ~/.netrc)";

/// `ferry import`'s staging options.
#[derive(Debug, Args)]
#[command(next_help_heading = "Verification gate")]
pub struct StageArgs {
    /// TARGET is a test update source: record a verdict for the snapshot
    /// (pending until --verify-cmd or `ferry verdict` decides), which
    /// `ferry promote` requires.
    #[arg(long, conflicts_with = "dry_run")]
    pub stage: bool,
    /// After installing, run this shell command to verify the snapshot on
    /// the test devices; exit status 0 is a pass. Its environment holds
    /// FERRY_STAGED_PATH, FERRY_REPOSITORY, FERRY_SEQUENCE and
    /// FERRY_MANIFEST_DIGEST.
    #[arg(long, value_name = "CMD", requires = "stage")]
    pub verify_cmd: Option<String>,
    /// Kill the verify command's whole process group after this long; it then counts as a fail.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_span, requires = "verify_cmd")]
    pub verify_timeout: Span,
}

/// `ferry verdict`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct VerdictArgs {
    /// The test update source (imported with --stage): a folder or an ftp:// / ftps:// URL.
    pub target: String,
    /// The verdict on the snapshot it serves.
    #[arg(value_enum)]
    pub result: ResultArg,
    /// Why: what was tested, what was seen.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Where ferry's state is, if not TARGET/.ferry.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<Utf8PathBuf>,
    /// Wait for another ferry process working on the target instead of failing.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub ftp: FtpArgs,
}

/// `pass` or `fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResultArg {
    /// The snapshot works on the test devices: it may be promoted.
    Pass,
    /// It does not: promotion is refused.
    Fail,
}

/// Records an operator's verdict.
pub fn run(args: &VerdictArgs, ctx: &Context) -> ferry::Result<i32> {
    let target = open_target(&args.target, args.state_dir.as_deref(), false, &args.ftp)?;
    let result = match args.result {
        ResultArg::Pass => Outcome::Pass,
        ResultArg::Fail => Outcome::Fail,
    };
    let progress = ctx.out.progress();
    let verdict = verdict::operator_verdict(target.as_ref(), result, &args.reason, ctx.now, args.wait, &progress)?;
    progress.finish();
    ctx.out.report(&verdict, || format!("{}: {}", target.location(), verdict.describe()));
    Ok(exit::OK)
}

/// `ferry import --stage`: installs, verifies, prints the import and the
/// verdict; exit code 1 when the verify command failed.
pub fn stage(
    args: &StageArgs,
    target: &dyn Backend,
    options: &ImportOptions,
    trust: &TrustStore,
    ctx: &Context,
) -> ferry::Result<i32> {
    let verify = args
        .verify_cmd
        .as_ref()
        .map(|command| VerifyCommand { command: command.clone(), timeout: args.verify_timeout.0.unsigned_abs() });
    let progress = ctx.out.progress();
    let (report, elapsed) = Timing::measure(|| verdict::stage(target, options, trust, verify.as_ref(), &progress));
    let report = report?;
    progress.finish();
    ctx.out.timed_report(&report, &Timing::new(elapsed, Some(report.import.snapshot.bytes)), || text(&report));
    Ok(if report.verdict.result == Outcome::Fail { exit::ERROR } else { exit::OK })
}

fn text(report: &StageReport) -> String {
    let Verdict { result, .. } = &report.verdict;
    let mut text = super::import::text(&report.import);
    text.push_str(&format!("\nverdict: {}", report.verdict.describe()));
    if *result == Outcome::Fail && !report.verify_output.is_empty() {
        let lines: Vec<&str> = report.verify_output.lines().collect();
        let last = &lines[lines.len().saturating_sub(10)..];
        text.push_str("\nlast lines of the verify command's output (all of it: the state file verify-output):");
        for line in last {
            text.push_str(&format!("\n  | {line}"));
        }
    }
    text
}
