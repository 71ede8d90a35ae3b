//! FTP and FTPS servers as update sources (suppaftp).
//!
//! FTP offers no atomic tree switch, no hard links and no locks, so this
//! target declares exactly that in its [`Capabilities`] and the ordered
//! switch above it does the rest (`formats/target-state-v1.md`). What this
//! file guarantees on its own:
//!
//! * binary transfers always (suppaftp starts in ASCII mode, which rewrites
//!   line endings), passive mode unless `--active`, timeouts on the control
//!   and on every data connection;
//! * a staged upload counts as written only when the server's `SIZE` equals
//!   the bytes sent (a `226` reply proves nothing);
//! * a server that refuses rename over an existing file gets delete, then
//!   rename — detected on the first refusal, not configured;
//! * transient failures (lost connections, timeouts, 4xx replies) are
//!   retried on a fresh connection with backoff; 5xx replies are not;
//! * a lock folder `.ferry/lock` created with `MKD`, which fails when it
//!   exists on every server we know, so two publishers cannot interleave.

mod tls;

use super::location::{FtpUrl, Tls};
use super::{Backend, BackendLock, Capabilities, Download, StagedFile};
use crate::error::{Error, Result};
use crate::rel_path::RelPath;
use camino::Utf8PathBuf;
use rustls::ClientConfig;
use std::collections::HashSet;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};
use suppaftp::types::FileType;
use suppaftp::{FtpError, RustlsConnector, RustlsFtpStream};
use zeroize::Zeroizing;

/// Attempts per command before a transient failure is reported.
const ATTEMPTS: u32 = 5;
/// How many one-second looks at a lock folder without an owner file before
/// it is judged left behind.
const OWNERLESS_CHECKS: u32 = 10;
/// Age after which a lock whose owner cannot be checked is considered stale.
const LOCK_STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// How to reach and treat an FTP server.
#[derive(Clone)]
pub struct FtpOptions {
    /// The password (from `FERRY_FTP_PASSWORD`, `~/.netrc` or `--password-file`).
    pub password: Option<Zeroizing<String>>,
    /// Parallel connections for uploads.
    pub connections: usize,
    /// Active instead of passive data connections.
    pub active: bool,
    /// Connect, read and write timeout for control and data connections.
    pub timeout: Duration,
    /// Trust only this CA (PEM) instead of the system roots.
    pub ca_file: Option<Utf8PathBuf>,
    /// Accept exactly the server certificate with this SHA-256 fingerprint.
    pub pin_sha256: Option<[u8; 32]>,
    /// Offer TLS 1.2 only (for servers such as vsftpd whose TLS 1.3 session
    /// reuse fails on later data connections).
    pub tls12_only: bool,
}

impl Default for FtpOptions {
    /// Anonymous, four passive connections, 30 s timeouts, system roots.
    fn default() -> Self {
        FtpOptions {
            password: None,
            connections: 4,
            active: false,
            timeout: Duration::from_secs(30),
            ca_file: None,
            pin_sha256: None,
            tls12_only: false,
        }
    }
}

impl std::fmt::Debug for FtpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("connections", &self.connections)
            .field("active", &self.active)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

type Connection = RustlsFtpStream;

/// Opens and keeps connections to one server.
struct Pool {
    url: FtpUrl,
    options: FtpOptions,
    tls: Option<Arc<ClientConfig>>,
    idle: Mutex<Idle>,
    /// Signalled when a connection is given back or an early one is done.
    changed: Condvar,
}

/// Connections ready for use, and how many [`Pool::open_early`] is still
/// opening (a caller waits for those rather than opening one more).
#[derive(Default)]
struct Idle {
    ready: Vec<Connection>,
    opening: usize,
    /// Whether [`Pool::open_early`] already ran (once per target).
    opened_early: bool,
}

