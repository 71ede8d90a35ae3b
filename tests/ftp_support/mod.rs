//! FTP test fixtures: an in-process FTP/FTPS server (libunftp over its
//! filesystem back end, optionally refusing rename over an existing file),
//! endpoints for real servers started by `.ci/ftp-servers.sh`, a TCP proxy
//! that cuts or stalls connections, a throwaway CA, and tree comparisons
//! that ignore file modes (FTP does not carry them).
#![allow(dead_code)] // not every test uses every helper

use crate::support::{Need, Run, ferry, opt_out_or_fail, require, tree_state};
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use unftp_core::auth::{AuthenticationError, Authenticator, Credentials, DefaultUser, Principal};
use unftp_core::storage::{Error as StorageError, ErrorKind, Fileinfo, Result as StorageResult, StorageBackend};
use unftp_sbe_fs::Filesystem;

/// The user the in-process server accepts.
pub const USER: &str = "ferry";
/// Its password: distinctive, so a test can grep every output for it.
pub const PASSWORD: &str = "Pw-zq8X-never-print-7731";

// ---------------------------------------------------------------------------
// In-process server
// ---------------------------------------------------------------------------

/// How to set up an in-process server.
#[derive(Default, Clone)]
pub struct ServerConfig {
    /// Serve FTPS (explicit, AUTH TLS) with a certificate from a fresh CA.
    pub tls: bool,
    /// Refuse RNTO when the destination exists (as ProFTPD and IIS do by default).
    pub refuse_rename_over: bool,
    /// Serve this folder instead of a fresh temporary one.
    pub root: Option<Utf8PathBuf>,
}

