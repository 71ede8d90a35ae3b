//! `ferry export`.

use super::Context;
use crate::cli::args::SigningKey;
use crate::cli::args::{Expiry, parse_expiry, parse_size, parse_time};
use crate::cli::exit;
use crate::cli::output::Timing;
use camino::Utf8PathBuf;
use clap::{Args, ValueEnum};
use ferry::drive::DriveFs;
use ferry::ops::export;
use ferry::workflow::inventory::Coverage;
use jiff::Timestamp;
use serde::Serialize;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry export /srv/update-repository /media/usb --key /etc/ferry/updates.key --repository av-bases
  ferry export /srv/update-repository /media/usb --key /etc/ferry/updates.key --prune 3
  ferry export /srv/update-repository /media/usb --key /etc/ferry/updates.key --prune 3 --dry-run
  ferry export /srv/update-repository /media/usb1 /media/usb2 --key /etc/ferry/updates.key
  ferry export /srv/update-repository /media/usb --key /etc/ferry/updates.key --policy policy.toml
  ferry export /srv/update-repository /media/usb --key /etc/ferry/updates.key --since /media/usb/receipt-site-a
  SOURCE_DATE_EPOCH=1764590400 ferry export samples/repository /tmp/usb \\
      --key samples/keys/TEST-ONLY-DO-NOT-USE.key --sequence 1 --expires never --not-a-drive

Environment:
  FERRY_PASSPHRASE       the key's passphrase, when --passphrase-file is not given (else a prompt)
  SOURCE_DATE_EPOCH      the creation time in Unix seconds, when --created is not given
  FERRY_NOT_A_DRIVE      1 (or true, yes, on) acts as --not-a-drive
  FERRY_LEDGER           the export ledger folder, when --ledger is not given
  FERRY_LEDGER_CONTENTS  --ledger-contents, when it is not given";