impl Pool {
    fn take(&self) -> std::result::Result<Connection, FtpError> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(connection) = idle.ready.pop() {
                return Ok(connection);
            }
            if idle.opening == 0 {
                break;
            }
            idle = self.changed.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
        drop(idle);
        self.connect()
    }

    fn give(&self, connection: Connection) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).ready.push(connection);
        self.changed.notify_one();
    }

    /// Opens up to `--connections` minus one more connections in the
    /// background, so that their logins (40-75 ms each on pure-ftpd) overlap
    /// with the local work before the uploads instead of delaying them. A
    /// failure is dropped: the caller that needs the connection opens it
    /// again and reports the error.
    fn open_early(self: &Arc<Self>) {
        let extra = self.options.connections.max(1) - 1;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if std::mem::replace(&mut idle.opened_early, true) {
            return;
        }
        idle.opening += extra;
        drop(idle);
        for _ in 0..extra {
            let pool = Arc::clone(self);
            std::thread::spawn(move || {
                let connection = pool.connect().ok();
                let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.opening -= 1;
                idle.ready.extend(connection);
                drop(idle);
                pool.changed.notify_all();
            });
        }
    }

    fn connect(&self) -> std::result::Result<Connection, FtpError> {
        let timeout = self.options.timeout;
        let address = resolve(&self.url.host, self.url.port)?;
        let socket = TcpStream::connect_timeout(&address, timeout).map_err(FtpError::ConnectionError)?;
        socket.set_read_timeout(Some(timeout)).map_err(FtpError::ConnectionError)?;
        socket.set_write_timeout(Some(timeout)).map_err(FtpError::ConnectionError)?;
        let data_socket = move |address: SocketAddr| {
            let socket = TcpStream::connect_timeout(&address, timeout).map_err(FtpError::ConnectionError)?;
            socket.set_read_timeout(Some(timeout)).map_err(FtpError::ConnectionError)?;
            socket.set_write_timeout(Some(timeout)).map_err(FtpError::ConnectionError)?;
            Ok(socket)
        };
        let mut connection = match (&self.tls, self.url.tls) {
            (Some(config), Tls::Implicit) => {
                drop(socket);
                let connection = Connection::connect_secure_implicit(
                    address,
                    RustlsConnector::from(config.clone()),
                    &self.url.host,
                )?;
                connection.get_ref().set_read_timeout(Some(timeout)).map_err(FtpError::ConnectionError)?;
                connection.get_ref().set_write_timeout(Some(timeout)).map_err(FtpError::ConnectionError)?;
                connection
            }
            _ => Connection::connect_with_stream(socket)?,
        };
        connection = connection.passive_stream_builder(data_socket);
        if let (Some(config), Tls::Explicit) = (&self.tls, self.url.tls) {
            connection = connection.into_secure(RustlsConnector::from(config.clone()), &self.url.host)?;
        }
        if self.options.active {
            connection = connection.active_mode(timeout);
        }
        let password = self.options.password.as_ref().map_or("anonymous@", |p| p.as_str());
        connection.login(self.url.user.as_str(), password)?;
        connection.transfer_type(FileType::Binary)?;
        Ok(connection)
    }
}

fn resolve(host: &str, port: u16) -> std::result::Result<SocketAddr, FtpError> {
    (host, port)
        .to_socket_addrs()
        .map_err(FtpError::ConnectionError)?
        .next()
        .ok_or_else(|| FtpError::ConnectionError(std::io::Error::other(format!("`{host}` has no address"))))
}

/// The reply code of a failed command, if the server sent one.
fn reply_code(error: &FtpError) -> Option<u32> {
    match error {
        FtpError::UnexpectedResponse(response) => Some(response.status.code()),
        _ => None,
    }
}

