//! The only code that knows about clap, terminals, progress bars and
//! `--json`. Each command builds the library's options, calls one function
//! in `ferry::ops`, and prints its report.

mod args;
mod output;

use args::{Cli, Command, FtpArgs, LayoutArg, Switch};
use camino::{Utf8Path, Utf8PathBuf};
use clap::Parser;
use ferry::backend::ftp::FtpOptions;
use ferry::backend::location::{FtpUrl, Location};
use ferry::backend::{Backend, BackendOptions};
use ferry::media::SnapshotDir;
use ferry::ops::{export, import, keygen, list, publish, rollback, status, verify};
use ferry::signing::{SecretKey, TrustStore};
use ferry::{Error, ErrorClass};
use output::Output;
use zeroize::Zeroizing;

/// Exit codes (docs/reference/exit-codes.md).
pub mod exit {
    /// Success (and `status`: fresh).
    pub const OK: i32 = 0;
    /// Error: I/O, target, lock.
    pub const ERROR: i32 = 1;
    /// Usage: bad arguments.
    pub const USAGE: i32 = 2;
    /// Refused by verification or trust; nothing changed.
    pub const REFUSED: i32 = 3;
    /// `status`: out of date.
    pub const OUT_OF_DATE: i32 = 4;
    /// `status`: extremely out of date.
    pub const EXTREMELY_OUT_OF_DATE: i32 = 5;
}

/// Runs the command line and returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return code;
        }
    };
    let out = Output::new(cli.global.json, cli.global.quiet, cli.global.verbose);
    match dispatch(&cli, &out) {
        Ok(code) => code,
        Err(error) => {
            let code = match &error {
                Error::InvalidArgument(_) | Error::NoTrust | Error::Passphrase(_) => exit::USAGE,
                other if other.class() == ErrorClass::Refused => exit::REFUSED,
                _ => exit::ERROR,
            };
            out.error(&error, code);
            code
        }
    }
}

fn now(cli: &Cli) -> jiff::Timestamp {
    cli.global.now.unwrap_or_else(ferry::clock::now)
}

