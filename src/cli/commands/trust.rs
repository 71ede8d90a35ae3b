//! `ferry trust add|threshold|list|remove`.

use super::{Context, trust_store_dir};
use crate::cli::exit;
use camino::Utf8PathBuf;
use clap::{Args, Subcommand};
use ferry::ops::trust::{self, TrustReport};

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry trust add /media/keys/updates.pub --repository av-bases
  ferry trust threshold av-bases 2
  ferry trust list
  ferry trust remove 0762f6534316a734

Environment:
  FERRY_TRUST_STORE  the trust store folder, when --trust-store is not given";

/// `ferry trust`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct TrustArgs {
    /// The trust store folder (else FERRY_TRUST_STORE, $XDG_CONFIG_HOME/ferry
    /// or ~/.config/ferry).
    #[arg(long, value_name = "DIR", global = true)]
    pub trust_store: Option<Utf8PathBuf>,
    #[command(subcommand)]
    pub action: TrustAction,
}

/// What to do to the trust store.
#[derive(Debug, Subcommand)]
pub enum TrustAction {
    /// Trust a public key (KEY.pub) for a repository, or for every repository.
    Add {
        /// The public key file.
        #[arg(value_name = "KEY.pub")]
        key: Utf8PathBuf,
        /// Trust it for this repository only (default: every repository
        /// without keys of its own).
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// A label for people (letters, digits, . _ - @ +).
        #[arg(long, value_name = "LABEL")]
        name: Option<String>,
    },
    /// Set how many distinct trusted keys must sign a repository's snapshots.
    Threshold {
        /// The repository id, or `*` for every repository without keys of its own.
        #[arg(value_name = "ID")]
        repository: String,
        /// How many keys must sign.
        #[arg(value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        threshold: u16,
    },
    /// Show the trusted keys and thresholds.
    List,
    /// Stop trusting a key (in every repository, or in one).
    Remove {
        /// The key id (16 hex digits).
        #[arg(value_name = "KEY_ID")]
        key_id: String,
        /// Remove it from this repository's keys only.
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
    },
}

/// Runs one trust store action and prints the store.
pub fn run(args: &TrustArgs, ctx: &Context) -> ferry::Result<i32> {
    let dir = trust_store_dir(args.trust_store.as_deref())?;
    let report = match &args.action {
        TrustAction::Add { key, repository, name } => trust::add(&dir, key, repository.as_deref(), name.as_deref())?,
        TrustAction::Threshold { repository, threshold } => {
            trust::threshold(&dir, repository, usize::from(*threshold))?
        }
        TrustAction::List => trust::list(&dir)?,
        TrustAction::Remove { key_id, repository } => trust::remove(&dir, key_id, repository.as_deref())?,
    };
    ctx.out.report(&report, || text(&report));
    Ok(exit::OK)
}

fn text(report: &TrustReport) -> String {
    let mut lines = Vec::new();
    if !report.action.is_empty() {
        lines.push(report.action.clone());
    }
    lines.push(format!("{}: {}", report.store, ferry::report::counted(report.sections.len(), "section", "sections")));
    for section in &report.sections {
        lines.push(format!(
            "  repository {}: {} of {} must sign",
            section.repository,
            section.threshold,
            ferry::report::counted(section.keys.len(), "key", "keys")
        ));
        for key in &section.keys {
            lines.push(format!("    {} {}", key.id, key.label.as_deref().unwrap_or("")).trim_end().to_owned());
        }
    }
    lines.join("\n")
}
