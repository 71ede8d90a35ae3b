//! `ferry diff`.

use super::{Context, optional_trust};
use crate::cli::args::Trust;
use crate::cli::exit;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::diff;
use ferry::report::human_bytes;
use ferry::signing::TrustStore;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry diff /media/usb/receipt-site-a /srv/update-repository --trust /etc/ferry/updates.pub
  ferry diff /media/usb/receipt-site-a /srv/update-repository --site-trust /etc/ferry/sites/ --files
  ferry diff /media/old-drive /media/usb --trust /etc/ferry/updates.pub --json
  ferry diff /srv/repository-yesterday /srv/update-repository

Environment:
  FERRY_TRUST   colon-separated trusted public keys, when --trust is not given
  FERRY_LEDGER  the export ledger folder, when --ledger is not given";

/// `ferry diff`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct DiffArgs {
    /// The older side: a source folder, a drive or snapshot folder, or a receipt.
    pub old: Utf8PathBuf,
    /// The newer side: a source folder, a drive or snapshot folder, or a receipt.
    pub new: Utf8PathBuf,
    #[command(flatten)]
    pub trust: Trust,
    /// Public key of an isolated site, or a folder of them, to check signed
    /// receipts (repeatable).
    #[arg(long, value_name = "SITE.pub")]
    pub site_trust: Vec<Utf8PathBuf>,
    /// The export ledger folder, where receipts' snapshots are looked up
    /// (default: $XDG_STATE_HOME/ferry, else ~/.local/state/ferry).
    #[arg(long, value_name = "DIR", env = "FERRY_LEDGER")]
    pub ledger: Option<Utf8PathBuf>,
    /// The repository, on drives holding several.
    #[arg(long, value_name = "ID")]
    pub repository: Option<String>,
    /// Do not measure binary patches (faster: reads no file twice).
    #[arg(long)]
    pub no_patches: bool,
    /// List every added, removed and changed file.
    #[arg(long)]
    pub files: bool,
}

/// Compares and prints the changes and the bytes a delta would carry.
pub fn run(args: &DiffArgs, ctx: &Context) -> ferry::Result<i32> {
    let site_keys = if args.site_trust.is_empty() { None } else { Some(TrustStore::load(&args.site_trust)?) };
    let options = diff::DiffOptions {
        old: args.old.clone(),
        new: args.new.clone(),
        trust: optional_trust(&args.trust)?,
        site_keys,
        ledger: args.ledger.clone().or_else(ferry::ledger::default_location),
        repository: args.repository.clone(),
        measure_patches: !args.no_patches,
    };
    let report = diff::diff(&options)?;
    ctx.out.report(&report, || text(&report, args.files));
    Ok(exit::OK)
}

fn text(report: &diff::DiffReport, files: bool) -> String {
    let mut text = format!(
        "from {}\n  to {}\n  {} added, {} removed, {} changed, {} unchanged\n  full export {}; delta with whole files {}",
        report.old,
        report.new,
        report.added.len(),
        report.removed.len(),
        report.changed.len(),
        report.unchanged,
        human_bytes(report.full_bytes),
        human_bytes(report.delta_bytes_whole),
    );
    match report.delta_bytes_with_patches {
        Some(bytes) => text.push_str(&format!(
            "; with binary patches {} ({} patched)",
            human_bytes(bytes),
            ferry::report::counted(report.patched_files, "file", "files")
        )),
        None => text.push_str("; with binary patches: not measured (one side has no file contents here)"),
    }
    if files {
        let size = |s: Option<u64>| s.map_or("-".to_owned(), |s| s.to_string());
        for (mark, list) in [("+", &report.added), ("-", &report.removed), ("~", &report.changed)] {
            for change in list {
                text.push_str(&format!(
                    "\n  {mark} {} ({} -> {}){}",
                    change.path,
                    size(change.old_size),
                    size(change.new_size),
                    if change.mode_only { " mode only" } else { "" }
                ));
            }
        }
    }
    text
}