fn dispatch(cli: &Cli, out: &Output) -> ferry::Result<i32> {
    match &cli.command {
        Command::Keygen(a) => {
            let passphrase = if a.no_passphrase { None } else { Some(new_passphrase(a.passphrase_file.as_deref())?) };
            let report = keygen::keygen(&a.prefix, passphrase.as_ref().map(|p| p.as_slice()))?;
            out.report(&report, || {
                format!(
                    "created key {}\n  secret: {} ({})\n  public: {} (copy this to the importing sites)",
                    report.key_id,
                    report.secret_key,
                    if report.protected { "encrypted with your passphrase" } else { "NOT encrypted" },
                    report.public_key
                )
            });
        }
        Command::Export(a) => {
            let key = SecretKey::load(&a.key, &mut |id| existing_passphrase(a.passphrase_file.as_deref(), &a.key, id))?;
            let created = match a.created {
                Some(time) => Some(time),
                None => source_date_epoch()?,
            };
            let options = export::ExportOptions {
                source: a.source.clone(),
                media: a.media[0].clone(),
                more_media: a.media[1..].to_vec(),
                drive_size: a.drive_size,
                target_fs: a.target_fs,
                repository: a.repository.clone(),
                sequence: a.sequence,
                created,
                expires_after: a.expires.0,
                index_patterns: if a.index.is_empty() {
                    ferry::scan::DEFAULT_INDEX_PATTERNS.iter().map(|p| p.to_string()).collect()
                } else {
                    a.index.clone()
                },
                read_back: !a.no_read_back,
                layout: match a.layout {
                    LayoutArg::Tree => export::MediaLayout::Tree,
                    LayoutArg::Tar => export::MediaLayout::Tar { volume_size: a.volume_size },
                },
                prune: a.prune.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            };
            let progress = out.progress();
            let report = export::export(&options, &key, &progress)?;
            progress.finish();
            out.report(&report, || {
                format!(
                    "exported {} sequence {} to {}\n  {} files, {} folders, {}; snapshot {}; signed by key {}; expires {}{}",
                    report.repository,
                    report.sequence,
                    report.snapshot_dir,
                    report.files,
                    report.folders,
                    ferry::report::human_bytes(report.bytes),
                    &report.snapshot_id[..12],
                    report.key_id,
                    report.expires,
                    if report.read_back_verified { "\n  read back from the media and verified" } else { "" }
                ) + &report.pruned.iter().map(|dir| format!("\n  pruned {dir}")).collect::<String>()
            });
        }
        Command::List(a) => {
            let trust = if a.trust.trust.is_empty() && std::env::var_os("FERRY_TRUST").is_none() {
                None
            } else {
                Some(load_trust(&a.trust.trust)?)
            };
            let report = list::list(&a.media, trust.as_ref())?;
            out.report(&report, || list_text(&report));
        }
        Command::Verify(a) => {
            let progress = out.progress();
            let installed = match ferry::backend::location::parse(&a.media[0], a.ftp.implicit_tls)? {
                Location::Ftp(_) => true,
                Location::Dir(path) => SnapshotDir::is_installed_source(&path),
            };
            if installed {
                if a.media.len() > 1 {
                    return Err(Error::InvalidArgument(
                        "an installed update source is verified on its own: give one TARGET".into(),
                    ));
                }
                let target = open_target(&a.media[0], None, &a.ftp)?;
                let trust = if a.trust.trust.is_empty() && std::env::var_os("FERRY_TRUST").is_none() {
                    None
                } else {
                    Some(load_trust(&a.trust.trust)?)
                };
                let report = verify::verify_installed(target.as_ref(), trust.as_ref(), a.deep, &progress)?;
                progress.finish();
                out.report(&report, || {
                    format!(
                        "OK {}: {} sequence {}, {} files match the installed manifest ({}{})",
                        report.target,
                        report.repository,
                        report.sequence,
                        report.files,
                        if report.deep { "contents hashed" } else { "sizes compared; --deep hashes contents" },
                        if report.signature_checked {
                            ", signature verified"
                        } else {
                            ", signature not checked: no --trust"
                        }
                    )
                });
                return Ok(exit::OK);
            }
            let trust = load_trust(&a.trust.trust)?;
            let drives: Vec<Utf8PathBuf> = a.media.iter().map(Utf8PathBuf::from).collect();
            let report = verify::verify(&drives, &trust, now(cli), &progress)?;
            progress.finish();
            out.report(&report, || {
                report
                    .snapshots
                    .iter()
                    .map(|s| {
                        format!(
                            "OK {} sequence {}: {} files, {}, signed by key {}, created {}, expires {} ({})",
                            s.repository,
                            s.sequence,
                            s.files,
                            ferry::report::human_bytes(s.bytes),
                            s.signed_by,
                            s.created,
                            s.expires,
                            s.dir
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Import(a) => {
            let trust = load_trust(&a.trust.trust)?;
            let target = open_target(&a.target, a.state_dir.as_deref(), &a.ftp)?;
            let options = import::ImportOptions {
                media: a.media.clone(),
                repository: a.repository.clone(),
                sequence: a.sequence,
                switch: switch_choice(a.install.switch),
                wait: a.install.wait,
                adopt: a.install.adopt,
                now: now(cli),
            };
            let progress = out.progress();
            let report = import::import(target.as_ref(), &options, &trust, &progress)?;
            progress.finish();
            out.report(&report, || {
                let mut text = String::new();
                for line in &report.recovered {
                    text.push_str(&format!("recovered: {line}\n"));
                }
                if report.switch == import::SwitchUsed::None {
                    text.push_str(&format!(
                        "{} sequence {} is already installed at {}; nothing changed",
                        report.snapshot.repository, report.snapshot.sequence, report.target
                    ));
                } else {
                    text.push_str(&format!(
                        "installed {} sequence {} at {} ({} switch)\n  {} added, {} changed, {} removed, {} copied; signed by key {}{}",
                        report.snapshot.repository,
                        report.snapshot.sequence,
                        report.target,
                        report.switch.as_str(),
                        report.added,
                        report.changed,
                        report.removed,
                        ferry::report::human_bytes(report.bytes_transferred),
                        report.snapshot.signed_by,
                        report.previous_sequence.map_or(String::new(), |p| format!("; previous sequence {p} kept for rollback"))
                    ));
                }
                text
            });
        }
        Command::Rollback(a) => {
            let target = open_target(&a.target, a.state_dir.as_deref(), &a.ftp)?;
            let report = rollback::rollback(target.as_ref(), a.wait, now(cli))?;
            out.report(&report, || {
                format!(
                    "rolled {} at {} back from sequence {} to sequence {} (recorded in .ferry/history)",
                    report.repository, report.target, report.from_sequence, report.to_sequence
                )
            });
        }
        Command::Publish(a) => {
            let trust = load_trust(&a.trust.trust)?;
            let (source, snapshot) = publish::open_source(&a.source, a.repository.as_deref(), &trust)?;
            let targets = a.targets.iter().map(|t| open_target(t, None, &a.ftp)).collect::<ferry::Result<Vec<_>>>()?;
            let options = import::ImportOptions {
                media: vec![a.source.clone()],
                repository: a.repository.clone(),
                sequence: None,
                switch: switch_choice(a.install.switch),
                wait: a.install.wait,
                adopt: a.install.adopt,
                now: now(cli),
            };
            let progress = out.progress();
            let report = publish::publish(&source, &snapshot, &targets, &options, &progress)?;
            progress.finish();
            out.report(&report, || {
                let mut lines = vec![format!(
                    "published {} sequence {} from {}",
                    report.snapshot.repository, report.snapshot.sequence, report.snapshot.dir
                )];
                for outcome in &report.targets {
                    let detail = match (&outcome.report, &outcome.error) {
                        (Some(r), _) if r.switch != import::SwitchUsed::None => format!(
                            ": {} added, {} changed, {} removed, {} sent",
                            r.added,
                            r.changed,
                            r.removed,
                            ferry::report::human_bytes(r.bytes_transferred)
                        ),
                        (_, Some(error)) => format!(": {error}"),
                        _ => String::new(),
                    };
                    lines.push(format!("  {} {}{detail}", outcome.status.as_str(), outcome.target));
                }
                lines.join("\n")
            });
            return Ok(match report.worst() {
                None => exit::OK,
                Some(ErrorClass::Refused) => exit::REFUSED,
                Some(_) => exit::ERROR,
            });
        }
        Command::Status(a) => {
            let target = open_target(&a.target, a.state_dir.as_deref(), &a.ftp)?;
            let thresholds =
                status::Thresholds { out_of_date: a.out_of_date.0, extremely_out_of_date: a.extremely_out_of_date.0 };
            let report = status::status(target.as_ref(), thresholds, now(cli))?;
            out.report(&report, || {
                format!(
                    "{}: {} sequence {} (snapshot {})\n  created {} ({} ago), installed {}, expires {}{}\n  {}{}",
                    report.target,
                    report.repository,
                    report.sequence,
                    &report.snapshot_id[..12],
                    report.created,
                    report.age,
                    report.installed,
                    report.expires,
                    if report.expired { " (EXPIRED)" } else { "" },
                    report.freshness.describe().to_uppercase(),
                    report.rolled_back_from.map_or(String::new(), |s| format!(" (rolled back from sequence {s})")),
                )
            });
            return Ok(match report.freshness {
                status::Freshness::Fresh => exit::OK,
                status::Freshness::OutOfDate => exit::OUT_OF_DATE,
                status::Freshness::ExtremelyOutOfDate => exit::EXTREMELY_OUT_OF_DATE,
            });
        }
    }
    Ok(exit::OK)
}

fn switch_choice(switch: Switch) -> import::SwitchChoice {
    match switch {
        Switch::Auto => import::SwitchChoice::Auto,
        Switch::Tree => import::SwitchChoice::Tree,
        Switch::Ordered => import::SwitchChoice::Ordered,
    }
}

/// Opens a TARGET argument: a folder or an FTP/FTPS URL.
fn open_target(text: &str, state_dir: Option<&Utf8Path>, ftp: &FtpArgs) -> ferry::Result<Box<dyn Backend>> {
    let pin_sha256 = match &ftp.pin_sha256 {
        None => None,
        Some(text) => {
            let hex_digits: String = text.trim_start_matches("sha256:").chars().filter(|c| *c != ':').collect();
            let mut pin = [0u8; 32];
            hex::decode_to_slice(hex_digits.to_ascii_lowercase(), &mut pin)
                .map_err(|_| Error::InvalidArgument(format!("--pin-sha256 `{text}` is not 64 hex digits")))?;
            Some(pin)
        }
    };
    let password = match ferry::backend::location::parse(text, ftp.implicit_tls)? {
        Location::Ftp(url) => ftp_password(&url, ftp.password_file.as_deref())?,
        Location::Dir(_) => None,
    };
    let options = BackendOptions {
        state_dir: state_dir.map(Utf8Path::to_owned),
        implicit_tls: ftp.implicit_tls,
        ftp: FtpOptions {
            password,
            connections: usize::from(ftp.connections),
            active: ftp.active,
            timeout: ftp.ftp_timeout.0.unsigned_abs(),
            ca_file: ftp.ca_file.clone(),
            pin_sha256,
            tls12_only: ftp.tls12,
        },
    };
    ferry::backend::open(text, &options)
}

/// The FTP password: `--password-file`, else `FERRY_FTP_PASSWORD`, else the
/// matching `machine` entry of `~/.netrc`, else none (anonymous login).
fn ftp_password(url: &FtpUrl, file: Option<&Utf8Path>) -> ferry::Result<Option<Zeroizing<String>>> {
    if let Some(file) = file {
        let bytes = passphrase_from_file(file)?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| Error::format(file, "the password is not UTF-8"))?;
        return Ok(Some(Zeroizing::new(text)));
    }
    if let Ok(password) = std::env::var("FERRY_FTP_PASSWORD") {
        return Ok(Some(Zeroizing::new(password)));
    }
    let Some(home) = std::env::var_os("HOME") else { return Ok(None) };
    let netrc = std::path::Path::new(&home).join(".netrc");
    let Ok(text) = std::fs::read_to_string(&netrc) else { return Ok(None) };
    Ok(netrc_password(&text, &url.host, &url.user).map(Zeroizing::new))
}

/// Finds the password for `host` (and `user`, when the entry names a login)
/// in the text of a `.netrc` file; `default` entries count for any host.
fn netrc_password(text: &str, host: &str, user: &str) -> Option<String> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut index = 0;
    while index < tokens.len() {
        let matches_host = match tokens[index] {
            "machine" => tokens.get(index + 1) == Some(&host),
            "default" => true,
            _ => {
                index += 1;
                continue;
            }
        };
        let (mut login, mut password) = (None, None);
        index += if tokens[index] == "machine" { 2 } else { 1 };
        while index < tokens.len() && !matches!(tokens[index], "machine" | "default") {
            match (tokens[index], tokens.get(index + 1)) {
                ("login", Some(value)) => login = Some(*value),
                ("password", Some(value)) => password = Some(*value),
                _ => {}
            }
            index += 2;
        }
        if matches_host && login.is_none_or(|login| login == user) && password.is_some() {
            return password.map(str::to_owned);
        }
    }
    None
}

fn list_text(report: &list::ListReport) -> String {
    let mut text = format!("{}: {} snapshot folder(s)", report.media, report.snapshots.len());
    for s in &report.snapshots {
        let sequence = s.sequence.map_or("?".into(), |n| n.to_string());
        text.push_str(&format!("\n  {} {} [{}]", s.repository, sequence, s.status));
        if let Some(part) = &s.part {
            text.push_str(&format!(" part {part} of a snapshot spanning several drives;"));
        }
        if let (Some(layout), Some(files), Some(bytes)) = (s.layout, s.files, s.bytes) {
            let volumes = match s.volumes {
                Some(n) if layout == "tar" => format!(" in {n} volume(s)"),
                _ => String::new(),
            };
            text.push_str(&format!(
                " {layout}{volumes}, {files} files, {}, created {}, expires {}, signed by key {}",
                ferry::report::human_bytes(bytes),
                s.created.as_deref().unwrap_or("?"),
                s.expires.as_deref().unwrap_or("?"),
                s.signed_by.as_deref().unwrap_or("?")
            ));
        }
        if let Some(problem) = &s.problem {
            text.push_str(&format!(": {problem}"));
        }
        text.push_str(&format!("\n    {}", s.dir));
    }
    text
}

fn load_trust(given: &[Utf8PathBuf]) -> ferry::Result<TrustStore> {
    let mut paths = given.to_vec();
    if paths.is_empty()
        && let Ok(list) = std::env::var("FERRY_TRUST")
    {
        paths.extend(list.split(':').filter(|p| !p.is_empty()).map(Utf8PathBuf::from));
    }
    if paths.is_empty() {
        return Err(Error::NoTrust);
    }
    TrustStore::load(&paths)
}

fn source_date_epoch() -> ferry::Result<Option<jiff::Timestamp>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => ferry::clock::parse_flexible(&format!("@{text}"))
            .map(Some)
            .map_err(|e| Error::InvalidArgument(format!("SOURCE_DATE_EPOCH: {e}"))),
        Err(_) => Ok(None),
    }
}

fn passphrase_from_file(path: &Utf8Path) -> ferry::Result<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(std::fs::read(path).map_err(|e| Error::io("read passphrase file", path, e))?);
    let first_line = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let first_line = first_line.strip_suffix(b"\r").unwrap_or(first_line);
    Ok(Zeroizing::new(first_line.to_vec()))
}

fn passphrase_from_env() -> Option<Zeroizing<Vec<u8>>> {
    std::env::var_os("FERRY_PASSPHRASE").map(|p| Zeroizing::new(p.into_encoded_bytes()))
}

fn prompt(question: &str) -> ferry::Result<Zeroizing<Vec<u8>>> {
    rpassword::prompt_password(question).map(|p| Zeroizing::new(p.into_bytes())).map_err(|_| {
        Error::Passphrase(
            "no passphrase: no terminal to ask on; set FERRY_PASSPHRASE, pass --passphrase-file FILE, or (keygen only) --no-passphrase".into(),
        )
    })
}

fn new_passphrase(file: Option<&Utf8Path>) -> ferry::Result<Zeroizing<Vec<u8>>> {
    let passphrase = match (file, passphrase_from_env()) {
        (Some(file), _) => passphrase_from_file(file)?,
        (None, Some(env)) => env,
        (None, None) => {
            let first = prompt("passphrase for the new key: ")?;
            let second = prompt("the same passphrase again: ")?;
            if first != second {
                return Err(Error::Passphrase("the two passphrases differ; nothing was written".into()));
            }
            first
        }
    };
    if passphrase.is_empty() {
        return Err(Error::Passphrase(
            "empty passphrase; use --no-passphrase to store the key unencrypted on purpose".into(),
        ));
    }
    Ok(passphrase)
}

fn existing_passphrase(
    file: Option<&Utf8Path>,
    key: &Utf8Path,
    id: ferry::signing::KeyId,
) -> ferry::Result<Zeroizing<Vec<u8>>> {
    match (file, passphrase_from_env()) {
        (Some(file), _) => passphrase_from_file(file),
        (None, Some(env)) => Ok(env),
        (None, None) => prompt(&format!("passphrase for {key} (key {id}): ")),
    }
}

#[cfg(test)]
mod tests {
    use super::netrc_password;

    #[test]
    fn netrc_lookup() {
        let text = "machine other login a password x\nmachine ftp.site login upd password s3cret\ndefault login anonymous password guest\n";
        assert_eq!(netrc_password(text, "ftp.site", "upd").as_deref(), Some("s3cret"));
        assert_eq!(netrc_password(text, "ftp.site", "someone").as_deref(), None);
        assert_eq!(netrc_password(text, "unknown", "anonymous").as_deref(), Some("guest"));
    }
}
