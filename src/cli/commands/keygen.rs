//! `ferry keygen`.

use super::Context;
use crate::cli::{exit, secrets};
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::keygen;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry keygen /etc/ferry/updates
      asks for a passphrase twice; writes updates.key (mode 0600) and updates.pub
  ferry keygen /etc/ferry/updates --passphrase-file /root/ferry-passphrase
  ferry keygen ./test-key --no-passphrase

Environment:
  FERRY_PASSPHRASE  the passphrase, when --passphrase-file is not given (else a prompt)";

/// `ferry keygen`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct KeygenArgs {
    /// Where to write the keys: PREFIX.key and PREFIX.pub.
    pub prefix: Utf8PathBuf,
    /// Store the secret key unencrypted.
    #[arg(long, conflicts_with = "passphrase_file")]
    pub no_passphrase: bool,
    /// Read the passphrase from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<Utf8PathBuf>,
}

/// Makes a key pair and prints where it went.
pub fn run(args: &KeygenArgs, ctx: &Context) -> ferry::Result<i32> {
    let passphrase =
        if args.no_passphrase { None } else { Some(secrets::new_passphrase(args.passphrase_file.as_deref())?) };
    let report = keygen::keygen(&args.prefix, passphrase.as_ref().map(|p| p.as_slice()))?;
    ctx.out.report(&report, || {
        format!(
            "created key {}\n  secret: {} ({})\n  public: {} (copy this to the importing sites)",
            report.key_id,
            report.secret_key,
            if report.protected { "encrypted with your passphrase" } else { "NOT encrypted" },
            report.public_key
        )
    });
    Ok(exit::OK)
}