/// Lost connections, timeouts and 4xx replies ("transient negative
/// completion" in RFC 959) are worth another try; 5xx replies are not.
fn is_transient(error: &FtpError) -> bool {
    match error {
        FtpError::ConnectionError(_) | FtpError::BadResponse | FtpError::DataConnectionAlreadyOpen => true,
        // A positive reply where another was expected means the control
        // connection lost sync (a cut mid-reply): a fresh connection helps.
        FtpError::UnexpectedResponse(response) => response.status.code() < 500,
        _ => false,
    }
}

/// Fails (transiently, so the caller retries on a fresh connection) when
/// the server's SIZE of `path` differs from the bytes received.
fn check_length(connection: &mut Connection, path: &str, received: u64) -> std::result::Result<(), FtpError> {
    let size = connection.size(path)? as u64;
    if size == received {
        return Ok(());
    }
    let problem = format!("received {received} of {size} bytes (data connection cut)");
    Err(FtpError::ConnectionError(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, problem)))
}

/// `550`: the file or folder is not there (or not accessible). Only this
/// permanent reply counts; a transient `450` must never be read as "absent".
fn is_missing(error: &FtpError) -> bool {
    reply_code(error) == Some(550)
}

fn describe(error: &FtpError) -> String {
    match error {
        FtpError::UnexpectedResponse(response) => {
            let body = String::from_utf8_lossy(&response.body).trim().to_owned();
            if body.is_empty() {
                format!("server replied {}", response.status.code())
            } else {
                format!("server replied {body}")
            }
        }
        other => other.to_string(),
    }
}

/// An FTP or FTPS update source.
pub struct FtpBackend {
    pool: Arc<Pool>,
    created_dirs: Mutex<HashSet<String>>,
    rename_replaces: AtomicBool,
}

impl FtpBackend {
    /// Downloads `path` into `to` (at most `limit + 1` bytes), hashing it;
    /// `None` if it is absent.
    fn fetch(&self, path: &str, limit: u64, to: &mut dyn Download) -> Result<Option<crate::digest::Hashed>> {
        self.run("download", path, |c| {
            let mut stream = match c.retr_as_stream(path) {
                Ok(stream) => stream,
                Err(error) if is_missing(&error) => return Ok(None),
                Err(error) => return Err(error),
            };
            // A retried download starts again from empty.
            to.restart().map_err(FtpError::ConnectionError)?;
            let hashed = crate::digest::copy_hashing(&mut stream, Some(&mut *to), limit, &|_| {})
                .map_err(FtpError::ConnectionError)?;
            match stream.finish() {
                // Some servers (libunftp) say 150 first and 550 only after.
                Err(error) if is_missing(&error) && hashed.size == 0 => Ok(None),
                Err(error) => Err(error),
                Ok(()) if hashed.size > limit => Ok(Some(hashed)),
                Ok(()) => {
                    // A cut data connection can look like a clean end, and a
                    // 226 proves nothing: the length must match SIZE.
                    check_length(c, path, hashed.size)?;
                    Ok(Some(hashed))
                }
            }
        })
    }

    /// The server paths of tree file `path` and of state file `kept`, with
    /// the state file's folder made, when there is something to keep: not
    /// when `kept` exists already (the step ran; `path` may hold the new
    /// file a later step put there) or `path` does not.
    fn to_keep(&self, path: &RelPath, kept: &str) -> Result<Option<(String, String)>> {
        let from = self.tree_path(path);
        let to = self.state_path(kept);
        if self.size_of(&to)?.is_some() || self.size_of(&from)?.is_none() {
            return Ok(None);
        }
        if let Some((parent, _)) = to.rsplit_once('/') {
            self.make_dirs(parent)?;
        }
        Ok(Some((from, to)))
    }

    /// A target at `url`; nothing is contacted until the first operation.
    pub fn new(url: FtpUrl, options: FtpOptions) -> Result<Self> {
        let tls = match url.tls {
            Tls::None => None,
            Tls::Explicit | Tls::Implicit => Some(Arc::new(tls::client_config(&options, &url)?)),
        };
        let pool = Pool { url, options, tls, idle: Mutex::default(), changed: Condvar::new() };
        Ok(FtpBackend {
            pool: Arc::new(pool),
            created_dirs: Mutex::new(HashSet::new()),
            rename_replaces: AtomicBool::new(true),
        })
    }

