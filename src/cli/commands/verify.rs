//! `ferry verify`: media, or an installed update source.

use super::trust_and_ftp_environment;
use super::{Context, load_trust, open_target, optional_trust};
use crate::cli::args::{FtpArgs, Trust};
use crate::cli::exit;
use crate::cli::output::Timing;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::backend::location::Location;
use ferry::media::SnapshotDir;
use ferry::ops::verify;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = concat!(
    "\
Examples:
  ferry verify /media/usb --trust /etc/ferry/trusted/
  ferry verify /media/usb/ferry/av-bases/1764590400 --trust /etc/ferry/trusted/updates.pub
  ferry verify /media/usb1 /media/usb2 --trust /etc/ferry/trusted/
  ferry verify /srv/updates --deep       # an installed update source: hash every file

",
    trust_and_ftp_environment!()
);

/// `ferry verify`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct VerifyArgs {
    /// The drive, one snapshot folder on it, or an installed update source
    /// (a folder or an ftp:// URL) to check for drift; every drive of a
    /// snapshot that spans several. Drives holding separate snapshots are
    /// checked as one drive would be.
    #[arg(required = true, num_args = 1..)]
    pub media: Vec<String>,
    #[command(flatten)]
    pub trust: Trust,
    /// For an installed update source: hash every file, not just compare sizes.
    #[arg(long)]
    pub deep: bool,
    /// Fail when any snapshot on the media is bad, not only one that
    /// `import` would take (the newest of its repository).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub ftp: FtpArgs,
}

/// Verifies media or an installed source and prints one line per snapshot.
pub fn run(args: &VerifyArgs, ctx: &Context) -> ferry::Result<i32> {
    let installed = match ferry::backend::location::parse(&args.media[0], args.ftp.implicit_tls)? {
        Location::Ftp(_) => true,
        Location::Dir(path) => SnapshotDir::is_installed_source(&path),
    };
    if installed {
        return run_installed(args, ctx);
    }
    let drives: Vec<Utf8PathBuf> = args.media.iter().map(Utf8PathBuf::from).collect();
    let progress = ctx.out.progress();
    // With the trust store, as the rotations on the drives would leave it.
    let (report, elapsed) = match super::stored_trust_dir(&args.trust)? {
        Some(dir) => Timing::measure(|| verify::verify_with_store(&drives, &dir, ctx.now, args.all, &progress)),
        None => {
            let trust = load_trust(&args.trust)?;
            Timing::measure(|| Ok((verify::verify(&drives, &trust, ctx.now, args.all, &progress)?, Vec::new())))
        }
    };
    let (report, rotations) = report?;
    progress.finish();
    for applied in &rotations {
        ctx.out.note(&format!("counting {} (the store is changed by import)", applied.describe()));
    }
    let bytes = report.snapshots.iter().map(|s| s.bytes).sum();
    ctx.out.timed_report(&report, &Timing::new(elapsed, Some(bytes)), || text(&report));
    match &report.failure {
        None => Ok(exit::OK),
        // The report (with `failure` in JSON) is the whole answer; the
        // error line on stderr says which snapshot fails the drive.
        Some(error) => {
            eprintln!("error: {error}");
            Ok(exit::for_class(error.class()))
        }
    }
}

fn text(report: &verify::VerifyReport) -> String {
    let good = report.snapshots.iter().map(|s| {
        format!(
            "OK {} sequence {}{}: {}, {}, signed by key {}, created {}, expires {} ({})",
            s.repository,
            s.sequence,
            super::list::delta_note(&s.bases),
            ferry::report::counted(s.files, "file", "files"),
            ferry::report::human_bytes(s.bytes),
            s.signed_by,
            s.created,
            s.expires,
            s.dir
        )
    });
    let bad = report.problems.iter().map(|p| format!("{} {}: {}", p.status.as_str(), p.dir, p.problem));
    good.chain(bad).collect::<Vec<_>>().join("\n")
}

fn run_installed(args: &VerifyArgs, ctx: &Context) -> ferry::Result<i32> {
    if args.media.len() > 1 {
        return Err(ferry::Error::InvalidArgument(
            "an installed update source is verified on its own: give one TARGET".into(),
        ));
    }
    let target = open_target(&args.media[0], None, false, &args.ftp)?;
    let trust = optional_trust(&args.trust)?;
    let progress = ctx.out.progress();
    let (report, elapsed) =
        Timing::measure(|| verify::verify_installed(target.as_ref(), trust.as_ref(), args.deep, &progress));
    let report = report?;
    progress.finish();
    // The report does not count the bytes compared or hashed: no rate.
    ctx.out.timed_report(&report, &Timing::new(elapsed, None), || {
        format!(
            "OK {}: {} sequence {}, {} the installed manifest ({}{})",
            report.target,
            report.repository,
            report.sequence,
            ferry::report::counted(report.files, "file matches", "files match"),
            if report.deep { "contents hashed" } else { "sizes compared; --deep hashes contents" },
            if report.signature_checked { ", signature verified" } else { ", signature not checked: no --trust" }
        )
    });
    Ok(exit::OK)
}
