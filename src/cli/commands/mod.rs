//! One module per command: its arguments' meaning, the library call, and
//! its text output. Shared here: trusted keys, opening targets, the clock.

pub mod completions;
pub mod diff;
pub mod export;
pub mod import;
pub mod inventory;
pub mod keygen;
pub mod list;
pub mod log;
pub mod man;
pub mod policy;
pub mod promote;
pub mod publish;
pub mod receipt;
pub mod rollback;
pub mod rotate;
pub mod sign;
pub mod status;
pub mod trust;
pub mod verdict;
pub mod verify;

use super::args::{FtpArgs, InstallArgs, Switch, Trust};
use super::output::Output;
use camino::{Utf8Path, Utf8PathBuf};
use ferry::Error;
use ferry::backend::ftp::FtpOptions;
use ferry::backend::location::Location;
use ferry::backend::{Backend, BackendOptions};
use ferry::ops::import::{ImportOptions, SwitchChoice};
use ferry::signing::TrustStore;

/// The "Environment:" paragraph of the commands that read trusted keys and
/// reach FTP targets (`--help`), as a literal for `concat!`.
macro_rules! trust_and_ftp_environment {
    () => {
        "Environment:
  FERRY_TRUST         trusted keys, colon-separated, when neither --trust nor --trust-store is given
  FERRY_TRUST_STORE   the trust store folder, when none of the above is given
  FERRY_FTP_PASSWORD  the FTP password, when --password-file is not given (else ~/.netrc)"
    };
}
pub(crate) use trust_and_ftp_environment;

/// What every command gets besides its own arguments.
pub struct Context<'a> {
    /// Where reports, errors and progress go.
    pub out: &'a Output,
    /// The time to judge expiry and freshness by (`--now`, else the clock).
    pub now: jiff::Timestamp,
}

/// The trusted keys (formats/trust-store-v1.md §2): `--trust`, else
/// `--trust-store`, else `FERRY_TRUST`, else the trust store of
/// `FERRY_TRUST_STORE` or the user's configuration folder; an error
/// without any.
pub fn load_trust(trust: &Trust) -> ferry::Result<TrustStore> {
    optional_trust(trust)?.ok_or(Error::NoTrust)
}

/// The trusted keys when some were given or stored, else none (commands
/// that work without them, checking less).
pub fn optional_trust(trust: &Trust) -> ferry::Result<Option<TrustStore>> {
    if !trust.trust.is_empty() {
        return TrustStore::load(&trust.trust).map(Some);
    }
    if let Some(dir) = &trust.trust_store {
        return ferry::trust::Store::open(dir)?.policy().map(Some);
    }
    if let Ok(list) = std::env::var("FERRY_TRUST") {
        let paths: Vec<Utf8PathBuf> = list.split(':').filter(|p| !p.is_empty()).map(Utf8PathBuf::from).collect();
        if paths.is_empty() {
            return Err(Error::NoTrust);
        }
        return TrustStore::load(&paths).map(Some);
    }
    // The default store counts only if it exists: no HOME, no store.
    match ferry::trust::store_dir(None, &|name| std::env::var(name).ok()) {
        Ok(dir) if dir.join(ferry::trust::store::STORE_FILE).exists() => {
            ferry::trust::Store::open(&dir)?.policy().map(Some)
        }
        _ => Ok(None),
    }
}

/// The trust store folder when the policy comes from a store (no
/// `--trust`, no `FERRY_TRUST`, and a store given or present): where
/// import applies rotation statements (formats/rotation-v1.md §6).
pub fn stored_trust_dir(trust: &Trust) -> ferry::Result<Option<Utf8PathBuf>> {
    if !trust.trust.is_empty() || std::env::var_os("FERRY_TRUST").is_some() {
        return Ok(None);
    }
    if let Some(dir) = &trust.trust_store {
        return Ok(Some(dir.clone()));
    }
    Ok(trust_store_dir(None).ok().filter(|dir| dir.join(ferry::trust::store::STORE_FILE).exists()))
}

/// The trust store folder for `ferry trust`: `--trust-store`, else
/// `FERRY_TRUST_STORE`, `$XDG_CONFIG_HOME/ferry` or `~/.config/ferry`.
pub fn trust_store_dir(explicit: Option<&Utf8Path>) -> ferry::Result<Utf8PathBuf> {
    ferry::trust::store_dir(explicit, &|name| std::env::var(name).ok())
}

/// Opens a TARGET argument through the back-end registry; `make_parents`
/// lets an import create the target folder's missing parents (`--mkpath`).
pub fn open_target(
    text: &str,
    state_dir: Option<&Utf8Path>,
    make_parents: bool,
    ftp: &FtpArgs,
) -> ferry::Result<Box<dyn Backend>> {
    let password = match ferry::backend::location::parse(text, ftp.implicit_tls)? {
        Location::Ftp(url) => super::secrets::ftp_password(&url, ftp.password_file.as_deref())?,
        Location::Dir(_) => None,
    };
    let options = BackendOptions {
        state_dir: state_dir.map(Utf8Path::to_owned),
        make_parents,
        implicit_tls: ftp.implicit_tls,
        ftp: FtpOptions {
            password,
            connections: usize::from(ftp.connections),
            active: ftp.active,
            timeout: ftp.ftp_timeout.0.unsigned_abs(),
            ca_file: ftp.ca_file.clone(),
            pin_sha256: ftp.pin_sha256,
            tls12_only: ftp.tls12,
        },
    };
    ferry::backend::open(text, &options)
}

/// The import options `import` and `publish` share: what to install from
/// which media, and how (`--switch`, `--wait`, `--adopt`, `--repair`).
pub fn import_options(
    install: &InstallArgs,
    media: Vec<Utf8PathBuf>,
    repository: Option<String>,
    sequence: Option<u64>,
    now: jiff::Timestamp,
) -> ImportOptions {
    let mut options = ImportOptions::new(media, now);
    options.repository = repository;
    options.sequence = sequence;
    options.switch = switch_choice(install.switch);
    options.wait = install.wait;
    options.adopt = install.adopt;
    options.repair = install.repair;
    options.deep = install.deep;
    options.dry_run = install.dry_run;
    options.allow_expired = install.allow_expired;
    options.allow_jump = install.allow_jump;
    options.max_jump = install.max_jump.0.as_secs().unsigned_abs();
    options.reason = install.reason.clone();
    options.rebuild_memory = install.rebuild_memory;
    options.operator = operator();
    options
}

/// Who runs this command, for the audit journal: the login name from the
/// environment (`USER`, else `LOGNAME`, else `USERNAME`), if any.
pub fn operator() -> Option<String> {
    ["USER", "LOGNAME", "USERNAME"].iter().find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

fn switch_choice(switch: Switch) -> SwitchChoice {
    match switch {
        Switch::Auto => SwitchChoice::Auto,
        Switch::Tree => SwitchChoice::Tree,
        Switch::Ordered => SwitchChoice::Ordered,
    }
}