    fn url(&self) -> &FtpUrl {
        &self.pool.url
    }

    fn tree_path(&self, path: &RelPath) -> String {
        format!("{}/{path}", self.url().path)
    }

    fn state_root(&self) -> String {
        format!("{}/{}", self.url().path, super::STATE_DIR)
    }

    fn state_path(&self, name: &str) -> String {
        format!("{}/{name}", self.state_root())
    }

    fn error(&self, action: &'static str, path: &str, error: &FtpError) -> Error {
        Error::Ftp {
            target: self.url().to_string(),
            action,
            path: path.to_owned(),
            problem: describe(error),
            transient: is_transient(error),
        }
    }

    /// Runs `op` on a pooled connection, retrying transient failures on a
    /// fresh connection with exponential backoff.
    fn run<T>(
        &self,
        action: &'static str,
        path: &str,
        mut op: impl FnMut(&mut Connection) -> std::result::Result<T, FtpError>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let outcome = self.pool.take().and_then(|mut connection| {
                let result = op(&mut connection);
                match &result {
                    Err(error) if is_transient(error) => drop(connection),
                    _ => self.pool.give(connection),
                }
                result
            });
            match outcome {
                Ok(value) => return Ok(value),
                Err(error) if is_transient(&error) && attempt + 1 < ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                    attempt += 1;
                }
                Err(error) => return Err(self.error(action, path, &error)),
            }
        }
    }

    /// Size of a file, `None` when the server says it is not there.
    fn size_of(&self, path: &str) -> Result<Option<u64>> {
        self.run("read the size of", path, |c| match c.size(path) {
            Ok(size) => Ok(Some(size as u64)),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(error),
        })
    }

    /// Creates every folder of `path` (absolute) that is missing.
    fn make_dirs(&self, path: &str) -> Result<()> {
        let mut prefix = String::new();
        for component in path.split('/').filter(|c| !c.is_empty()) {
            prefix.push('/');
            prefix.push_str(component);
            if self.created_dirs.lock().unwrap_or_else(|p| p.into_inner()).contains(&prefix) {
                continue;
            }
            self.make_dir_at(&prefix)?;
            self.created_dirs.lock().unwrap_or_else(|p| p.into_inner()).insert(prefix.clone());
        }
        Ok(())
    }

    fn make_dir_at(&self, path: &str) -> Result<()> {
        self.run("create folder", path, |c| match c.mkdir(path) {
            Ok(()) => Ok(()),
            // Already there? Then changing into it works.
            Err(error) if !is_transient(&error) => c.cwd(path).map_err(|_| error),
            Err(error) => Err(error),
        })
    }

    /// Uploads `bytes` to `path` through a temporary name, checks the size
    /// and renames it into place.
    fn upload_small(&self, path: &str, bytes: &[u8]) -> Result<()> {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.make_dirs(parent)?;
        }
        let temporary = format!("{path}.ferry-tmp");
        self.run("upload", &temporary, |c| c.put_file(&temporary, &mut &bytes[..]).map(drop))?;
        let size = self.size_of(&temporary)?;
        if size != Some(bytes.len() as u64) {
            return Err(Error::Ftp {
                target: self.url().to_string(),
                action: "upload",
                path: temporary,
                problem: format!(
                    "the server holds {} bytes after {} were sent",
                    size.map_or("no".into(), |s| s.to_string()),
                    bytes.len()
                ),
                transient: false,
            });
        }
        self.rename(&temporary, path)
    }

    /// Renames `from` over `to`, deleting `to` first on servers that refuse
    /// to replace (detected on the first refusal and remembered).
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        if !self.rename_replaces.load(Ordering::Relaxed) {
            self.delete_at(to)?;
        }
        let renamed = self.run("rename into place", to, |c| match c.rename(from, to) {
            Ok(()) => Ok(true),
            Err(error) if !is_transient(&error) => Ok(false),
            Err(error) => Err(error),
        })?;
        if renamed {
            return Ok(());
        }
        if self.size_of(from)?.is_none() {
            // The source is gone: an earlier attempt (or run) already did it.
            return Ok(());
        }
        if self.size_of(to)?.is_some() {
            self.rename_replaces.store(false, Ordering::Relaxed);
            self.delete_at(to)?;
            return self.run("rename into place", to, |c| c.rename(from, to));
        }
        self.run("rename into place", to, |c| c.rename(from, to))
    }

    fn delete_at(&self, path: &str) -> Result<()> {
        self.run("delete", path, |c| match c.rm(path) {
            Err(error) if is_missing(&error) => Ok(()),
            other => other,
        })
    }

    /// Names in folder `path` with whether each is a folder; `None` if the
    /// folder does not exist.
    fn list_dir(&self, path: &str) -> Result<Option<Vec<(String, bool)>>> {
        let lines = self.run("list", path, |c| match c.list(Some(path)) {
            Ok(lines) => Ok(Some(lines)),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(error),
        })?;
        let Some(lines) = lines else { return Ok(None) };
        let mut entries = Vec::new();
        for line in lines {
            let parsed = suppaftp::list::ListParser::parse_posix(&line)
                .or_else(|_| suppaftp::list::ListParser::parse_dos(&line));
            let Ok(file) = parsed else { continue };
            let name = file.name().rsplit('/').next().unwrap_or(file.name()).to_owned();
            if name != "." && name != ".." {
                entries.push((name, file.is_directory()));
            }
        }
        Ok(Some(entries))
    }

    fn remove_recursively(&self, path: &str) -> Result<()> {
        if let Some(entries) = self.list_dir(path)? {
            for (name, is_dir) in entries {
                let child = format!("{path}/{name}");
                if is_dir { self.remove_recursively(&child)? } else { self.delete_at(&child)? }
            }
            self.run("remove folder", path, |c| match c.rmdir(path) {
                Err(error) if is_missing(&error) => Ok(()),
                other => other,
            })?;
        }
        self.created_dirs.lock().unwrap_or_else(|p| p.into_inner()).retain(|d| !d.starts_with(path));
        Ok(())
    }

    /// Copies `from` to `to` on the server through two connections of this
    /// host, and checks the copy's size.
    fn copy_through_client(&self, from: &str, to: &str) -> Result<()> {
        let mut reader = self.pool.take().map_err(|e| self.error("download", from, &e))?;
        let mut writer = self.pool.take().map_err(|e| self.error("upload", to, &e))?;
        let mut source = reader.retr_as_stream(from).map_err(|e| self.error("download", from, &e))?;
        let mut sink = writer.put_with_stream(to).map_err(|e| self.error("upload", to, &e))?;
        std::io::copy(&mut source, &mut sink).map_err(|e| self.error("copy", from, &FtpError::ConnectionError(e)))?;
        source.finish().map_err(|e| self.error("download", from, &e))?;
        sink.finish().map_err(|e| self.error("upload", to, &e))?;
        self.pool.give(reader);
        self.pool.give(writer);
        let (original, copy) = (self.size_of(from)?, self.size_of(to)?);
        if original != copy {
            return Err(Error::Ftp {
                target: self.url().to_string(),
                action: "keep a copy of",
                path: from.to_owned(),
                problem: format!("the copy holds {copy:?} bytes, the original {original:?}"),
                transient: true,
            });
        }
        Ok(())
    }

    fn download(&self, path: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        let mut bytes = Vec::new();
        Ok(self.fetch(path, cap, &mut bytes)?.map(|_| bytes))
    }
}