/// `ferry export`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ExportArgs {
    /// The repository folder to snapshot.
    pub source: Utf8PathBuf,
    /// The drive's mount point, or a folder on it; several drives when the
    /// snapshot does not fit on one (tar volumes fill each in turn).
    #[arg(required = true, num_args = 1..)]
    pub media: Vec<Utf8PathBuf>,
    #[command(flatten)]
    pub signing: SigningKey,
    /// Repository id (default: the source folder's name, in lower case).
    #[arg(long, value_name = "ID")]
    pub repository: Option<String>,
    /// Sequence number (default: goes up by itself).
    #[arg(long, value_name = "N")]
    pub sequence: Option<u64>,
    /// How long the snapshot may be imported: 90s, 12h, 30d, 2w, 1d12h, "2 weeks", or never
    /// (days are 24 hours, weeks 7 days).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_expiry)]
    pub expires: Expiry,
    /// Creation time to record: RFC 3339, a date (2026-12-02, midnight UTC) or
    /// @UNIX-SECONDS (default: SOURCE_DATE_EPOCH, else now).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub created: Option<Timestamp>,
    /// Glob naming index files, installed after the data they list
    /// (repeatable; default: every *.xml and *.idx file and everything in a folder named index).
    #[arg(long, value_name = "GLOB")]
    pub index: Vec<String>,
    /// Skip reading the media back after writing.
    #[arg(long)]
    pub no_read_back: bool,
    /// How to store the payload: tar volumes (the default, safe on FAT32 and
    /// exFAT), or a plain folder tree to browse and copy by hand.
    #[arg(long, value_enum, default_value = "tar")]
    pub layout: LayoutArg,
    /// Largest tar volume: bytes, or with K, M, G (powers of 1024); a file
    /// larger than a volume is split across volumes.
    #[arg(long, value_name = "SIZE", default_value = "4000000000", value_parser = parse_size)]
    pub volume_size: u64,
    /// After exporting, keep only the newest N snapshots of this repository
    /// on the media and remove older and unfinished ones.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub prune: Option<u64>,
    /// Put at most SIZE on each drive (default: its free space), to split a
    /// snapshot over several drives: K, M, G as for --volume-size.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub drive_size: Option<u64>,
    /// The drive's filesystem, whose limits are checked before writing
    /// (default: detected).
    #[arg(long, value_enum, value_name = "FS")]
    pub target_fs: Option<TargetFsArg>,
    /// Create MEDIA's missing parent folders too (without it, only MEDIA
    /// itself may be missing).
    #[arg(long)]
    pub mkpath: bool,
    /// Export into a folder that is not a removable drive (on the system
    /// disk or the source's filesystem), on purpose.
    #[arg(long, env = "FERRY_NOT_A_DRIVE", hide_env_values = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub not_a_drive: bool,
    /// The export ledger folder, where every export of a repository is
    /// recorded so that sequences never repeat or go backwards (default:
    /// $XDG_STATE_HOME/ferry, else ~/.local/state/ferry).
    #[arg(long, value_name = "DIR", env = "FERRY_LEDGER")]
    pub ledger: Option<Utf8PathBuf>,
    /// Check the source and the drives and say what would be written (and
    /// pruned), without writing anything or asking for the passphrase.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// The approval policy (formats/policy-v1.md): export only what it
    /// approves, undefined updates only where it allows them, never declined
    /// ones, and nothing whose licence terms are not accepted.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<Utf8PathBuf>,
    /// Export only files these globs cover (a folder covers what is below
    /// it), plus every index file: a partial snapshot (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Export only the components this inventory lists (`ferry inventory`,
    /// formats/inventory-v1.md), plus every index file.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<Utf8PathBuf>,
    /// Export a delta: only what the snapshot held at an isolated site
    /// lacks. A receipt file (ferry receipt), a manifest file, or a snapshot
    /// id recorded in the ledger; repeat for several sites (one medium
    /// serves all).
    #[arg(long, value_name = "RECEIPT")]
    pub since: Vec<String>,
    /// Public key of an isolated site, or a folder of them, to check signed
    /// receipts given to --since (repeatable).
    #[arg(long, value_name = "SITE.pub")]
    pub site_trust: Vec<Utf8PathBuf>,
    /// Public key, or a folder of them, that signed earlier exports (the
    /// key before a rotation): the ledger's copies of the snapshots --since
    /// names, or that --policy/--only keep files from, may be signed by it
    /// (repeatable). Without it they must be signed by --key, or named by a
    /// receipt signed with a --site-trust key.
    #[arg(long, value_name = "KEY.pub")]
    pub base_trust: Vec<Utf8PathBuf>,
    /// With --policy, --only or --inventory: keep nothing from the previous
    /// export, so that the snapshot imports at any site, a new one included;
    /// held and uncovered files are then removed where they are installed.
    /// Without it they stay as installed, and a site must hold the previous
    /// export (or the snapshot --since names).
    #[arg(long, conflicts_with = "since")]
    pub standalone: bool,
    /// With --since: read and hash every source file, ignoring the stat
    /// cache of the ledger that spares re-reading files whose size, times
    /// and inode did not change (for sources on filesystems without
    /// trustworthy change times).
    #[arg(long, requires = "since")]
    pub rehash: bool,
    /// Keep in the ledger a copy of each exported file of at least SIZE
    /// (K, M, G as for --volume-size; up to 64 MiB), the old versions later
    /// deltas make binary patches from; 0 keeps every file, none keeps
    /// nothing (changed files then cross whole).
    #[arg(long, value_name = "SIZE", env = "FERRY_LEDGER_CONTENTS", default_value = "64K", value_parser = parse_contents_floor)]
    pub ledger_contents: ContentsFloor,
}

/// `--ledger-contents`: the smallest file whose content the ledger keeps,
/// or `None` for none (formats/ledger-v1.md §7 O5).
#[derive(Debug, Clone, Copy)]
pub struct ContentsFloor(Option<u64>);

fn parse_contents_floor(text: &str) -> Result<ContentsFloor, String> {
    if text == "none" {
        return Ok(ContentsFloor(None));
    }
    parse_size(text).map(|floor| ContentsFloor(Some(floor))).map_err(|e| format!("{e}, or none"))
}

/// `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// Tar volumes under `volumes/`.
    Tar,
    /// Plain files under `payload/`.
    Tree,
}

