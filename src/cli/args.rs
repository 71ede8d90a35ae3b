//! Command-line arguments. Every option has a one-line summary and, where
//! it helps, a paragraph of prose shown by `--help`.

use super::commands;
use camino::Utf8PathBuf;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use jiff::{SignedDuration, Timestamp};

const ABOUT: &str = "Carry signed, verifiable software-update snapshots across an air gap.";

const LONG_ABOUT: &str = "\
ferry carries an update repository (antivirus databases, software modules, \
patches) from a connected host to an isolated network on removable media, and \
installs it there as the update source devices read: a local folder or a \
mounted shared folder.

On the connected host, `ferry export` copies the repository onto the drive \
together with a manifest listing every file's size and SHA-256, signed with \
an ed25519 key. On the isolated side, `ferry verify` checks a drive without \
writing anything, and `ferry import` verifies the signature against keys \
you trust and every byte as it streams in, then switches the update source \
to the new snapshot so that devices see either the old tree or the new one, \
never a mix. Older snapshots, other repositories and expired snapshots are \
refused.

Exit codes: 0 success (status: fresh), 1 error (I/O, target, lock), \
2 usage, 3 refused by verification or trust (nothing changed), \
4 status: out of date, 5 status: extremely out of date.";

const AFTER_HELP: &str = "\
Examples (one day's round trip; docs/guide/quickstart.md walks through it on the bundled sample):
  ferry keygen /etc/ferry/updates
  ferry export /srv/update-repository /media/usb --key /etc/ferry/updates.key --repository av-bases
  ferry verify /media/usb --trust /etc/ferry/trusted/
  ferry import /media/usb /srv/updates --trust /etc/ferry/trusted/
  ferry status /srv/updates

`ferry COMMAND --help` shows each command's examples and the environment variables it reads.";

/// The `ferry` command line.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments; also returns the command's name,
    /// for the JSON `command` field.
    pub fn parse_args() -> Result<(Cli, String), clap::Error> {
        let matches = Cli::command().try_get_matches().map_err(name_a_forgotten_target)?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut Cli::command()))?;
        let name = matches.subcommand_name().unwrap_or("ferry").to_owned();
        Ok((cli, name))
    }
}

