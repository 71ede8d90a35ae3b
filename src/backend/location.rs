//! Parsing a TARGET argument: a folder path, or an `ftp://` / `ftps://`
//! URL. Passwords never appear in a URL ferry accepts: they come from
//! `FERRY_FTP_PASSWORD`, `~/.netrc` or `--password-file`.

use crate::error::{Error, Result};
use camino::Utf8PathBuf;
use std::fmt;

/// How an FTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain FTP.
    None,
    /// `AUTH TLS` on the control connection, then protected data connections.
    Explicit,
    /// TLS from the first byte (legacy port 990 style).
    Implicit,
}

/// An FTP server location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUrl {
    /// Protection.
    pub tls: Tls,
    /// Host name or address.
    pub host: String,
    /// Port (21 by default, 990 for implicit TLS).
    pub port: u16,
    /// User name (`anonymous` when none is given).
    pub user: String,
    /// Absolute path of the update source on the server, without a trailing `/`
    /// (empty for the server's root).
    pub path: String,
}

impl fmt::Display for FtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls == Tls::None { "ftp" } else { "ftps" };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let path = if self.path.is_empty() { "/" } else { &self.path };
        write!(f, "{scheme}://{}@{host}:{}{path}", self.user, self.port)
    }
}

/// What a TARGET argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local folder or mounted shared folder.
    Dir(Utf8PathBuf),
    /// An FTP or FTPS server.
    Ftp(FtpUrl),
}

/// Parses a TARGET argument. `implicit_tls` turns `ftps://` into implicit TLS.
pub fn parse(text: &str, implicit_tls: bool) -> Result<Location> {
    let (tls, rest) = if let Some(rest) = text.strip_prefix("ftp://") {
        (Tls::None, rest)
    } else if let Some(rest) = text.strip_prefix("ftps://") {
        (if implicit_tls { Tls::Implicit } else { Tls::Explicit }, rest)
    } else if text.contains("://") {
        return Err(Error::InvalidArgument(format!(
            "`{}`: only folders, ftp:// and ftps:// targets are supported",
            redact(text)
        )));
    } else {
        return Ok(Location::Dir(Utf8PathBuf::from(text)));
    };
    let bad = |why: &str| Error::InvalidArgument(format!("`{}`: {why}", redact(text)));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            return Err(bad("a password in the URL is refused; use FERRY_FTP_PASSWORD, ~/.netrc or --password-file"));
        }
        Some((user, host_port)) => (percent_decode(user).map_err(|e| bad(&e))?, host_port),
        None => ("anonymous".to_owned(), authority),
    };
    let (host, port) = if let Some(stripped) = host_port.strip_prefix('[') {
        let (host, after) = stripped.split_once(']').ok_or_else(|| bad("unclosed `[` in the host"))?;
        (host.to_owned(), after.strip_prefix(':'))
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (host_port.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    // These end up in FTP commands: a line break would inject another one.
    if [host.as_str(), user.as_str()].iter().any(|part| part.chars().any(|c| c.is_control() || c == ' ')) {
        return Err(bad("control characters or spaces in the user or host"));
    }
    let default_port = if tls == Tls::Implicit { 990 } else { 21 };
    let port = match port {
        Some(port) => port.parse().map_err(|_| bad("the port is not a number"))?,
        None => default_port,
    };
    let path = percent_decode(path).map_err(|e| bad(&e))?;
    if path.chars().any(char::is_control) {
        return Err(bad("control characters in the path"));
    }
    let path = path.trim_end_matches('/');
    if path.split('/').any(|c| c == "..") {
        return Err(bad("`..` in the path"));
    }
    let path = if path.is_empty() { String::new() } else { format!("/{path}") };
    Ok(Location::Ftp(FtpUrl { tls, host, port, user, path }))
}

/// The URL with anything that looks like a password removed, for messages.
pub fn redact(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &text[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}", &text[..scheme_end + 3], &text[at..])
        }
        _ => text.to_owned(),
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape `%{hex}`"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after %-decoding".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(parse("/srv/updates", false).unwrap(), Location::Dir("/srv/updates".into()));
        let Location::Ftp(url) = parse("ftp://upd@127.0.0.1:2121/pub/av/", false).unwrap() else { panic!() };
        assert_eq!(
            (url.user.as_str(), url.host.as_str(), url.port, url.path.as_str()),
            ("upd", "127.0.0.1", 2121, "/pub/av")
        );
        assert_eq!(url.to_string(), "ftp://upd@127.0.0.1:2121/pub/av");
        let Location::Ftp(url) = parse("ftps://host", true).unwrap() else { panic!() };
        assert_eq!((url.tls, url.port, url.user.as_str(), url.path.as_str()), (Tls::Implicit, 990, "anonymous", ""));
        let Location::Ftp(url) = parse("ftp://[::1]:21/x%20y", false).unwrap() else { panic!() };
        assert_eq!((url.host.as_str(), url.path.as_str()), ("::1", "/x y"));
        assert_eq!(url.to_string(), "ftp://anonymous@[::1]:21/x y");
    }

    #[test]
    fn refuses_passwords_and_nonsense_without_echoing_the_password() {
        let error = parse("ftp://user:hunter2@host/x", false).unwrap_err().to_string();
        assert!(error.contains("password") && !error.contains("hunter2"), "{error}");
        assert!(parse("http://host/x", false).is_err());
        assert!(parse("ftp://host:port/x", false).is_err());
        assert!(parse("ftp:///x", false).is_err());
        assert!(parse("ftp://host/a/../b", false).is_err());
        assert!(parse("ftp://host/a%0D%0ADELE%20x", false).is_err());
        assert!(parse("ftp://us%0Aer@host/a", false).is_err());
    }
}