/// A running in-process server; stopped when dropped.
pub struct InProcess {
    /// The folder the server's `/` maps to.
    pub root: Utf8PathBuf,
    pub port: u16,
    /// The TLS material, when serving FTPS.
    pub pki: Option<Pki>,
    /// How many renames the back end refused.
    pub refused_renames: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    pub fn start(config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().expect("server temp dir");
        let base = Utf8PathBuf::from_path_buf(dir.path().to_owned()).expect("UTF-8 temp path");
        let root = config.root.clone().unwrap_or_else(|| base.join("root"));
        std::fs::create_dir_all(&root).unwrap();
        let pki = config.tls.then(|| Pki::create(&base.join("pki")));
        let refused = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the in-process server");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (serve_root, serve_pki, serve_refused) = (root.clone(), pki.clone(), refused.clone());
        let refuse = config.refuse_rename_over;
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((socket, _)) = accepted else { continue };
                            let (root, refused) = (serve_root.clone(), serve_refused.clone());
                            let mut builder = libunftp::ServerBuilder::with_authenticator(
                                Box::new(move || TestFs::new(root.as_std_path(), refuse, refused.clone())),
                                Arc::new(FixedLogin),
                            )
                            .greeting("ferry test server")
                            .idle_session_timeout(120);
                            if let Some(pki) = &serve_pki {
                                builder = builder.ftps(pki.chain.as_std_path(), pki.key.as_std_path());
                            }
                            let server = builder.build().expect("build the in-process server");
                            tokio::spawn(async move {
                                let _ = server.service(socket).await;
                            });
                        }
                    }
                }
            });
            runtime.shutdown_background();
        });
        InProcess { root, port, pki, refused_renames: refused, stop: Some(stop), thread: Some(thread), _dir: dir }
    }

    /// `ftp://` (or `ftps://`) URL of `path` on this server, through `port`.
    pub fn url_via(&self, port: u16, path: &str) -> String {
        let scheme = if self.pki.is_some() { "ftps" } else { "ftp" };
        format!("{scheme}://{USER}@127.0.0.1:{port}/{}", path.trim_start_matches('/'))
    }

    pub fn url(&self, path: &str) -> String {
        self.url_via(self.port, path)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts exactly [`USER`] with [`PASSWORD`].
#[derive(Debug)]
struct FixedLogin;

#[async_trait::async_trait]
impl Authenticator for FixedLogin {
    async fn authenticate(&self, username: &str, creds: &Credentials) -> Result<Principal, AuthenticationError> {
        if username != USER {
            return Err(AuthenticationError::BadUser);
        }
        if creds.password.as_deref() != Some(PASSWORD) {
            return Err(AuthenticationError::BadPassword);
        }
        Ok(Principal { username: username.to_owned() })
    }
}

/// unftp-sbe-fs, optionally refusing to rename over an existing file.
#[derive(Debug)]
pub struct TestFs {
    inner: Filesystem,
    root: PathBuf,
    refuse_rename_over: bool,
    refused: Arc<AtomicUsize>,
}

impl TestFs {
    fn new(root: &Path, refuse_rename_over: bool, refused: Arc<AtomicUsize>) -> Self {
        TestFs {
            inner: Filesystem::new(root).expect("filesystem back end"),
            root: root.to_owned(),
            refuse_rename_over,
            refused,
        }
    }

    fn on_disk(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }
}

type Meta = <Filesystem as StorageBackend<DefaultUser>>::Metadata;

#[async_trait::async_trait]
impl StorageBackend<DefaultUser> for TestFs {
    type Metadata = Meta;

    fn enter(&mut self, user: &DefaultUser) -> std::io::Result<()> {
        StorageBackend::<DefaultUser>::enter(&mut self.inner, user)
    }

    fn supported_features(&self) -> u32 {
        StorageBackend::<DefaultUser>::supported_features(&self.inner)
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(&self, user: &DefaultUser, path: P) -> StorageResult<Meta> {
        self.inner.metadata(user, path).await
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> StorageResult<Vec<Fileinfo<PathBuf, Meta>>> {
        self.inner.list(user, path).await
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
        start_pos: u64,
    ) -> StorageResult<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>> {
        self.inner.get(user, path, start_pos).await
    }

    async fn put<P: AsRef<Path> + Send + Debug, R: tokio::io::AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &DefaultUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> StorageResult<u64> {
        self.inner.put(user, input, path, start_pos).await
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &DefaultUser, path: P) -> StorageResult<()> {
        self.inner.del(user, path).await
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &DefaultUser, path: P) -> StorageResult<()> {
        self.inner.mkd(user, path).await
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(&self, user: &DefaultUser, from: P, to: P) -> StorageResult<()> {
        if self.refuse_rename_over && self.on_disk(to.as_ref()).exists() {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StorageError::from(ErrorKind::PermissionDenied));
        }
        self.inner.rename(user, from, to).await
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &DefaultUser, path: P) -> StorageResult<()> {
        self.inner.rmd(user, path).await
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, user: &DefaultUser, path: P) -> StorageResult<()> {
        self.inner.cwd(user, path).await
    }
}

// ---------------------------------------------------------------------------
// TLS material (openssl, at test time)
// ---------------------------------------------------------------------------

/// A CA and a server certificate for 127.0.0.1 signed by it.
#[derive(Clone)]
pub struct Pki {
    pub ca: Utf8PathBuf,
    /// Server certificate followed by the CA certificate.
    pub chain: Utf8PathBuf,
    pub key: Utf8PathBuf,
    /// `sha256:` + hex of the server certificate (DER), as ferry prints it.
    pub fingerprint: String,
    /// The hex digest alone.
    pub sha256: String,
}

fn openssl(args: &[&str]) {
    let output = std::process::Command::new("openssl").args(args).output().expect("run openssl");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

impl Pki {
    /// Makes a CA and a server certificate in `dir` (needs the `openssl` tool).
    pub fn create(dir: &Utf8Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let p = |name: &str| dir.join(name).into_string();
        let ext = p("server.ext");
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        let ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
        openssl(&[&["genpkey"][..], &ec, &["-out", &p("ca.key")]].concat());
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &p("ca.key"),
            "-subj",
            "/CN=ferry test CA",
            "-days",
            "3",
            "-out",
            &p("ca.pem"),
        ]);
        // RSA for the server key, as the CI servers use: libunftp's TLS with
        // an EC P-256 server key intermittently garbled its handshake here.
        let rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
        openssl(&[&["genpkey"][..], &rsa, &["-out", &p("server.key")]].concat());
        openssl(&["req", "-new", "-key", &p("server.key"), "-subj", "/CN=127.0.0.1", "-out", &p("server.csr")]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "3",
            "-extfile",
            &ext,
            "-out",
            &p("server.pem"),
        ]);
        let server = std::fs::read_to_string(p("server.pem")).unwrap();
        let ca = std::fs::read_to_string(p("ca.pem")).unwrap();
        std::fs::write(p("chain.pem"), format!("{server}{ca}")).unwrap();
        let sha256 = pem_sha256(&server);
        Pki {
            ca: dir.join("ca.pem"),
            chain: dir.join("chain.pem"),
            key: dir.join("server.key"),
            fingerprint: format!("sha256:{sha256}"),
            sha256,
        }
    }
}

/// SHA-256 (hex) of the DER bytes of the first certificate in a PEM text.
pub fn pem_sha256(pem: &str) -> String {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    hex::encode(Sha256::digest(base64_decode(&body)))
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

// ---------------------------------------------------------------------------
// Endpoints: where a conformance case runs
// ---------------------------------------------------------------------------

/// One place on one FTP server to install into, and how to reach it.
pub struct Endpoint {
    /// Server kind, for messages.
    pub name: String,
    /// The TARGET argument.
    pub url: String,
    /// The folder on this machine's disk that the URL's path maps to.
    pub dir: Utf8PathBuf,
    /// FTP options every command against this endpoint needs.
    pub args: Vec<String>,
    pub password: String,
    /// HOME for ferry (so a developer's ~/.netrc is never read).
    home: tempfile::TempDir,
    /// Keeps an in-process server running.
    pub server: Option<InProcess>,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A fresh path name for one test on a shared server.
pub fn unique(label: &str) -> String {
    format!("{label}-{}-{}", std::process::id(), UNIQUE.fetch_add(1, Ordering::SeqCst))
}

/// The servers the conformance suite runs against.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    InProcess,
    InProcessTls,
    PureFtpd,
    PureFtpdTls,
    Vsftpd,
    VsftpdTls,
}

impl Kind {
    /// A fresh, empty endpoint. A real server that is not running fails the
    /// test naming how to start it; `None` only when FERRY_TEST_SKIP names
    /// ftp-servers (tests/support/need.rs).
    pub fn endpoint(self, label: &str) -> Option<Endpoint> {
        let home = || tempfile::tempdir().unwrap();
        let in_process = |tls: bool| {
            let server = InProcess::start(ServerConfig { tls, ..ServerConfig::default() });
            let name = unique(label);
            let mut args = Vec::new();
            if let Some(pki) = &server.pki {
                args = vec!["--pin-sha256".to_owned(), pki.fingerprint.clone()];
            }
            Some(Endpoint {
                name: format!("{self:?}"),
                url: server.url(&format!("srv/{name}")),
                dir: server.root.join("srv").join(&name),
                args,
                password: PASSWORD.to_owned(),
                home: home(),
                server: Some(server),
            })
        };
        let real = |var: &str, tls: bool, extra: &[&str]| {
            if !require(Need::FtpServers) {
                return None;
            }
            let base = std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set"));
            let dir = std::env::var(format!("{var}_DIR")).unwrap_or_else(|_| panic!("{var} is set, {var}_DIR is not"));
            let password = std::env::var("FERRY_TEST_FTP_PASSWORD").expect("FERRY_TEST_FTP_PASSWORD with the servers");
            let name = unique(label);
            let mut url = format!("{}/{name}", base.trim_end_matches('/'));
            let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            if tls {
                let ca = std::env::var("FERRY_TEST_FTP_CA").expect("FERRY_TEST_FTP_CA with the servers");
                url = url.replacen("ftp://", "ftps://", 1);
                args.extend(["--ca-file".to_owned(), ca]);
            }
            Some(Endpoint {
                name: format!("{self:?}"),
                url,
                dir: Utf8PathBuf::from(dir).join(&name),
                args,
                password,
                home: home(),
                server: None,
            })
        };
        match self {
            Kind::InProcess => in_process(false),
            Kind::InProcessTls => in_process(true),
            Kind::PureFtpd => real("FERRY_TEST_PUREFTPD", false, &[]),
            Kind::PureFtpdTls => real("FERRY_TEST_PUREFTPD", true, &[]),
            Kind::Vsftpd => real("FERRY_TEST_VSFTPD", false, &[]),
            // vsftpd's TLS 1.3 session reuse fails on later data connections.
            Kind::VsftpdTls => real("FERRY_TEST_VSFTPD", true, &["--tls12"]),
        }
    }
}

impl Endpoint {
    /// An endpoint at `path` on a server the caller keeps running.
    pub fn for_server(server: &InProcess, path: &str) -> Self {
        let args = match &server.pki {
            Some(pki) => vec!["--pin-sha256".to_owned(), pki.fingerprint.clone()],
            None => Vec::new(),
        };
        Endpoint {
            name: "in-process".into(),
            url: server.url(path),
            dir: server.root.join(path),
            args,
            password: PASSWORD.to_owned(),
            home: tempfile::tempdir().unwrap(),
            server: None,
        }
    }

    /// `ferry ARGS... [endpoint options]` with the password in the environment.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[("FERRY_FTP_PASSWORD", self.password.as_str())])
    }

    /// Like [`run`](Self::run) with explicit environment variables (the
    /// password is not set unless given).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = ferry();
        command.env_remove("FERRY_FTP_PASSWORD").env("HOME", self.home.path());
        for (key, value) in env {
            command.env(key, value);
        }
        command.args(args).args(&self.args);
        let run = Run::from(command.output().expect("run ferry"));
        assert_no_password(&run, &self.password, args);
        run
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Another URL on the same server (a sibling folder), with its disk folder.
    pub fn sibling(&self, label: &str) -> (String, Utf8PathBuf) {
        let name = unique(label);
        let (base, _) = self.url.rsplit_once('/').unwrap();
        (format!("{base}/{name}"), self.dir.parent().unwrap().join(name))
    }
}

/// Every command's output is checked: the password must never appear.
pub fn assert_no_password(run: &Run, password: &str, args: &[&str]) {
    assert!(
        !run.stdout.contains(password) && !run.stderr.contains(password),
        "the password appeared in the output of {args:?}:\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

// ---------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------

/// Path → `dir` or `file <sha256>`, without modes (FTP servers pick their
/// own) and without ferry's state folder: what devices read.
pub fn content_tree(root: &Utf8Path) -> BTreeMap<String, String> {
    tree_state(root)
        .into_iter()
        .filter(|(path, _)| path != ".ferry" && !path.starts_with(".ferry/"))
        .map(|(path, what)| {
            let what = match what.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["file", _mode, hash] => format!("file {hash}"),
                _ => what,
            };
            (path, what)
        })
        .collect()
}

/// Panics unless the server folder serves exactly one of the given trees.
pub fn assert_serves_one_of(dir: &Utf8Path, trees: &[&BTreeMap<String, String>], context: &str) -> usize {
    let served = content_tree(dir);
    match trees.iter().position(|tree| **tree == served) {
        Some(n) => n,
        None => {
            let mut diffs = Vec::new();
            for (n, tree) in trees.iter().enumerate() {
                let only_served: Vec<_> = served.keys().filter(|k| !tree.contains_key(*k)).take(8).collect();
                let only_tree: Vec<_> = tree.keys().filter(|k| !served.contains_key(*k)).take(8).collect();
                let differ: Vec<_> = served
                    .iter()
                    .filter(|(k, v)| tree.get(*k).is_some_and(|t| t != *v))
                    .map(|(k, _)| k)
                    .take(8)
                    .collect();
                diffs.push(format!("vs tree {n}: extra {only_served:?}, missing {only_tree:?}, different {differ:?}"));
            }
            panic!("{context}: {dir} serves a mix, neither snapshot:\n{}", diffs.join("\n"));
        }
    }
}

/// Downloads the tree at `url` (without `.ferry/`) into `dest` with lftp;
/// `false` only when lftp is missing and FERRY_TEST_SKIP names lftp.
pub fn lftp_mirror(url: &str, password: &str, extra_tls: Option<&Utf8Path>, dest: &Utf8Path) -> bool {
    if !require(Need::Tool { command: "lftp", package: "lftp" }) {
        return false;
    }
    let rest = url.split_once("://").unwrap().1;
    let (authority, path) = rest.split_once('/').unwrap();
    let (user, host) = authority.split_once('@').unwrap();
    let mut settings = String::from("set net:max-retries 2; set net:timeout 10; set net:reconnect-interval-base 1; ");
    match extra_tls {
        Some(ca) => settings.push_str(&format!(
            "set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ssl:ca-file {ca}; set ssl:check-hostname no; "
        )),
        None => settings.push_str("set ftp:ssl-allow no; "),
    }
    let script = format!("{settings}mirror --parallel=4 -x ^\\.ferry/ /{path} {dest}; quit");
    let output = std::process::Command::new("lftp")
        .args(["-u", &format!("{user},{password}"), "-p", host.rsplit_once(':').unwrap().1])
        .args(["-e", &script, host.rsplit_once(':').unwrap().0])
        .output()
        .expect("run lftp");
    assert!(output.status.success(), "lftp mirror failed: {}", String::from_utf8_lossy(&output.stderr));
    true
}

// ---------------------------------------------------------------------------
// A TCP proxy that misbehaves once
// ---------------------------------------------------------------------------

/// Which connections a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Control,
    Data,
}

/// What goes wrong, once, after `after` bytes (both directions counted) on
/// connections of `channel`.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The connection is closed in both directions.
    Cut { channel: Channel, after: u64 },
    /// Nothing more is forwarded on that connection (it stays open).
    Stall { channel: Channel, after: u64 },
}

