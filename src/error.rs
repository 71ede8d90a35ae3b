//! The library's one error type.
//!
//! Every variant carries the thing it is about (a path, a key id, a
//! sequence) so that the CLI can print one line an operator understands
//! without context. Variants are grouped by the exit code they map to:
//! see [`Error::class`].

use camino::Utf8PathBuf;
use std::io;

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the CLI makes of an error: which exit code it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// I/O, target or lock problems: exit code 1.
    Failure,
    /// The command line or its files were not usable as given (a missing
    /// key, conflicting options, no passphrase): exit code 2.
    Usage,
    /// The input was refused by verification or trust; nothing changed: exit code 3.
    Refused,
}

/// Everything that can go wrong in ferry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem call failed.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// What ferry was doing ("read", "create", "rename", ...).
        action: &'static str,
        /// The path it was doing it to.
        path: Utf8PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file ferry reads is not in the format its spec describes.
    #[error("`{path}`: {problem}")]
    Format {
        /// The file.
        path: Utf8PathBuf,
        /// What is wrong, with the line number where there is one.
        problem: String,
    },
    /// The snapshot would not fit on the drive, or the drive's filesystem
    /// cannot hold some of its names or sizes; found before writing a byte.
    #[error("`{media}` cannot take this snapshot: {}", summarize(problems))]
    DriveUnfit {
        /// The drive (or folder on it) being exported to.
        media: Utf8PathBuf,
        /// One line per problem, naming the file and the limit.
        problems: Vec<String>,
    },
    /// The source tree contains entries that cannot be exported.
    #[error("`{source_dir}` cannot be exported: {}:\n  {}", crate::report::counted(problems.len(), "problem", "problems"), problems.join("\n  "))]
    UnexportableSource {
        /// The source directory.
        source_dir: Utf8PathBuf,
        /// One line per offending entry.
        problems: Vec<String>,
    },
    /// The secret key could not be unlocked.
    #[error("cannot unlock secret key `{path}` (key {key_id}): wrong passphrase or damaged file")]
    WrongPassphrase {
        /// The key file.
        path: Utf8PathBuf,
        /// Its key id.
        key_id: String,
    },
    /// No passphrase was available for a protected key and no prompt was possible.
    #[error("{0}")]
    Passphrase(String),
    /// A file would be overwritten.
    #[error("`{0}` already exists; refusing to overwrite it")]
    AlreadyExists(Utf8PathBuf),
    /// The options given do not make sense together.
    #[error("{0}")]
    InvalidArgument(String),
    /// No snapshot was found on the media.
    #[error("no complete snapshot found in `{0}` (looked for manifest.sig in MEDIA and MEDIA/ferry/*/*)")]
    NoSnapshot(Utf8PathBuf),
    /// A snapshot folder has a manifest but no signature.
    #[error("`{0}` has no signature file (manifest.sig): the export did not finish or the file was removed")]
    MissingSignature(Utf8PathBuf),
    /// A snapshot folder has a signature but no manifest: copied in part.
    #[error(
        "`{0}` has a signature file but no manifest: the folder was copied only in part, or its manifest was removed\nhint: copy the whole snapshot folder from the drive ferry wrote again, or export again"
    )]
    MissingManifest(Utf8PathBuf),
    /// None of the signatures is by a trusted key.
    #[error("`{path}` is signed by key(s) {signed_by} but none of them is trusted (trusted: {trusted})")]
    UntrustedKey {
        /// The signature file.
        path: Utf8PathBuf,
        /// Key ids found in the file.
        signed_by: String,
        /// Key ids in the trust store.
        trusted: String,
    },
    /// Fewer distinct trusted keys signed than the repository's threshold.
    #[error(
        "`{path}`: repository `{repository}` needs signatures by {threshold} of its trusted keys but only {signed_by} signed; {still_needed} more needed from: {missing}"
    )]
    BelowThreshold {
        /// The signature file.
        path: Utf8PathBuf,
        /// The repository whose key set decided.
        repository: String,
        /// How many distinct keys must sign.
        threshold: usize,
        /// The trusted keys that did sign.
        signed_by: String,
        /// How many more must sign.
        still_needed: usize,
        /// The trusted keys that did not sign.
        missing: String,
    },
    /// A signature by a trusted key does not verify.
    #[error(
        "`{path}`: signature by trusted key {key_id} does not match the manifest (manifest or signature damaged or forged)"
    )]
    BadSignature {
        /// The signature file.
        path: Utf8PathBuf,
        /// The trusted key.
        key_id: String,
    },
    /// No trusted key was configured.
    #[error(
        "no trusted public key given: pass --trust KEY.pub (or a directory of them) or set FERRY_TRUST\nhint: or keep trusted keys in the trust store: `ferry trust add KEY.pub`"
    )]
    NoTrust,
    /// The snapshot is older than the one installed.
    #[error(
        "refusing rollback: `{manifest}` has sequence {offered} but the target already has sequence {installed} of repository `{repository}`"
    )]
    Rollback {
        /// The manifest offered.
        manifest: Utf8PathBuf,
        /// Its repository.
        repository: String,
        /// Its sequence.
        offered: u64,
        /// The installed sequence.
        installed: u64,
    },
    /// A delta snapshot offered to a target that holds none of its bases
    /// (formats/delta-v1.md DI2), or whose files changed since (DI3).
    #[error(
        "refusing delta `{manifest}`: it applies to {needs}, but the target holds {holds}\nhint: carry a full export (with --standalone if it was made with --policy, --only or --inventory), or a delta --since this site's receipt (ferry receipt TARGET OUT)"
    )]
    WrongBase {
        /// The manifest offered.
        manifest: Utf8PathBuf,
        /// The bases it applies to (short ids).
        needs: String,
        /// What the target holds.
        holds: String,
    },
    /// Same sequence, different content: a signer reused a sequence number.
    #[error(
        "refusing `{manifest}`: sequence {sequence} is installed with different content (snapshot {installed_id} vs {offered_id})"
    )]
    SequenceReuse {
        /// The manifest offered.
        manifest: Utf8PathBuf,
        /// The sequence both share.
        sequence: u64,
        /// Installed snapshot id (short).
        installed_id: String,
        /// Offered snapshot id (short).
        offered_id: String,
    },
    /// The snapshot belongs to another repository than the installed one.
    #[error("refusing `{manifest}`: it is repository `{offered}` but the target holds repository `{installed}`")]
    WrongRepository {
        /// The manifest offered.
        manifest: Utf8PathBuf,
        /// Its repository.
        offered: String,
        /// The installed repository.
        installed: String,
    },
    /// The manifest's expiry time has passed.
    #[error(
        "refusing `{manifest}`: it expired at {expires} (now {now}); export a fresh snapshot\nhint: to install it anyway, pass --allow-expired --reason TEXT (recorded in the audit journal)"
    )]
    Expired {
        /// The manifest.
        manifest: Utf8PathBuf,
        /// Its expiry.
        expires: String,
        /// The current time.
        now: String,
    },
    /// The snapshot was created before the installed one: media this old
    /// could freeze the site on old data (formats/threat-model.md §F).
    #[error(
        "refusing `{manifest}`: it was created at {created}, before the installed snapshot of sequence {installed_sequence} (created at {installed_created})\nhint: export a fresh snapshot on the connected side"
    )]
    Stale {
        /// The manifest offered.
        manifest: Utf8PathBuf,
        /// Its creation time.
        created: String,
        /// The installed sequence.
        installed_sequence: u64,
        /// The installed snapshot's creation time.
        installed_created: String,
    },
    /// The sequence jumps further ahead than the configured bound.
    #[error(
        "refusing `{manifest}`: sequence {offered} is {jump} ahead of the installed {installed}, more than the bound of {bound} (sequences count seconds)\nhint: {}", jump_hint(*installed)
    )]
    SequenceJump {
        /// The manifest offered.
        manifest: Utf8PathBuf,
        /// Its sequence.
        offered: u64,
        /// The installed sequence.
        installed: u64,
        /// How far ahead, for people (`400d 0h`).
        jump: String,
        /// The bound, for people.
        bound: String,
    },
    /// Payload files do not match the manifest.
    #[error("`{media}` does not match its signed manifest: {}", summarize(problems))]
    Damaged {
        /// The snapshot folder.
        media: Utf8PathBuf,
        /// One line per damaged, missing or extra file.
        problems: Vec<String>,
    },
    /// A file's bytes differ from what the manifest says.
    #[error("`{path}`: {problem}")]
    Mismatch {
        /// The file.
        path: Utf8PathBuf,
        /// Expected vs actual size or digest.
        problem: String,
    },
    /// Files of the installed snapshot are no longer what it installed
    /// (removed or edited at the target since).
    #[error(
        "`{target}` differs from its installed manifest: {}\nhint: run the same import with --repair to restore them from the drive",
        summarize(problems)
    )]
    Drift {
        /// The target.
        target: String,
        /// One line per file: missing, other size, other contents.
        problems: Vec<String>,
    },
    /// Files an import keeps in place differ from the installed manifest,
    /// and the snapshot offered does not carry them (a delta) or `--deep`
    /// asked to refuse rather than write them again (formats/delta-v1.md DI3).
    #[error(
        "refusing `{manifest}`: files it keeps at `{target}` differ from the installed manifest: {}\nhint: {}",
        summarize(problems),
        if *delta {
            "restore them with `ferry import --repair` of the installed snapshot's drive, or carry a full export"
        } else {
            "pass --repair instead of --deep to write them again from the drive"
        }
    )]
    KeptFilesChanged {
        /// The manifest offered.
        manifest: Utf8PathBuf,
        /// The target.
        target: String,
        /// One line per file: missing, other size, other contents.
        problems: Vec<String>,
        /// Whether the snapshot offered is a delta.
        delta: bool,
    },
    /// Another import holds the target.
    #[error(
        "`{target}` is locked by another ferry process ({holder})\nhint: let it finish, or pass --wait to wait for it"
    )]
    Locked {
        /// The target.
        target: Utf8PathBuf,
        /// Who holds the lock, as far as can be told (process id, host, since when).
        holder: String,
    },
    /// The target has no installed snapshot.
    #[error("`{0}` has no snapshot installed by ferry (no `state` marker in its state folder)")]
    NotInstalled(Utf8PathBuf),
    /// `ferry promote` found no passing verdict for the snapshot the test
    /// target serves (formats/verdict-v1.md §5 R1).
    #[error("`{target}` has no passing verdict for the snapshot it serves: {found}")]
    NotVerified {
        /// The test target.
        target: String,
        /// The verdict found, or why none counts.
        found: String,
    },
    /// Rollback was asked for but no previous snapshot is kept.
    #[error("`{0}` keeps no previous snapshot to roll back to")]
    NoPrevious(Utf8PathBuf),
    /// An FTP server refused a command or the connection failed.
    #[error("`{target}`: cannot {action} `{path}`: {problem}")]
    Ftp {
        /// The server, as `ftp://user@host:port/path` (never with a password).
        target: String,
        /// What ferry was doing.
        action: &'static str,
        /// The server path involved.
        path: String,
        /// The server's reply or the connection error.
        problem: String,
        /// Whether trying again may succeed (lost connection, timeout, 4xx reply).
        transient: bool,
    },
    /// An interrupted switch was found and could not be completed safely.
    #[error("`{path}`: {problem}")]
    Recovery {
        /// The target or state file.
        path: Utf8PathBuf,
        /// What blocks recovery.
        problem: String,
    },
    /// A path below a drive (or a target, or its state folder) is a
    /// symbolic link: ferry follows no link below the folder it was given
    /// (formats/threat-model.md §7).
    #[error(
        "`{path}` is a symbolic link to `{target}`; ferry follows no links below the drive or folder it was given\nhint: remove the link: below the drive or target given, ferry expects only what it wrote there"
    )]
    SymbolicLink {
        /// The link.
        path: Utf8PathBuf,
        /// Where it points (its text, as `readlink` gives it).
        target: String,
    },
    /// An entry ferry reads or writes is not of the kind it must be: a FIFO,
    /// socket or device where a file belongs, a folder where a file belongs,
    /// or the reverse (formats/threat-model.md §7).
    #[error("`{path}` is {found}, where ferry expects {expected}; refusing it")]
    WrongKind {
        /// The entry.
        path: Utf8PathBuf,
        /// What it is ("a FIFO (named pipe)", "a folder", ...).
        found: &'static str,
        /// What it should be ("a regular file", "a folder").
        expected: &'static str,
    },
    /// A source file or folder changed while export read it, and again when
    /// it was read a second time; nothing was signed.
    #[error(
        "`{path}` changed while export read it ({problem}), also when read again; nothing was signed\nhint: run the export when the download task is idle, or point at a stable copy"
    )]
    SourceChanged {
        /// The file or folder of the source.
        path: Utf8PathBuf,
        /// What differed (size, modification or change time, entries).
        problem: String,
    },
}

