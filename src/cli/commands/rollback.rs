//! `ferry rollback`.

use super::{Context, open_target};
use crate::cli::args::FtpArgs;
use crate::cli::exit;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::rollback;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry rollback /srv/updates
  ferry rollback /srv/updates --wait
  ferry rollback /srv/updates --dry-run
  ferry rollback ftp://ferry@updates.example/av --password-file /etc/ferry/ftp-password

Environment:
  FERRY_FTP_PASSWORD  the FTP password, when --password-file is not given (else ~/.netrc)";

/// `ferry rollback`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct RollbackArgs {
    /// The update source: a folder or an ftp:// / ftps:// URL.
    pub target: String,
    /// Where ferry's state is, if not TARGET/.ferry.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<Utf8PathBuf>,
    /// Wait for another ferry process working on TARGET instead of failing.
    #[arg(long)]
    pub wait: bool,
    /// Say which snapshot the rollback would return to, without changing
    /// anything.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Why: recorded with the rollback in the target's audit journal.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub ftp: FtpArgs,
}

/// Switches back and prints from which sequence to which.
pub fn run(args: &RollbackArgs, ctx: &Context) -> ferry::Result<i32> {
    let target = open_target(&args.target, args.state_dir.as_deref(), false, &args.ftp)?;
    if args.dry_run {
        let report = rollback::plan(target.as_ref())?;
        ctx.out.report(&report, || {
            format!(
                "dry run: would roll {} at {} back from sequence {} to sequence {}; nothing was written",
                report.repository, report.target, report.from_sequence, report.to_sequence
            )
        });
        return Ok(exit::OK);
    }
    let who = (super::operator(), args.reason.as_deref());
    let report = rollback::rollback_by(target.as_ref(), args.wait, ctx.now, (who.0.as_deref(), who.1))?;
    ctx.out.report(&report, || {
        format!(
            "rolled {} at {} back from sequence {} to sequence {} (recorded in {}/audit)",
            report.repository,
            report.target,
            report.from_sequence,
            report.to_sequence,
            target.state_location()
        )
    });
    Ok(exit::OK)
}