struct ProxyShared {
    fault: Option<Fault>,
    fired: AtomicBool,
    bytes: [AtomicU64; 2],
    stop: AtomicBool,
}

/// Forwards `127.0.0.1:port` to an FTP server, rewriting `227` replies so
/// data connections go through the proxy too. Plain FTP only.
pub struct Proxy {
    pub port: u16,
    shared: Arc<ProxyShared>,
}

impl Proxy {
    pub fn start(upstream: u16, fault: Option<Fault>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(ProxyShared {
            fault,
            fired: AtomicBool::new(false),
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
            stop: AtomicBool::new(false),
        });
        let accept_shared = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let shared = accept_shared.clone();
                std::thread::spawn(move || control(client, server, shared));
            }
        });
        Proxy { port, shared }
    }

    /// Whether the fault happened.
    pub fn fired(&self) -> bool {
        self.shared.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn control(client: TcpStream, server: TcpStream, shared: Arc<ProxyShared>) {
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up_shared = shared.clone();
    std::thread::spawn(move || pump(c2, s2, Channel::Control, &up_shared));
    // Replies: line by line, so `227` can be rewritten.
    let mut reader = BufReader::new(server.try_clone().unwrap());
    let mut client_out = client.try_clone().unwrap();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.starts_with(b"227 ")
            && let Some(rewritten) = relay_passive(&line, &shared)
        {
            line = rewritten;
        }
        if !count_and_check(&shared, Channel::Control, line.len(), &client, &server, &mut client_out, &line) {
            return;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// Opens a one-connection relay for the passive address in a `227` reply
/// and returns the reply pointing at the relay.
fn relay_passive(line: &[u8], shared: &Arc<ProxyShared>) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(line);
    let inner = text.split_once('(')?.1.split_once(')')?.0;
    let numbers: Vec<u16> = inner.split(',').map(|n| n.trim().parse().ok()).collect::<Option<_>>()?;
    let [_, _, _, _, p1, p2] = numbers.as_slice() else { return None };
    let upstream = p1 * 256 + p2;
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let port = listener.local_addr().ok()?.port();
    let shared = shared.clone();
    std::thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else { return };
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let down_shared = shared.clone();
        std::thread::spawn(move || pump(s2, c2, Channel::Data, &down_shared));
        pump(client, server, Channel::Data, &shared);
    });
    Some(format!("227 Entering Passive Mode (127,0,0,1,{},{}).\r\n", port / 256, port % 256).into_bytes())
}

