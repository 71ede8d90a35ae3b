//! Secrets read from files: passphrase files, FTP password files and
//! `~/.netrc`. The CLI decides where to look (flags, environment); this
//! module reads and parses, so that file I/O stays in the library.

use crate::backend::location::FtpUrl;
use crate::error::{Error, Result};
use camino::Utf8Path;
use zeroize::Zeroizing;

/// The first line of `path`, without its line ending: passphrase and
/// password files hold one secret on their first line.
pub fn first_line(path: &Utf8Path) -> Result<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(std::fs::read(path).map_err(|e| Error::io("read secret file", path, e))?);
    let line = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Zeroizing::new(line.to_vec()))
}

/// The FTP password in the first line of `path`.
pub fn password_file(path: &Utf8Path) -> Result<Zeroizing<String>> {
    let bytes = first_line(path)?;
    String::from_utf8(bytes.to_vec()).map(Zeroizing::new).map_err(|_| Error::format(path, "the password is not UTF-8"))
}

/// The password for `url` in the `.netrc` file at `netrc`, if the file
/// exists and has a matching entry.
pub fn netrc_lookup(netrc: &std::path::Path, url: &FtpUrl) -> Option<Zeroizing<String>> {
    let text = Zeroizing::new(std::fs::read_to_string(netrc).ok()?);
    netrc_password(&text, &url.host, &url.user).map(Zeroizing::new)
}

/// Finds the password for `host` (and `user`, when the entry names a login)
/// in the text of a `.netrc` file; `default` entries count for any host.
pub fn netrc_password(text: &str, host: &str, user: &str) -> Option<String> {
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
