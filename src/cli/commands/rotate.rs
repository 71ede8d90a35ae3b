//! `ferry rotate`.

use super::Context;
use crate::cli::{exit, secrets};
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::rotate;
use ferry::signing::SecretKey;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry rotate /media/usb --repository av-bases --number 1 --threshold 1 \\
      --add /etc/ferry/new.pub --remove 0762f6534316a734 --key /etc/ferry/updates.key
  ferry rotate /media/usb --repository av-bases --number 2 --threshold 2 \\
      --add /etc/ferry/third.pub --key /etc/ferry/new.key --key /etc/ferry/second.key

Environment:
  FERRY_PASSPHRASE  the keys' passphrase, when --passphrase-file is not given (else a prompt)";

/// `ferry rotate`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct RotateArgs {
    /// The drive to write the statement to.
    pub media: Utf8PathBuf,
    /// The repository whose keys change.
    #[arg(long, value_name = "ID")]
    pub repository: String,
    /// The statement's place in the repository's chain of rotations (1 for
    /// the first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub number: u64,
    /// How many distinct keys must sign afterwards.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threshold: u16,
    /// A public key that joins (repeatable).
    #[arg(long, value_name = "KEY.pub")]
    pub add: Vec<Utf8PathBuf>,
    /// The id of a key that leaves (repeatable).
    #[arg(long, value_name = "KEY_ID")]
    pub remove: Vec<String>,
    /// A secret key that signs the statement: as many as the sites' current
    /// threshold (repeatable).
    #[arg(long, value_name = "PREFIX.key", required = true)]
    pub key: Vec<Utf8PathBuf>,
    /// Read the keys' passphrase from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<Utf8PathBuf>,
}

/// Writes a signed rotation statement and prints where it went.
pub fn run(args: &RotateArgs, ctx: &Context) -> ferry::Result<i32> {
    let keys = args
        .key
        .iter()
        .map(|path| {
            SecretKey::load(path, &mut |id| secrets::existing_passphrase(args.passphrase_file.as_deref(), path, id))
        })
        .collect::<ferry::Result<Vec<_>>>()?;
    let options = rotate::RotateOptions {
        media: args.media.clone(),
        repository: args.repository.clone(),
        number: args.number,
        threshold: usize::from(args.threshold),
        add: args.add.clone(),
        remove: args.remove.clone(),
        created: ctx.now,
    };
    let report = rotate::rotate(&options, &keys)?;
    ctx.out.report(&report, || {
        format!(
            "wrote rotation {} of {} signed by {} to {}",
            report.number,
            report.repository,
            report.signed_by.join(", "),
            report.path
        )
    });
    Ok(exit::OK)
}