/// `--target-fs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetFsArg {
    /// FAT32 (FAT12 and FAT16 too: their limits are no looser).
    Fat32,
    /// exFAT.
    Exfat,
    /// NTFS.
    Ntfs,
    /// Any other filesystem: only Linux's own limits apply.
    Any,
}

impl From<TargetFsArg> for DriveFs {
    fn from(arg: TargetFsArg) -> Self {
        match arg {
            TargetFsArg::Fat32 => DriveFs::Fat32,
            TargetFsArg::Exfat => DriveFs::Exfat,
            TargetFsArg::Ntfs => DriveFs::Ntfs,
            TargetFsArg::Any => DriveFs::Any,
        }
    }
}

/// Exports the snapshot and prints what went where.
pub fn run(args: &ExportArgs, ctx: &Context) -> ferry::Result<i32> {
    let options = options(args)?;
    // Mistyped paths are reported before the passphrase is asked for.
    export::preflight(&options)?;
    let policy = args.policy.as_deref().map(ferry::policy::Policy::load).transpose()?;
    let only = requested(args)?;
    let selection = export::Selection { policy: policy.as_ref(), only: only.as_ref(), standalone: args.standalone };
    if args.dry_run {
        let plan = export::plan_selected(&options, selection)?;
        ctx.out.report(&plan, || plan_text(&plan));
        return Ok(exit::OK);
    }
    let key = args.signing.load()?;
    let progress = ctx.out.progress();
    let (report, elapsed) = Timing::measure(|| export::export_selected(&options, selection, &key, &progress));
    let report = report?;
    progress.finish();
    let json = ExportJson { report: &report, dir: &report.snapshot_dir, signed_by: &report.key_id };
    ctx.out.timed_report(&json, &Timing::new(elapsed, Some(report.bytes)), || text(&report));
    Ok(exit::OK)
}

/// Export's report in JSON, with the names every other command uses for
/// the same things added beside the older `snapshot_dir` and `key_id`
/// (deprecated, kept: docs/reference/json.md).
#[derive(Serialize)]
struct ExportJson<'a> {
    #[serde(flatten)]
    report: &'a export::ExportReport,
    dir: &'a camino::Utf8Path,
    signed_by: &'a str,
}

fn options(args: &ExportArgs) -> ferry::Result<export::ExportOptions> {
    let created = match args.created {
        Some(time) => Some(time),
        None => source_date_epoch()?,
    };
    Ok(export::ExportOptions {
        source: args.source.clone(),
        media: args.media[0].clone(),
        more_media: args.media[1..].to_vec(),
        drive_size: args.drive_size,
        target_fs: args.target_fs.map(DriveFs::from),
        repository: args.repository.clone(),
        sequence: args.sequence,
        created,
        expires_after: args.expires.0,
        index_patterns: if args.index.is_empty() {
            ferry::scan::DEFAULT_INDEX_PATTERNS.iter().map(|p| p.to_string()).collect()
        } else {
            args.index.clone()
        },
        read_back: !args.no_read_back,
        layout: match args.layout {
            LayoutArg::Tree => export::MediaLayout::Tree,
            LayoutArg::Tar => export::MediaLayout::Tar { volume_size: args.volume_size },
        },
        prune: args.prune.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        make_parents: args.mkpath,
        not_a_drive: args.not_a_drive,
        ledger: args.ledger.clone().or_else(ferry::ledger::default_location),
        since: args.since.clone(),
        site_keys: if args.site_trust.is_empty() {
            None
        } else {
            Some(ferry::signing::TrustStore::load(&args.site_trust)?)
        },
        base_keys: if args.base_trust.is_empty() {
            Vec::new()
        } else {
            ferry::signing::TrustStore::load(&args.base_trust)?.keys().into_iter().cloned().collect()
        },
        rehash: args.rehash,
        ledger_contents: args.ledger_contents.0,
    })
}

