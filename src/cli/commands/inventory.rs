//! `ferry inventory`.

use super::{Context, open_target};
use crate::cli::args::FtpArgs;
use crate::cli::exit;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::inventory::{self, InventoryOptions};

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry inventory /srv/updates --out /media/usb/inventory.txt
  ferry inventory /srv/updates --read --depth 1 --out /media/usb/inventory.txt

Environment:
  FERRY_FTP_PASSWORD  the FTP password, when --password-file is not given (else ~/.netrc)";

/// `ferry inventory`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct InventoryArgs {
    /// The update source: a folder or an ftp:// / ftps:// URL.
    pub target: String,
    /// Write the inventory file here (replaced); without it, only print the patterns.
    #[arg(long, value_name = "FILE")]
    pub out: Option<Utf8PathBuf>,
    /// Cut each file's path to its first N components: `bases/daily/x.dat` is `bases/daily` with 2.
    #[arg(long, value_name = "N", default_value = "2", value_parser = clap::value_parser!(u16).range(1..))]
    pub depth: u16,
    /// Count only files read since they were written (access time later than
    /// modification time; folder targets, not mounted noatime).
    #[arg(long)]
    pub read: bool,
    /// Where ferry's state is, if not TARGET/.ferry.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<Utf8PathBuf>,
    #[command(flatten)]
    pub ftp: FtpArgs,
}

/// Derives the inventory and prints its patterns.
pub fn run(args: &InventoryArgs, ctx: &Context) -> ferry::Result<i32> {
    let target = open_target(&args.target, args.state_dir.as_deref(), false, &args.ftp)?;
    let options = InventoryOptions { depth: usize::from(args.depth), read: args.read, out: args.out.clone() };
    let report = inventory::inventory(target.as_ref(), &options, ctx.now)?;
    ctx.out.report(&report, || {
        let mut lines = vec![format!(
            "{}: {} sequence {}: {} from {}{}",
            report.target,
            report.repository,
            report.sequence,
            ferry::report::counted(report.patterns.len(), "pattern", "patterns"),
            ferry::report::counted(report.files, "file", "files"),
            if report.method == "read" { " read since written" } else { " installed" },
        )];
        lines.extend(report.patterns.iter().map(|p| format!("  {p}")));
        if let Some(out) = &report.out {
            lines.push(format!("written to {out}: carry it to the connected host for `ferry export --inventory`"));
        }
        lines.join("\n")
    });
    Ok(exit::OK)
}