/// `ferry import /media/usb` gives clap one path for two required
/// arguments: it fills TARGET and reports MEDIA missing, while the operator
/// almost always forgot TARGET. Name both, in the order they are given.
fn name_a_forgotten_target(error: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let import_usage = error.get(ContextKind::Usage).is_some_and(|usage| usage.to_string().contains("ferry import "));
    let media_missing = matches!(error.get(ContextKind::InvalidArg),
        Some(ContextValue::Strings(missing)) if missing.iter().any(|arg| arg.starts_with("<MEDIA>")));
    if error.kind() != ErrorKind::MissingRequiredArgument || !import_usage || !media_missing {
        return error;
    }
    clap::Error::raw(
        ErrorKind::MissingRequiredArgument,
        "`ferry import` needs the drive(s) first, then the update source to install into: \
         one of them is missing\nhint: ferry import MEDIA... TARGET, e.g. ferry import /media/usb /srv/updates --trust KEY.pub\n",
    )
    .with_cmd(&Cli::command())
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Print the result as JSON on stdout (errors too).
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print what ferry is doing, step by step.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Pretend the current time is TIME (RFC 3339, a date, or @UNIX-SECONDS), for
    /// checking expiry and freshness as of another moment.
    #[arg(long, global = true, value_name = "TIME", value_parser = parse_time, hide = true)]
    pub now: Option<Timestamp>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a signing key pair: PREFIX.key (secret) and PREFIX.pub.
    #[command(long_about = "\
Make an ed25519 signing key pair. PREFIX.key is the secret key, written with \
mode 0600 and encrypted with a passphrase (Argon2id and XChaCha20-Poly1305); \
keep it on the connected host. PREFIX.pub is the public key: copy it to every \
isolated site, where `--trust` names it. Each key has a short id that every \
message shows.

The passphrase comes from --passphrase-file, the FERRY_PASSPHRASE variable, \
or a prompt. --no-passphrase stores the key unencrypted, on purpose. Existing \
files are never overwritten.")]
    Keygen(commands::keygen::KeygenArgs),
    /// Snapshot a repository folder onto removable media, signed.
    #[command(long_about = "\
Snapshot the repository folder SOURCE onto MEDIA (the drive's mount point or \
a folder on it) as MEDIA/ferry/REPOSITORY/SEQUENCE/. Every file is read once \
and hashed while it is copied; then the manifest is written and signed. The \
signature is written last, so a drive pulled out too early never looks \
complete. Afterwards the drive is read back from the device and verified.

SOURCE may hold only regular files and folders with names every filesystem \
and Windows accept; anything else (symbolic links, devices, names that differ \
only in case, `CON`, `a:b`, ...) is refused up front with the full list.

The sequence number goes up by itself: by default it is the creation time in \
Unix seconds, or one more than the newest snapshot on the drive if that is \
higher. Set SOURCE_DATE_EPOCH or --created and --sequence for reproducible \
exports: the same source, sequence and time give the same bytes.")]
    Export(commands::export::ExportArgs),
    /// Check media: signature, expiry and every byte. Writes nothing.
    #[command(long_about = "\
Check every snapshot on MEDIA (a drive, or one snapshot folder): the \
signature must verify with a trusted key, the snapshot must not have \
expired, and every file must have the size and SHA-256 the manifest lists. \
Missing, damaged and extra files are listed. Nothing is written anywhere.")]
    Verify(commands::verify::VerifyArgs),
    /// List the snapshots on a drive: repository, sequence, layout, size, age.
    #[command(long_about = "\
List every snapshot folder on MEDIA (MEDIA/ferry/REPOSITORY/SEQUENCE/), by \
repository and sequence. With trusted keys (--trust or FERRY_TRUST) each \
complete snapshot's signature is checked and its manifest shown: layout, \
files, size, creation and expiry, signer. Without them only the folder names \
are shown, marked unchecked. Unfinished exports show as incomplete. No \
payload byte is read (that is `ferry verify`) and nothing is written.")]
    List(commands::list::ListArgs),
    /// Install the newest trusted snapshot from media into an update source.
    #[command(long_about = "\
Install the snapshot on MEDIA into TARGET, a local folder or a mounted \
shared folder (SMB/NFS), which devices use as their update source. \
Afterwards TARGET holds exactly the exported repository (plus ferry's state \
folder .ferry/), and devices need nothing from ferry to use it.

Refused, with nothing changed (exit code 3): a missing or bad signature, an \
untrusted key, a snapshot of another repository than the one installed, an \
older sequence than the installed one, an expired snapshot, and any file \
whose bytes differ from the manifest. Importing the installed snapshot again \
changes nothing.

Only files that changed are copied. On a local Linux filesystem the new tree \
is built beside the old one (unchanged files hard-linked) and swapped in with \
one atomic rename; elsewhere files are renamed into place in a safe order \
under a journal. An interrupted import is finished or rolled back by the \
next run. The previous snapshot is kept for `ferry rollback`.")]
    Import(commands::import::ImportArgs),
    /// Switch an update source back to its previous snapshot.
    #[command(long_about = "\
Switch TARGET back to the snapshot installed before the current one. This is \
the one deliberate way to lower the installed sequence; it is recorded in \
the state marker and in the audit journal (.ferry/audit). Only one step back is possible, and \
the snapshot rolled back from is not kept: import it again from its drive \
to return to it.")]
    Rollback(commands::rollback::RollbackArgs),
    /// Push an installed update source on to distribution points (FTP servers or folders).
    #[command(long_about = "\
Push the snapshot an update source serves (a folder ferry imported into) or \
a drive holds to one or more distribution points: FTP/FTPS servers or \
folders, all at once. SOURCE is first verified against its signed manifest, \
every byte; each TARGET then gets exactly what `ferry import` would do to \
it: only changed files are sent, under temporary names, renamed into place \
data first and index files last, with a journal and a lock on the target.

One line per target says `updated`, `up to date`, `refused` or `failed` and \
why. The exit code is 0 when every target succeeded, 3 when one refused the \
snapshot, 1 when one failed; running the same command again finishes only \
what failed.")]
    Publish(commands::publish::PublishArgs),
    /// Show what an update source serves and whether it is up to date.
    #[command(long_about = "\
Show the repository, sequence, creation time and age of the snapshot TARGET \
serves, and the freshness verdict used by the vendor documents: fresh, out \
of date (older than 1 day), extremely out of date (older than 7 days). Age \
counts from when the snapshot was taken on the connected host.

Exit codes: 0 fresh, 4 out of date, 5 extremely out of date, so a monitoring \
script can alert on them.")]
    Status(commands::status::StatusArgs),
    /// Print a target's audit journal and check its hash chain.
    #[command(long_about = "\
Print the audit journal of TARGET (.ferry/audit): every import, rollback, \
publish, repair, recovery, override, key rotation and refusal, with its \
time, repository, sequence, snapshot, the keys that signed, the operator \
and the reason. Each entry names the SHA-256 of the one before it; the \
first broken or missing link is reported by line and entry.

Exit codes: 0, or with --verify 3 when the chain is broken.")]
    Log(commands::log::LogArgs),
    /// Add your signature to media already exported and signed.
    #[command(long_about = "\
Add a signature by the secret key --key to every complete snapshot on MEDIA \
(a drive, or one snapshot folder; every drive of a snapshot that spans \
several). One line is appended to each drive's manifest.sig; nothing else on \
the drive changes. Sites whose trust store needs signatures by several keys \
(`ferry trust threshold`) install the snapshot once enough keys have signed. \
A key that already signed is not added twice. Run it on the connected side, \
after `ferry export`; check the drive with `ferry verify` first.")]
    Sign(commands::sign::SignArgs),
    /// Write a key rotation statement onto media, signed by the keys that count now.
    #[command(long_about = "\
Write a rotation statement for REPOSITORY onto MEDIA: the keys that join \
(--add), the keys that leave (--remove) and the new threshold. Sign it with \
as many of the keys the sites trust now as their threshold asks (--key, \
repeatable). `ferry import` with a trust store applies the statements on the \
drive in order before it checks the snapshot, and records them in the store; \
afterwards removed keys no longer count. A statement not signed by enough \
current keys, or one that would leave no usable key, is refused \
(formats/rotation-v1.md).")]
    Rotate(commands::rotate::RotateArgs),
    /// Keep the trusted keys and thresholds of this site (the trust store).
    #[command(long_about = "\
Keep the trust store of an isolated site: which public keys count for which \
repository, and how many of them must sign (the threshold). import, verify, \
list and publish use it when no --trust is given. The store is the file \
trust-store in --trust-store DIR, else FERRY_TRUST_STORE, else \
$XDG_CONFIG_HOME/ferry, else ~/.config/ferry; every change is written \
atomically (formats/trust-store-v1.md).

Keys added without --repository count for every repository that has no keys \
of its own. Weak (small-order) public keys are refused.")]
    Trust(commands::trust::TrustArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::completions::CompletionsArgs),
    /// Print the man page (roff), of ferry or of one command.
    Man(commands::man::ManArgs),
    /// Write a receipt of what an update source holds, for the connected side.
    #[command(long_about = "\
Write to OUT a small receipt stating exactly what TARGET (a folder or an \
ftp:// / ftps:// URL) serves: repository, sequence and snapshot id. Carry it \
back to the connected host, where `ferry diff` and delta exports read it to \
know what this site already has. With --key the receipt is signed with a key \
of this site (made with `ferry keygen`; not the exporting key), so the \
connected side can check where it came from. Nothing at TARGET changes; an \
existing OUT is replaced.")]
    Receipt(commands::receipt::ReceiptArgs),
    /// Show what changed between two snapshots and what a delta would carry.
    #[command(long_about = "\
Compare OLD and NEW, each a source folder, a drive (or one snapshot folder, \
checked with the trusted keys), or a receipt written by `ferry receipt` (its \
snapshot is looked up in the export ledger by snapshot id, and its site \
signature checked with --site-trust). Prints the files added, removed and \
changed, the bytes of a full export, and the bytes a delta would carry with \
every changed file whole and, where both sides have file contents here \
(source folders, tree drives), with binary patches. Writes nothing.")]
    Diff(commands::diff::DiffArgs),
    /// Check an approval policy against a repository: what would ship, what is held and why.
    #[command(long_about = "\
Apply the approval policy FILE (formats/policy-v1.md) to SOURCE as `ferry \
export --policy FILE` would, and show per component what ships and what is \
held back: declined updates, updates whose licence terms (EULA) are not \
accepted yet, and undefined updates where the policy does not ship them. \
Nothing is written.")]
    Policy(commands::policy::PolicyArgs),
    /// Record an operator's verdict on the snapshot a test update source serves.
    #[command(long_about = "\
Record pass or fail, with a reason, for the snapshot TARGET serves: a test \
update source that `ferry import --stage` installed it into. Use it when the \
snapshot was tested on the test devices by hand instead of with \
--verify-cmd. The verdict names the snapshot id, so it never counts for \
another snapshot imported later (formats/verdict-v1.md). `ferry promote` \
requires a pass.")]
    Verdict(commands::verdict::VerdictArgs),
    /// Install the snapshot verified at a test update source into production targets.
    #[command(long_about = "\
Install the snapshot TEST_TARGET serves into every TARGET (production update \
sources and distribution points: folders, FTP/FTPS servers) in parallel, \
only if its verdict is a pass for exactly that snapshot (`ferry import \
--stage --verify-cmd`, or `ferry verdict`). Otherwise it refuses, naming the \
verdict it found, and nothing changes anywhere. Every byte at TEST_TARGET is \
checked against the signed manifest first: a snapshot changed after staging \
is refused. Then each TARGET gets what `ferry publish` would do to it, one \
line per target; a failed target does not stop the others. Exit code 0 when \
every target succeeded, 3 when one refused, 1 when one failed. Where it went \
is recorded at TEST_TARGET (`ferry status`).")]
    Promote(commands::promote::PromoteArgs),
    /// List the components an update source serves, for `ferry export --inventory`.
    #[command(long_about = "\
Write an inventory (formats/inventory-v1.md) of TARGET: the components its \
installed snapshot holds (with --read: only those devices read since they \
were written), as path patterns cut to --depth components. Carry it to the \
connected host, where `ferry export --inventory FILE` exports only those \
components and the index files. Edit it by hand when the site knows better. \
Nothing at TARGET changes.")]
    Inventory(commands::inventory::InventoryArgs),
}

/// Parses a size such as `4000000000`, `700M` or `2G` (K, M, G, T are powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim_end_matches("iB").trim_end_matches('B');
    let (digits, unit) = match trimmed.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&trimmed[..at], Some(c.to_ascii_uppercase())),
        _ => (trimmed, None),
    };
    let shift = match unit {
        None => 0,
        Some('K') => 10,
        Some('M') => 20,
        Some('G') => 30,
        Some('T') => 40,
        Some(_) => return Err(format!("`{text}`: unknown unit (use K, M, G or T)")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("`{text}` is not a size like 4000000000, 700M or 2G"))
}

/// The secret key a command signs with.
#[derive(Debug, Args)]
pub struct SigningKey {
    /// The secret key to sign with (PREFIX.key).
    #[arg(long, value_name = "PREFIX.key")]
    pub key: Utf8PathBuf,
    /// Read the key's passphrase from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<Utf8PathBuf>,
}

impl SigningKey {
    /// Loads the key, asking for its passphrase where it is protected.
    pub fn load(&self) -> ferry::Result<ferry::signing::SecretKey> {
        ferry::signing::SecretKey::load(&self.key, &mut |id| {
            super::secrets::existing_passphrase(self.passphrase_file.as_deref(), &self.key, id)
        })
    }
}

/// Trusted keys.
#[derive(Debug, Args)]
pub struct Trust {
    /// A trusted public key file, or a folder of *.pub files (repeatable;
    /// default: the colon-separated list in FERRY_TRUST).
    #[arg(long, value_name = "KEY.pub")]
    pub trust: Vec<Utf8PathBuf>,
    /// The trust store folder to use instead of FERRY_TRUST_STORE,
    /// $XDG_CONFIG_HOME/ferry or ~/.config/ferry (used when no --trust or
    /// FERRY_TRUST is given).
    #[arg(long, value_name = "DIR", conflicts_with = "trust")]
    pub trust_store: Option<Utf8PathBuf>,
}

/// How to reach FTP/FTPS targets.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "FTP targets")]
pub struct FtpArgs {
    /// Read the FTP password from the first line of FILE (else
    /// FERRY_FTP_PASSWORD, else ~/.netrc; never from the command line).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<Utf8PathBuf>,
    /// Parallel connections per FTP server.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub connections: u16,
    /// Use active instead of passive data connections.
    #[arg(long)]
    pub active: bool,
    /// ftps:// means implicit TLS (port 990 style) instead of AUTH TLS.
    #[arg(long)]
    pub implicit_tls: bool,
    /// Trust this CA certificate file (PEM) for FTPS instead of the system roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<Utf8PathBuf>,
    /// Accept exactly the FTPS server certificate with this SHA-256
    /// fingerprint (64 hex digits, `sha256:` prefix and colons allowed).
    #[arg(long, value_name = "SHA256", value_parser = parse_pin)]
    pub pin_sha256: Option<[u8; 32]>,
    /// Offer only TLS 1.2 (for vsftpd, whose TLS 1.3 session reuse fails).
    #[arg(long)]
    pub tls12: bool,
    /// Timeout for connecting and for every read or write on control and data connections.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_span)]
    pub ftp_timeout: Span,
}

/// How to switch the new snapshot in.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Switch {
    /// The whole-tree switch where possible, else ordered; ordered for a
    /// delta (only the files it changes are renamed into place).
    Auto,
    /// Only the whole-tree switch (fail where impossible).
    Tree,
    /// Rename files into place in order, under a journal.
    Ordered,
}

