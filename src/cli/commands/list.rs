//! `ferry list`.

use super::{Context, optional_trust};
use crate::cli::args::Trust;
use crate::cli::exit;
use camino::Utf8PathBuf;
use clap::Args;
use ferry::ops::list;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry list /media/usb
  ferry list /media/usb --trust /etc/ferry/trusted/
  ferry list /media/usb --json

Environment:
  FERRY_TRUST        trusted keys, colon-separated, when neither --trust nor --trust-store is given
  FERRY_TRUST_STORE  the trust store folder, when none of the above is given";

/// `ferry list`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ListArgs {
    /// The drive, or a folder above `ferry/`.
    pub media: Utf8PathBuf,
    #[command(flatten)]
    pub trust: Trust,
}

/// Lists the snapshots on a drive.
pub fn run(args: &ListArgs, ctx: &Context) -> ferry::Result<i32> {
    let trust = optional_trust(&args.trust)?;
    let report = list::list(&args.media, trust.as_ref(), ctx.now)?;
    ctx.out.report(&report, || text(&report));
    Ok(exit::OK)
}

fn text(report: &list::ListReport) -> String {
    let mut text = format!(
        "{}: {}",
        report.media,
        ferry::report::counted(report.snapshots.len(), "snapshot folder", "snapshot folders")
    );
    for s in &report.snapshots {
        let sequence = s.sequence.map_or("?".into(), |n| n.to_string());
        text.push_str(&format!("\n  {} {} [{}]", s.repository, sequence, s.status));
        if let Some(part) = &s.part {
            text.push_str(&format!(" part {part} of a snapshot spanning several drives;"));
        }
        if let (Some(layout), Some(files), Some(bytes)) = (s.layout, s.files, s.bytes) {
            let volumes = match s.volumes {
                Some(n) if layout == "tar" => format!(" in {}", ferry::report::counted(n, "volume", "volumes")),
                _ => String::new(),
            };
            text.push_str(&format!(
                " {layout}{volumes}, {}, {}, created {}, expires {}, signed by key {}",
                ferry::report::counted(files, "file", "files"),
                ferry::report::human_bytes(bytes),
                s.created.as_deref().unwrap_or("?"),
                s.expires.as_deref().unwrap_or("?"),
                s.signed_by.as_deref().unwrap_or("?")
            ));
        }
        if let Some(bases) = &s.bases {
            text.push_str(&delta_note(bases));
        }
        if let Some(problem) = &s.problem {
            text.push_str(&format!(": {problem}"));
        }
        text.push_str(&format!("\n    {}", s.dir));
    }
    text
}

/// ` (delta from snapshot X or Y)` for a delta's bases, else nothing.
pub fn delta_note(bases: &[String]) -> String {
    if bases.is_empty() {
        return String::new();
    }
    let short: Vec<&str> = bases.iter().map(|id| &id[..id.len().min(12)]).collect();
    format!(" (delta from snapshot {})", short.join(" or "))
}