fn plan_text(plan: &export::ExportPlan) -> String {
    let drives = plan.parts.iter().map(|part| part.as_str()).collect::<Vec<_>>().join(", ");
    let mut text = format!(
        "dry run: would export {} sequence {} to {drives}\n  {}, {}, {} in {}",
        plan.repository,
        plan.sequence,
        ferry::report::counted(plan.files, "file", "files"),
        ferry::report::counted(plan.folders, "folder", "folders"),
        ferry::report::human_bytes(plan.bytes),
        if plan.layout == "tar" { "tar volumes" } else { "a folder tree" },
    );
    for dir in &plan.would_prune {
        text.push_str(&format!("\n  would prune {dir}"));
    }
    for entry in &plan.left_alone {
        text.push_str(&format!("\n  would leave alone {entry}"));
    }
    text + "\n  the drives have room and suit the files; nothing was written"
}

/// The components `--only` and `--inventory` request, if any.
fn requested(args: &ExportArgs) -> ferry::Result<Option<Coverage>> {
    let mut patterns = args.only.clone();
    if let Some(file) = &args.inventory {
        patterns.extend(Coverage::load(file)?.patterns);
    }
    if args.only.is_empty() && args.inventory.is_none() {
        return Ok(None);
    }
    Coverage::new(patterns, &|_| "--only".into()).map(Some)
}

fn source_date_epoch() -> ferry::Result<Option<Timestamp>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => ferry::clock::parse_flexible(&format!("@{text}"))
            .map(Some)
            .map_err(|e| ferry::Error::InvalidArgument(format!("SOURCE_DATE_EPOCH: {e}"))),
        Err(_) => Ok(None),
    }
}

fn text(report: &export::ExportReport) -> String {
    format!(
        "exported {} sequence {} to {}\n  {}, {}, {}; snapshot {}; signed by key {}; expires {}{}",
        report.repository,
        report.sequence,
        report.snapshot_dir,
        ferry::report::counted(report.files, "file", "files"),
        ferry::report::counted(report.folders, "folder", "folders"),
        ferry::report::human_bytes(report.bytes),
        &report.snapshot_id[..12],
        report.key_id,
        report.expires,
        if report.read_back_verified { "\n  read back from the media and verified" } else { "" }
    ) + &delta_text(report)
        + &report.pruned.iter().map(|dir| format!("\n  pruned {dir}")).collect::<String>()
        + &report.left_alone.iter().map(|entry| format!("\n  left alone {entry}")).collect::<String>()
        + &report.policy.as_ref().map_or(String::new(), |p| format!("\n{}", super::policy::held_text(p)))
        + &kept_text(report)
}

/// What becomes of held and uncovered files at a site (formats/policy-v1.md
/// §6 PS6): kept from the base, or, without one, removed where installed.
fn kept_text(report: &export::ExportReport) -> String {
    let partial = || format!("\n  partial: only what {} covers, and the index files", report.covers.join(" "));
    if report.kept_files > 0 {
        let bases = report.bases.iter().map(|b| &b[..12]).collect::<Vec<_>>().join(" or ");
        return format!(
            "{}\n  kept: {} held or not covered stay as installed; a site must hold snapshot {bases} (else export --since its receipt, or --standalone)",
            if report.partial { partial() } else { String::new() },
            ferry::report::counted(report.kept_files, "file", "files"),
        );
    }
    let held = report.policy.as_ref().is_some_and(|p| p.held_files > 0);
    let removes = " (an import removes what it does not carry)";
    let held = if held {
        "\n  held files are not in this snapshot: an import removes them where they are installed"
    } else {
        ""
    };
    held.to_owned() + &if report.partial { partial() + removes } else { String::new() }
}

/// For a delta: its bases and what the medium carries.
fn delta_text(report: &export::ExportReport) -> String {
    if report.bases.is_empty() {
        return String::new();
    }
    let cached = match report.from_stat_cache {
        0 => String::new(),
        n => format!("; {} unchanged by their stat data, not read", ferry::report::counted(n, "file", "files")),
    };
    format!(
        "\n  delta{}: {} on the medium for {} of files{cached}",
        super::list::delta_note(&report.bases).trim_end_matches(')').replacen(" (delta", "", 1),
        ferry::report::human_bytes(report.carried_bytes),
        ferry::report::human_bytes(report.bytes)
    )
}
