//! `ferry promote`.

use super::trust_and_ftp_environment;
use super::{Context, import_options, load_trust, open_target};
use crate::cli::args::{FtpArgs, InstallArgs, Trust};
use crate::cli::exit;
use crate::cli::output::Timing;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::promote;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = concat!(
    "\
Examples:
  ferry promote /srv/test-updates /srv/updates ftp://ferry@dp1.example/av --trust /etc/ferry/trusted/ \\
      --password-file /etc/ferry/ftp-password
  ferry promote /srv/test-updates /mnt/branch-office/updates --trust /etc/ferry/trusted/

",
    trust_and_ftp_environment!()
);

/// `ferry promote`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct PromoteArgs {
    /// The test update source the snapshot was staged and verified in: a
    /// folder, or an ftp:// / ftps:// URL (read back and checked byte for byte).
    pub test_target: Utf8PathBuf,
    /// Production update sources and distribution points: folders or ftp:// / ftps:// URLs.
    #[arg(required = true)]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub trust: Trust,
    #[command(flatten)]
    pub install: InstallArgs,
    #[command(flatten)]
    pub ftp: FtpArgs,
}

/// Promotes to every target and prints one line per target; the exit code
/// is the worst outcome's.
pub fn run(args: &PromoteArgs, ctx: &Context) -> ferry::Result<i32> {
    let trust = load_trust(&args.trust)?;
    let test = open_target(args.test_target.as_str(), None, false, &args.ftp)?;
    let targets = args
        .targets
        .iter()
        .map(|t| open_target(t, None, args.install.mkpath, &args.ftp))
        .collect::<ferry::Result<Vec<_>>>()?;
    let options = import_options(&args.install, vec![args.test_target.clone()], None, None, ctx.now);
    let progress = ctx.out.progress();
    let (report, elapsed) =
        Timing::measure(|| promote::promote(test.as_ref(), &args.test_target, &targets, &options, &trust, &progress));
    let report = report?;
    progress.finish();
    ctx.out.timed_report(&report, &Timing::new(elapsed, Some(report.publish.snapshot.bytes)), || {
        format!(
            "verdict at {}: {}\n{}",
            report.test_target,
            report.verdict.describe(),
            super::publish::text(&report.publish)
        )
        .replacen("published", "promoted", 1)
    });
    Ok(report.publish.worst().map_or(exit::OK, exit::for_class))
}
