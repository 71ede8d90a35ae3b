//! `ferry import`.

use super::trust_and_ftp_environment;
use super::{Context, import_options, load_trust, open_target};
use crate::cli::args::{FtpArgs, InstallArgs, Trust};
use crate::cli::exit;
use crate::cli::output::Timing;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::import::{self, SwitchUsed};

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = concat!(
    "\
Examples:
  ferry import /media/usb /srv/updates --trust /etc/ferry/trusted/
  ferry import /media/usb /srv/updates --trust /etc/ferry/trusted/ --repository av-bases --wait
  ferry import /media/usb1 /media/usb2 /srv/updates --trust /etc/ferry/trusted/
  ferry import /media/usb /srv/test-updates --trust /etc/ferry/trusted/ --stage \\
      --verify-cmd '/usr/local/bin/check-test-devices' --verify-timeout 30m
  ferry import /media/usb ftp://ferry@updates.example/av --trust /etc/ferry/trusted/ \\
      --password-file /etc/ferry/ftp-password

",
    trust_and_ftp_environment!()
);

/// `ferry import`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ImportArgs {
    /// The drive, or one snapshot folder on it; every drive of a snapshot
    /// that spans several. Drives holding separate snapshots (a full one
    /// and a delta) are chosen among as one drive would be.
    #[arg(required = true, num_args = 1..)]
    pub media: Vec<Utf8PathBuf>,
    /// The update source devices read: a folder, or ftp://[user@]host[:port]/path
    /// or ftps://... (explicit TLS).
    pub target: String,
    #[command(flatten)]
    pub trust: Trust,
    /// Keep ferry's state here instead of TARGET/.ferry (forces --switch ordered).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<Utf8PathBuf>,
    /// Import only snapshots of this repository.
    #[arg(long, value_name = "ID")]
    pub repository: Option<String>,
    /// Install this sequence, not the newest (it must still be newer than
    /// the installed one).
    #[arg(long, value_name = "N")]
    pub sequence: Option<u64>,
    #[command(flatten)]
    pub install: InstallArgs,
    #[command(flatten)]
    pub ftp: FtpArgs,
    #[command(flatten)]
    pub stage: super::verdict::StageArgs,
}

/// Installs the snapshot and prints what changed.
pub fn run(args: &ImportArgs, ctx: &Context) -> ferry::Result<i32> {
    let target = open_target(&args.target, args.state_dir.as_deref(), args.install.mkpath, &args.ftp)?;
    let options = import_options(&args.install, args.media.clone(), args.repository.clone(), args.sequence, ctx.now);
    if args.stage.stage {
        // Staging applies the rotations on the media here; they are not
        // journaled (only `import_with_store` journals them).
        if let Some(dir) = super::stored_trust_dir(&args.trust)?.filter(|_| !args.install.dry_run) {
            for applied in ferry::trust::rotation::apply_from_media(&dir, &args.media)? {
                ctx.out.note(&format!("applied {}", applied.describe()));
            }
        }
        let trust = load_trust(&args.trust)?;
        return super::verdict::stage(&args.stage, target.as_ref(), &options, &trust, ctx);
    }
    let progress = ctx.out.progress();
    // With the trust store, rotation statements on the media change it
    // before the snapshot is checked against it (in the library).
    let (report, elapsed) = match super::stored_trust_dir(&args.trust)? {
        Some(dir) => Timing::measure(|| import::import_with_store(target.as_ref(), &options, &dir, &progress)),
        None => {
            let trust = load_trust(&args.trust)?;
            Timing::measure(|| import::import(target.as_ref(), &options, &trust, &progress))
        }
    };
    let report = report?;
    progress.finish();
    // Every byte of the snapshot is verified as it streams in, changed or not.
    let moved = Some(report.snapshot.bytes).filter(|_| !report.dry_run);
    ctx.out.timed_report(&report, &Timing::new(elapsed, moved), || text(&report));
    Ok(exit::OK)
}

/// The import's summary, for people.
pub fn text(report: &import::ImportReport) -> String {
    if report.dry_run {
        return dry_run_text(report);
    }
    let mut text = String::new();
    for line in &report.recovered {
        text.push_str(&format!("recovered: {line}\n"));
    }
    if report.repaired > 0 {
        text.push_str(&format!(
            "repaired {} of {} sequence {} at {} ({} copied from the drive)",
            ferry::report::counted(report.repaired, "file", "files"),
            report.snapshot.repository,
            report.snapshot.sequence,
            report.target,
            ferry::report::human_bytes(report.bytes_transferred)
        ));
        return text;
    }
    if report.switch == SwitchUsed::None {
        text.push_str(&format!(
            "{} sequence {} is already installed at {}; nothing changed",
            report.snapshot.repository, report.snapshot.sequence, report.target
        ));
        return text;
    }
    text.push_str(&format!(
        "installed {} sequence {} at {} ({} switch)\n  {} added, {} changed, {}, {} copied; signed by key {}{}",
        report.snapshot.repository,
        report.snapshot.sequence,
        report.target,
        report.switch.as_str(),
        report.added,
        report.changed,
        removed_text(report),
        ferry::report::human_bytes(report.bytes_transferred),
        report.snapshot.signed_by,
        report.previous_sequence.map_or(String::new(), |p| format!("; previous sequence {p} kept for rollback"))
    ));
    text
}

fn dry_run_text(report: &import::ImportReport) -> String {
    let what = format!("{} sequence {}", report.snapshot.repository, report.snapshot.sequence);
    if !report.changes_anything() {
        return format!("dry run: {what} is already installed at {}; nothing would change", report.target);
    }
    let verb = if report.repaired > 0 { "repair" } else { "install" };
    format!(
        "dry run: would {verb} {what} at {}\n  {} added, {} changed, {}, {} to copy; signed by key {}\n  nothing was written",
        report.target,
        report.added,
        report.changed,
        removed_text(report),
        ferry::report::human_bytes(report.bytes_transferred),
        report.snapshot.signed_by,
    )
}

/// "N removed", and how many of them the snapshot declines
/// (formats/policy-v1.md §6 PS5).
fn removed_text(report: &import::ImportReport) -> String {
    match report.removed_declined {
        0 => format!("{} removed", report.removed),
        declined => format!("{} removed ({declined} removed as declined)", report.removed),
    }
}