/// An upload in progress: bytes go in, `finish` reads the server's reply.
trait Upload: Write + Send {
    fn finish(self: Box<Self>) -> std::result::Result<(), FtpError>;
}

impl<T: suppaftp::TlsStream + Send> Upload for suppaftp::TransferStream<T> {
    fn finish(self: Box<Self>) -> std::result::Result<(), FtpError> {
        suppaftp::TransferStream::finish(*self)
    }
}

/// A file being uploaded to the staging folder.
struct FtpStagedFile {
    pool: Arc<Pool>,
    connection: Option<Connection>,
    transfer: Option<Box<dyn Upload>>,
    path: String,
    written: u64,
}

impl Write for FtpStagedFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let transfer = self.transfer.as_mut().ok_or_else(|| std::io::Error::other("upload already finished"))?;
        let written = transfer.write(bytes)?;
        self.written += written as u64;
        Ok(written)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.transfer.as_mut().map_or(Ok(()), |t| t.flush())
    }
}

impl StagedFile for FtpStagedFile {
    fn commit(mut self: Box<Self>) -> Result<()> {
        let target = self.pool.url.to_string();
        let fail = |problem: String, transient: bool| Error::Ftp {
            target: target.clone(),
            action: "upload",
            path: self.path.clone(),
            problem,
            transient,
        };
        let transfer = self.transfer.take().ok_or_else(|| fail("upload already finished".into(), false))?;
        transfer.finish().map_err(|e| fail(describe(&e), is_transient(&e)))?;
        let mut connection = self.connection.take().ok_or_else(|| fail("connection lost".into(), true))?;
        let size = connection.size(&self.path).map_err(|e| fail(describe(&e), is_transient(&e)))? as u64;
        self.pool.give(connection);
        if size != self.written {
            // Transient: a connection cut mid-upload leaves a short file that
            // some servers still acknowledge with 226.
            return Err(fail(format!("the server holds {size} bytes after {} were sent", self.written), true));
        }
        Ok(())
    }
}

