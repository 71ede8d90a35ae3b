//! `ferry publish`.

use super::trust_and_ftp_environment;
use super::{Context, import_options, load_trust, open_target};
use crate::cli::args::{FtpArgs, InstallArgs, Trust};
use crate::cli::exit;
use crate::cli::output::Timing;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::import::SwitchUsed;
use ferry::ops::publish;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = concat!(
    "\
Examples:
  ferry publish /srv/updates ftp://ferry@dp1.example/av ftps://ferry@dp2.example/av \\
      --trust /etc/ferry/trusted/ --password-file /etc/ferry/ftp-password
  ferry publish /srv/updates /mnt/branch-office/updates --trust /etc/ferry/trusted/
  ferry publish /media/usb /srv/mirror --trust /etc/ferry/trusted/ --repository av-bases

",
    trust_and_ftp_environment!()
);

/// `ferry publish`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct PublishArgs {
    /// An update source ferry installed, or a drive / snapshot folder.
    pub source: Utf8PathBuf,
    /// Distribution points: folders or ftp:// / ftps:// URLs.
    #[arg(required = true)]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub trust: Trust,
    /// With a drive as SOURCE: publish only this repository.
    #[arg(long, value_name = "ID")]
    pub repository: Option<String>,
    #[command(flatten)]
    pub install: InstallArgs,
    #[command(flatten)]
    pub ftp: FtpArgs,
}

/// Publishes to every target and prints one line per target; the exit code
/// is the worst outcome's.
pub fn run(args: &PublishArgs, ctx: &Context) -> ferry::Result<i32> {
    let targets = args
        .targets
        .iter()
        .map(|t| open_target(t, None, args.install.mkpath, &args.ftp))
        .collect::<ferry::Result<Vec<_>>>()?;
    let options = import_options(&args.install, vec![args.source.clone()], args.repository.clone(), None, ctx.now);
    let progress = ctx.out.progress();
    let (report, elapsed) = match super::stored_trust_dir(&args.trust)? {
        Some(dir) => Timing::measure(|| publish::publish_with_store(&args.source, &targets, &options, &dir, &progress)),
        None => {
            let trust = load_trust(&args.trust)?;
            let (source, snapshot) = publish::open_source(&args.source, args.repository.as_deref(), &trust)?;
            Timing::measure(|| Ok((publish::publish(&source, &snapshot, &targets, &options, &progress)?, Vec::new())))
        }
    };
    // The library said which rotations it applied, as it applied them.
    let (report, _rotations) = report?;
    progress.finish();
    // The source is verified, every byte, before any target gets a file.
    ctx.out.timed_report(&report, &Timing::new(elapsed, Some(report.snapshot.bytes)), || text(&report));
    Ok(report.worst().map_or(exit::OK, exit::for_class))
}

/// One line for the snapshot, then one per target.
pub fn text(report: &publish::PublishReport) -> String {
    let mut lines = vec![format!(
        "{} {} sequence {} from {}",
        if report.dry_run { "dry run: would publish" } else { "published" },
        report.snapshot.repository,
        report.snapshot.sequence,
        report.snapshot.dir
    )];
    for outcome in &report.targets {
        let detail = match (&outcome.report, &outcome.error) {
            (Some(r), _) if r.switch != SwitchUsed::None || r.changes_anything() => format!(
                ": {} added, {} changed, {} removed, {} {}",
                r.added,
                r.changed,
                r.removed,
                ferry::report::human_bytes(r.bytes_transferred),
                if r.dry_run { "to send" } else { "sent" }
            ),
            (_, Some(error)) => format!(": {error}"),
            _ => String::new(),
        };
        lines.push(format!("  {} {}{detail}", outcome.status.as_str(), outcome.target));
    }
    lines.join("\n")
}