/// How `import` and `publish` switch a snapshot into each target.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// How to switch the new snapshot in (FTP targets always use ordered).
    #[arg(long, value_enum, default_value = "auto")]
    pub switch: Switch,
    /// Wait for another ferry process working on a target instead of failing.
    #[arg(long)]
    pub wait: bool,
    /// Replace the contents of a non-empty target ferry did not fill.
    #[arg(long)]
    pub adopt: bool,
    /// Create a folder target's missing parent folders too (without it,
    /// only the target folder itself may be missing).
    #[arg(long)]
    pub mkpath: bool,
    /// Hash the files the import keeps and write again any that differ
    /// from the manifest; with the snapshot already installed, restore its
    /// missing or damaged files from the drive.
    #[arg(long)]
    pub repair: bool,
    /// Hash every file the import keeps in place (the files a delta does
    /// not carry) against the installed manifest before anything changes,
    /// and refuse if one differs (without it, sizes are compared).
    #[arg(long)]
    pub deep: bool,
    /// Check the drive and the target and say what would change, without
    /// writing anything (the drive's bytes are hashed only by the real
    /// run, or by `ferry verify`).
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Install a snapshot whose expiry time has passed (needs --reason;
    /// recorded in the target's audit journal).
    #[arg(long, requires = "reason")]
    pub allow_expired: bool,
    /// Install a snapshot whose sequence is further ahead of the installed
    /// one than --max-jump (needs --reason; recorded in the audit journal).
    #[arg(long, requires = "reason")]
    pub allow_jump: bool,
    /// Largest sequence jump over the installed snapshot accepted without
    /// --allow-jump (sequences count seconds).
    #[arg(long, value_name = "DURATION", default_value = "365d", value_parser = parse_span)]
    pub max_jump: Span,
    /// Why: recorded with this command's entry in the target's audit journal.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Memory for the files a delta import rebuilds from patches, in total:
    /// beyond it they wait for the switch in a temporary folder (TMPDIR).
    #[arg(long, value_name = "SIZE", env = "FERRY_REBUILD_MEMORY", default_value = "256M", value_parser = parse_size)]
    pub rebuild_memory: u64,
}

/// A duration given on the command line.
#[derive(Debug, Clone, Copy)]
pub struct Span(pub SignedDuration);

/// An expiry: a duration or never.
#[derive(Debug, Clone, Copy)]
pub struct Expiry(pub Option<SignedDuration>);

pub fn parse_span(text: &str) -> Result<Span, String> {
    ferry::clock::parse_duration(text).map(Span)
}

pub fn parse_expiry(text: &str) -> Result<Expiry, String> {
    if text == "never" {
        return Ok(Expiry(None));
    }
    ferry::clock::parse_duration(text).map(|d| Expiry(Some(d)))
}

pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    ferry::clock::parse_flexible(text)
}

fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    let hex_digits: String = text.trim_start_matches("sha256:").chars().filter(|c| *c != ':').collect();
    let mut pin = [0u8; 32];
    hex::decode_to_slice(hex_digits.to_ascii_lowercase(), &mut pin)
        .map_err(|_| format!("`{text}` is not 64 hex digits"))?;
    Ok(pin)
}