fn pump(mut from: TcpStream, to: TcpStream, channel: Channel, shared: &Arc<ProxyShared>) {
    let mut out = to.try_clone().unwrap();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !count_and_check(shared, channel, n, &from, &to, &mut out, &buffer[..n]) {
            return;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Counts `len` bytes and forwards them unless the fault fires now; then it
/// forwards only the bytes before the limit and cuts or stalls. Returns
/// whether to go on.
#[allow(clippy::too_many_arguments)]
fn count_and_check(
    shared: &ProxyShared,
    channel: Channel,
    len: usize,
    a: &TcpStream,
    b: &TcpStream,
    out: &mut TcpStream,
    bytes: &[u8],
) -> bool {
    let before = shared.bytes[channel as usize].fetch_add(len as u64, Ordering::SeqCst);
    let (fault_channel, after, cut) = match shared.fault {
        Some(Fault::Cut { channel, after }) => (channel, after, true),
        Some(Fault::Stall { channel, after }) => (channel, after, false),
        None => return out.write_all(bytes).is_ok(),
    };
    if fault_channel != channel || before + len as u64 <= after || shared.fired.swap(true, Ordering::SeqCst) {
        return out.write_all(bytes).is_ok();
    }
    let keep = after.saturating_sub(before) as usize;
    let _ = out.write_all(&bytes[..keep.min(bytes.len())]);
    if cut {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    } else {
        // Stall: keep both sockets open and forward nothing more until the
        // proxy is dropped.
        while !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    }
    false
}

// ---------------------------------------------------------------------------
// tmpfs for disk-full tests
// ---------------------------------------------------------------------------

/// A small tmpfs mounted at a temporary folder; unmounted when dropped.
pub struct Tmpfs {
    pub dir: Utf8PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`). Where mounting is not
    /// permitted the test fails, or with FERRY_TEST_SKIP=tmpfs returns `None`.
    pub fn mount(size: &str) -> Option<Self> {
        let parent = tempfile::tempdir().expect("create a folder for the tmpfs");
        let dir = Utf8PathBuf::from_path_buf(parent.path().join("fs")).unwrap();
        std::fs::create_dir(&dir).expect("create the tmpfs mount point");
        let problem = match std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.as_str()])
            .output()
        {
            Ok(output) if output.status.success() => return Some(Tmpfs { dir, _parent: parent }),
            Ok(output) => format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&output.stderr).trim()),
            Err(e) => format!("cannot run mount: {e}"),
        };
        opt_out_or_fail(Need::Tmpfs, &problem);
        None
    }

    pub fn resize(&self, size: &str) {
        let output = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}"), self.dir.as_str()])
            .output()
            .unwrap();
        assert!(output.status.success(), "remount: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").args(["-l", self.dir.as_str()]).status();
    }
}
