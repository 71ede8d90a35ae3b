//! What a test needs from the machine beyond cargo (real FTP servers, a
//! FAT32 filesystem through FUSE, tmpfs mounts, outside tools), and the one
//! place that decides what happens when it is missing.
//!
//! A test that passes without running proves nothing: a missing need FAILS
//! the test, naming what is missing and how to install it (`bash
//! scripts/test` installs and starts everything as root). The only way
//! round is the documented opt-out variable, a comma-separated list of
//! need names (docs/testing.md):
//!
//! ```text
//! FERRY_TEST_SKIP=ftp-servers,fat32,tmpfs,lftp,bsdtar cargo test --all-features
//! ```
//!
//! An opted-out test returns early and records itself: one line on stderr
//! and, when `FERRY_TEST_OPT_OUT_LOG` names a file (scripts/test sets it),
//! one line appended there so the summary can list every test that did not
//! run in full.

use camino::Utf8Path;
use std::io::Write;

/// The opt-out variable: comma-separated [`Need::key`]s.
pub const SKIP_VAR: &str = "FERRY_TEST_SKIP";

/// A file to which every opt-out appends one line (set by scripts/test).
pub const LOG_VAR: &str = "FERRY_TEST_OPT_OUT_LOG";

/// Something a test needs that cargo does not provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// pure-ftpd and vsftpd on loopback, addresses in FERRY_TEST_PUREFTPD
    /// and FERRY_TEST_VSFTPD (.ci/ftp-servers.sh).
    FtpServers,
    /// `mkfs.vfat`, `fusefat`, `fusermount` and `/dev/fuse`.
    Fat32,
    /// `mount -t tmpfs` (root or CAP_SYS_ADMIN).
    Tmpfs,
    /// `mknod` of a character device (root or CAP_MKNOD), for the hostile
    /// drives with a device node in place of a file.
    DeviceNodes,
    /// A command on PATH, from the named Debian package.
    Tool { command: &'static str, package: &'static str },
}

/// Every name FERRY_TEST_SKIP accepts besides tool commands.
const KEYS: [&str; 4] = ["ftp-servers", "fat32", "tmpfs", "device-nodes"];

/// Tools whose names FERRY_TEST_SKIP accepts.
const TOOLS: [&str; 4] = ["bsdtar", "lftp", "tar", "sha256sum"];

impl Need {
    /// The name FERRY_TEST_SKIP uses for this need.
    pub fn key(self) -> &'static str {
        match self {
            Need::FtpServers => KEYS[0],
            Need::Fat32 => KEYS[1],
            Need::Tmpfs => KEYS[2],
            Need::DeviceNodes => KEYS[3],
            Need::Tool { command, .. } => command,
        }
    }

    /// How to get it.
    fn hint(self) -> String {
        match self {
            Need::FtpServers => "run the suite with `bash scripts/test` (as root it installs pure-ftpd and vsftpd, \
                 starts them on 127.0.0.1 and sets FERRY_TEST_*), or start them yourself: \
                 `bash .ci/ftp-servers.sh start && source /tmp/ferry-ftp-servers/env`"
                .to_owned(),
            Need::Fat32 => "apt-get install dosfstools fusefat fuse (`bash scripts/test` installs them as root); \
                 FUSE also needs /dev/fuse"
                .to_owned(),
            Need::Tmpfs => "mounting a tmpfs needs root (CAP_SYS_ADMIN): run `sudo bash scripts/test`".to_owned(),
            Need::DeviceNodes => {
                "creating a device node needs root (CAP_MKNOD): run `sudo bash scripts/test`".to_owned()
            }
            Need::Tool { package, .. } => {
                format!("apt-get install {package} (`bash scripts/test` installs it as root)")
            }
        }
    }

    /// Why the need is not met here, or `None` when it is. Tmpfs and
    /// device nodes are not probed: callers try and report a failure with
    /// [`opt_out_or_fail`].
    fn problem(self) -> Option<String> {
        match self {
            Need::FtpServers => {
                let unset: Vec<&str> = ["FERRY_TEST_PUREFTPD", "FERRY_TEST_VSFTPD"]
                    .into_iter()
                    .filter(|var| std::env::var_os(var).is_none())
                    .collect();
                (!unset.is_empty())
                    .then(|| format!("{} not set: the real FTP servers are not running", unset.join(", ")))
            }
            Need::Fat32 => {
                let mut missing: Vec<&str> =
                    ["mkfs.vfat", "fusefat"].into_iter().filter(|t| find_tool(t).is_none()).collect();
                if find_tool("fusermount").is_none() && find_tool("fusermount3").is_none() {
                    missing.push("fusermount");
                }
                if !Utf8Path::new("/dev/fuse").exists() {
                    missing.push("/dev/fuse");
                }
                (!missing.is_empty()).then(|| format!("not found: {}", missing.join(", ")))
            }
            Need::Tmpfs | Need::DeviceNodes => None,
            Need::Tool { command, .. } => find_tool(command).is_none().then(|| format!("`{command}` not found")),
        }
    }
}

/// True when `need` is met. When it is not: false if FERRY_TEST_SKIP opts
/// out of it (the caller then returns without testing), else the test
/// fails naming what is missing and how to install it.
pub fn require(need: Need) -> bool {
    match need.problem() {
        None => true,
        Some(problem) => {
            opt_out_or_fail(need, &problem);
            false
        }
    }
}

/// Fails the test because `need` is missing (`problem` says how), unless
/// FERRY_TEST_SKIP opts out of it: then records the opt-out and returns.
pub fn opt_out_or_fail(need: Need, problem: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    if !opted_out(need) {
        panic!(
            "{test} needs {} and cannot run: {problem}.\nhint: {}; or set {SKIP_VAR}={} to opt out (docs/testing.md)",
            need.key(),
            need.hint(),
            need.key()
        );
    }
    let line = format!("opt-out {} ({SKIP_VAR}): {test}: {problem}", need.key());
    eprintln!("{line}");
    if let Some(log) = std::env::var_os(LOG_VAR) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("open {LOG_VAR}={}: {e}", log.to_string_lossy()));
        // One write per line: appends from parallel tests do not interleave.
        file.write_all(format!("{line}\n").as_bytes()).expect("append to the opt-out log");
    }
}

/// Whether FERRY_TEST_SKIP names `need`; an unknown name fails the test
/// so that a typo does not turn into a silent run.
fn opted_out(need: Need) -> bool {
    let value = std::env::var(SKIP_VAR).unwrap_or_default();
    let names: Vec<&str> = value.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    for name in &names {
        assert!(
            KEYS.contains(name) || TOOLS.contains(name),
            "{SKIP_VAR}: unknown name `{name}` (known: {}, {})",
            KEYS.join(", "),
            TOOLS.join(", ")
        );
    }
    names.contains(&need.key())
}

/// `tool` on PATH or in the sbin folders (mkfs.vfat lives in /usr/sbin,
/// which an ordinary user's PATH lacks).
pub fn find_tool(tool: &str) -> Option<camino::Utf8PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| Utf8Path::new(dir).join(tool))
        .find(|candidate| candidate.is_file())
}
