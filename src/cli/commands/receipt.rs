//! `ferry receipt`.

use super::{Context, open_target};
use crate::cli::args::FtpArgs;
use crate::cli::{exit, secrets};
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::receipt;
use ferry::signing::SecretKey;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry receipt /srv/updates /media/usb/receipt-site-a
  ferry receipt /srv/updates /media/usb/receipt-site-a --key /etc/ferry/site-a.key
  ferry receipt ftp://ferry@updates.example/av /media/usb/receipt-site-b

Environment:
  FERRY_PASSPHRASE    the site key's passphrase, when --passphrase-file is not given
  FERRY_FTP_PASSWORD  the FTP password, when --password-file is not given (else ~/.netrc)";

/// `ferry receipt`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ReceiptArgs {
    /// The update source: a folder or an ftp:// / ftps:// URL.
    pub target: String,
    /// The receipt file to write.
    pub out: Utf8PathBuf,
    /// Sign the receipt with this key of the isolated site (PREFIX.key).
    #[arg(long, value_name = "PREFIX.key")]
    pub key: Option<Utf8PathBuf>,
    /// Read the key's passphrase from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<Utf8PathBuf>,
    /// Where ferry's state is, if not TARGET/.ferry.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<Utf8PathBuf>,
    #[command(flatten)]
    pub ftp: FtpArgs,
}

/// Writes the receipt and says what it states.
pub fn run(args: &ReceiptArgs, ctx: &Context) -> ferry::Result<i32> {
    let key = match &args.key {
        None => None,
        Some(path) => Some(SecretKey::load(path, &mut |id| {
            secrets::existing_passphrase(args.passphrase_file.as_deref(), path, id)
        })?),
    };
    let target = open_target(&args.target, args.state_dir.as_deref(), false, &args.ftp)?;
    let report = receipt::receipt(target.as_ref(), &args.out, key.as_ref(), ctx.now)?;
    ctx.out.report(&report, || {
        format!(
            "wrote {}: {} serves {} sequence {} (snapshot {}){}",
            report.receipt,
            report.target,
            report.repository,
            report.sequence,
            &report.snapshot_id[..12],
            report.signed_by.as_ref().map_or(", unsigned".into(), |id| format!(", signed by site key {id}"))
        )
    });
    Ok(exit::OK)
}