/// The lock folder, removed when dropped if it is still ours.
struct FtpLock {
    target: Arc<Pool>,
    folder: String,
    owner: String,
}

impl Drop for FtpLock {
    fn drop(&mut self) {
        let Ok(mut connection) = self.target.take() else { return };
        let owner_path = format!("{}/owner", self.folder);
        let ours =
            connection.retr_as_buffer(&owner_path).is_ok_and(|bytes| bytes.into_inner() == self.owner.as_bytes());
        if ours {
            let _ = connection.rm(&owner_path);
            let _ = connection.rmdir(&self.folder);
        }
        self.target.give(connection);
    }
}

fn this_host() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

impl Backend for FtpBackend {
    fn location(&self) -> String {
        self.url().to_string()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { cheap_metadata: false, keeps_by_moving: true }
    }

    fn parallelism(&self) -> usize {
        self.pool.options.connections.max(1)
    }

    fn create(&self) -> Result<bool> {
        // Servers are set up by hand with their update folder; missing
        // folders are made, and a failed first import leaves them.
        let root = self.url().path.clone();
        self.make_dirs(&root)?;
        Ok(false)
    }

    fn lock(&self, wait: bool) -> Result<BackendLock> {
        self.make_dirs(&self.state_root())?;
        let folder = self.state_path("lock");
        let owner_path = format!("{folder}/owner");
        let mut ownerless_checks = 0;
        loop {
            let created = self.run("create lock", &folder, |c| match c.mkdir(&folder) {
                Ok(()) => Ok(true),
                Err(error) if !is_transient(&error) => Ok(false),
                Err(error) => Err(error),
            })?;
            if created {
                let started = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let owner = format!("host: {}\npid: {}\nstarted: {started}\n", this_host(), std::process::id());
                // Straight into the lock folder, never creating it: if someone
                // broke our lock meanwhile, this fails instead of re-taking it.
                self.run("write lock owner", &owner_path, |c| {
                    c.put_file(&owner_path, &mut owner.as_bytes()).map(drop)
                })?;
                // The lock is taken by import, publish and rollback, which go
                // on to use every connection.
                self.pool.open_early();
                return Ok(Box::new(FtpLock { target: self.pool.clone(), folder, owner }));
            }
            let owner = self.download(&owner_path, 4096)?.map(|b| String::from_utf8_lossy(&b).into_owned());
            // A lock folder without an owner is being taken right now, or was
            // left by a process killed in that instant: wait before judging.
            let owner = match owner {
                Some(owner) => owner,
                None if ownerless_checks < OWNERLESS_CHECKS => {
                    ownerless_checks += 1;
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
                None => String::new(),
            };
            ownerless_checks = 0;
            if lock_is_stale(&owner) {
                self.delete_at(&owner_path)?;
                self.run("remove stale lock", &folder, |c| match c.rmdir(&folder) {
                    Err(error) if is_missing(&error) => Ok(()),
                    other => other,
                })?;
                continue;
            }
            if !wait {
                return Err(Error::Locked { target: self.location().into(), holder: describe_owner(&owner) });
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn list_tree(&self) -> Result<Vec<(RelPath, bool)>> {
        let mut found = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(relative) = pending.pop() {
            let absolute =
                if relative.is_empty() { self.url().path.clone() } else { format!("{}/{relative}", self.url().path) };
            for (name, is_dir) in self.list_dir(&absolute)?.unwrap_or_default() {
                if relative.is_empty() && name == super::STATE_DIR {
                    continue;
                }
                let child = if relative.is_empty() { name } else { format!("{relative}/{name}") };
                let path = RelPath::new(&child)
                    .map_err(|e| Error::InvalidArgument(format!("cannot adopt `{}`: {e}", self.location())))?;
                if is_dir {
                    pending.push(child);
                }
                found.push((path, is_dir));
            }
        }
        found.sort();
        Ok(found)
    }

    fn read_state(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.download(&self.state_path(name), crate::manifest::MAX_MANIFEST_BYTES)
    }

    fn state_file_size(&self, name: &str) -> Result<Option<u64>> {
        self.size_of(&self.state_path(name))
    }

    fn write_state(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.upload_small(&self.state_path(name), bytes)
    }

    fn append_state(&self, name: &str, first_line: &str, line: &str) -> Result<()> {
        // FTP has no reliable append: rewrite the small file atomically.
        let mut text = self.read_state(name)?.unwrap_or_else(|| format!("{first_line}\n").into_bytes());
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        self.write_state(name, &text)
    }

    fn remove_state(&self, name: &str) -> Result<()> {
        let path = self.state_path(name);
        // DELE first: it removes a file, and is refused at once for a folder
        // or a missing name, which the listing then tells apart. (Probing
        // with CWD costs 200 ms per missing folder on pure-ftpd, which
        // delays every failed CWD; SIZE answers for folders on some servers.)
        let deleted = self.run("delete", &path, |c| match c.rm(&path) {
            Ok(()) => Ok(true),
            Err(error) if !is_transient(&error) => Ok(false),
            Err(error) => Err(error),
        })?;
        if deleted { Ok(()) } else { self.remove_recursively(&path) }
    }

    fn create_staged(&self, name: &str, _executable: bool) -> Result<Box<dyn StagedFile>> {
        let path = self.state_path(name);
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.make_dirs(parent)?;
        }
        let mut attempt = 0;
        loop {
            let opened = self.pool.take().and_then(|mut connection| {
                let transfer = connection.put_with_stream(&path);
                transfer.map(|transfer| (connection, transfer))
            });
            match opened {
                Ok((connection, transfer)) => {
                    return Ok(Box::new(FtpStagedFile {
                        pool: self.pool.clone(),
                        connection: Some(connection),
                        transfer: Some(Box::new(transfer)),
                        path,
                        written: 0,
                    }));
                }
                Err(error) if is_transient(&error) && attempt + 1 < ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                    attempt += 1;
                }
                Err(error) => return Err(self.error("upload", &path, &error)),
            }
        }
    }

    fn file_size(&self, path: &RelPath) -> Result<Option<u64>> {
        self.size_of(&self.tree_path(path))
    }

    fn copy_file(&self, path: &RelPath, limit: u64, to: &mut dyn Download) -> Result<Option<crate::digest::Hashed>> {
        self.fetch(&self.tree_path(path), limit, to)
    }

    fn make_dir(&self, path: &RelPath) -> Result<()> {
        self.make_dirs(&self.tree_path(path))
    }

    fn save(&self, path: &RelPath, kept: &str) -> Result<()> {
        let Some((from, to)) = self.to_keep(path, kept)? else { return Ok(()) };
        // FTP has no server-side copy: stream it through this host, under a
        // temporary name so a cut copy never looks kept.
        let temporary = format!("{to}.ferry-tmp");
        let mut attempt = 0;
        loop {
            match self.copy_through_client(&from, &temporary) {
                Ok(()) => break,
                Err(error) if error.is_transient() && attempt + 1 < ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
        self.rename(&temporary, &to)
    }

    fn keep(&self, path: &RelPath, kept: &str) -> Result<()> {
        let Some((from, to)) = self.to_keep(path, kept)? else { return Ok(()) };
        self.rename(&from, &to)
    }

    fn put(&self, from: &str, to: &RelPath) -> Result<()> {
        let source = self.state_path(from);
        let destination = self.tree_path(to);
        self.rename(&source, &destination)
    }

    fn delete_file(&self, path: &RelPath) -> Result<()> {
        self.delete_at(&self.tree_path(path))
    }

    fn delete_dir(&self, path: &RelPath) -> Result<()> {
        let path = self.tree_path(path);
        self.run("remove folder", &path, |c| match c.rmdir(&path) {
            // Missing, or holding files ferry did not install: not ours to force.
            Err(error) if !is_transient(&error) => Ok(()),
            other => other,
        })?;
        self.created_dirs.lock().unwrap_or_else(|p| p.into_inner()).remove(&path);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        // An FTP server makes a file durable (as far as it ever will) when it
        // acknowledges the transfer; there is nothing more to ask for.
        Ok(())
    }
}

/// The lock owner file (`host`, `pid`, `started` lines) for people.
fn describe_owner(owner: &str) -> String {
    let field = |key: &str| owner.lines().find_map(|l| l.strip_prefix(key).map(str::to_owned));
    match (field("pid: "), field("host: "), field("started: ").and_then(|s| s.parse::<i64>().ok())) {
        (Some(pid), Some(host), Some(started)) => {
            let since =
                jiff::Timestamp::from_second(started).map_or_else(|_| started.to_string(), crate::clock::format);
            format!("PID {pid} on {host}, since {since}")
        }
        _ => "owner not recorded".into(),
    }
}

/// A lock is stale when its owner ran on this host and is gone, or when it
/// is older than [`LOCK_STALE_AFTER`] (or has no readable owner at all).
fn lock_is_stale(owner: &str) -> bool {
    let field = |key: &str| owner.lines().find_map(|l| l.strip_prefix(key).map(str::to_owned));
    let (Some(host), Some(pid), Some(started)) = (field("host: "), field("pid: "), field("started: ")) else {
        return true;
    };
    if host == this_host()
        && let Ok(pid) = pid.parse::<i32>()
    {
        // EPERM means the process exists (as another user): alive.
        let alive = rustix::process::Pid::from_raw(pid)
            .is_some_and(|pid| !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH)));
        if !alive {
            return true;
        }
    }
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    started.parse::<u64>().is_ok_and(|started| now.saturating_sub(started) > LOCK_STALE_AFTER.as_secs())
}
