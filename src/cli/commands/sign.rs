//! `ferry sign`.

use super::Context;
use crate::cli::args::SigningKey;
use crate::cli::exit;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::sign;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry sign /media/usb --key /etc/ferry/second-signer.key
  ferry sign /media/usb1 /media/usb2 --key /etc/ferry/second-signer.key --passphrase-file /root/pass

Environment:
  FERRY_PASSPHRASE  the key's passphrase, when --passphrase-file is not given (else a prompt)";

/// `ferry sign`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct SignArgs {
    /// The drive or one snapshot folder on it; every drive of a snapshot
    /// that spans several.
    #[arg(required = true, num_args = 1..)]
    pub media: Vec<Utf8PathBuf>,
    #[command(flatten)]
    pub signing: SigningKey,
}

/// Signs every snapshot on the drives and prints one line per snapshot.
pub fn run(args: &SignArgs, ctx: &Context) -> ferry::Result<i32> {
    let key = args.signing.load()?;
    let report = sign::sign(&args.media, &key)?;
    ctx.out.report(&report, || {
        report
            .snapshots
            .iter()
            .map(|s| {
                let what = if s.signed.is_empty() { "already signed by key" } else { "signed by key" };
                format!(
                    "{} sequence {}: {what} {} on {}; signatures now by {} ({})",
                    s.repository,
                    s.sequence,
                    s.key_id,
                    ferry::report::counted(s.signed.len() + s.already_signed.len(), "drive", "drives"),
                    s.signatures.join(", "),
                    s.dir
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(exit::OK)
}