/// The hint of a sequence jump. Sequences of clock-numbered exports are
/// Unix seconds (formats/ledger-v1.md §5 N1); an installed sequence far
/// below any such time was numbered by hand with `--sequence`, and the
/// first clock-numbered export after it is a jump of decades that the
/// operator only has to confirm once.
fn jump_hint(installed: u64) -> &'static str {
    const YEAR_2001: u64 = 978_307_200;
    if installed < YEAR_2001 {
        "the installed sequence was numbered by hand (--sequence); if this export is the first numbered by the clock, pass --allow-jump --reason TEXT once, or keep numbering exports by hand"
    } else {
        "if this jump is expected, pass --allow-jump --reason TEXT"
    }
}

/// One problem stays on the error's one line; several are listed below it.
fn summarize(problems: &[String]) -> String {
    const SHOWN: usize = 20;
    if let [only] = problems {
        return only.clone();
    }
    let mut text = format!("{}:", crate::report::counted(problems.len(), "problem", "problems"));
    for problem in problems.iter().take(SHOWN) {
        text.push_str("\n  ");
        text.push_str(problem);
    }
    if problems.len() > SHOWN {
        text.push_str(&format!("\n  ... and {} more", problems.len() - SHOWN));
    }
    text
}

impl Error {
    /// Builds an [`Error::Io`] for `action` on `path`.
    pub fn io(action: &'static str, path: impl Into<Utf8PathBuf>, source: io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    /// Builds an [`Error::Format`] for `path`.
    pub fn format(path: impl Into<Utf8PathBuf>, problem: impl Into<String>) -> Self {
        Error::Format { path: path.into(), problem: problem.into() }
    }

    /// Whether trying again may succeed: a lost connection, a timeout, a
    /// 4xx FTP reply.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Ftp { transient, .. } => *transient,
            Error::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::Interrupted
            ),
            _ => false,
        }
    }

    /// Which exit-code class this error belongs to.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Format { .. }
            | Error::MissingSignature(_)
            | Error::MissingManifest(_)
            | Error::UntrustedKey { .. }
            | Error::BadSignature { .. }
            | Error::BelowThreshold { .. }
            | Error::Rollback { .. }
            | Error::WrongBase { .. }
            | Error::KeptFilesChanged { .. }
            | Error::SequenceReuse { .. }
            | Error::WrongRepository { .. }
            | Error::Expired { .. }
            | Error::Stale { .. }
            | Error::SequenceJump { .. }
            | Error::Damaged { .. }
            | Error::Mismatch { .. }
            | Error::NoSnapshot(_)
            | Error::SymbolicLink { .. }
            | Error::WrongKind { .. }
            | Error::NotVerified { .. } => ErrorClass::Refused,
            Error::InvalidArgument(_) | Error::Passphrase(_) | Error::NoTrust => ErrorClass::Usage,
            _ => ErrorClass::Failure,
        }
    }
}

/// Adds path context to `std::io` results, in the style of cargo's `paths`.
pub(crate) trait IoContext<T> {
    /// Wraps an I/O error with the action and path.
    fn ctx(self, action: &'static str, path: &camino::Utf8Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: &'static str, path: &camino::Utf8Path) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}
