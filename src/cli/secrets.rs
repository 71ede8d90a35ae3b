//! Where secrets come from on the command line: a file named by a flag, an
//! environment variable, `~/.netrc`, or a prompt on the terminal.

use camino::Utf8Path;
use ferry::Error;
use ferry::backend::location::FtpUrl;
use ferry::credentials;
use ferry::signing::KeyId;
use zeroize::Zeroizing;

/// The FTP password: `--password-file`, else `FERRY_FTP_PASSWORD`, else the
/// matching `machine` entry of `~/.netrc`, else none (anonymous login).
pub fn ftp_password(url: &FtpUrl, file: Option<&Utf8Path>) -> ferry::Result<Option<Zeroizing<String>>> {
    if let Some(file) = file {
        return credentials::password_file(file).map(Some);
    }
    if let Ok(password) = std::env::var("FERRY_FTP_PASSWORD") {
        return Ok(Some(Zeroizing::new(password)));
    }
    let Some(home) = std::env::var_os("HOME") else { return Ok(None) };
    Ok(credentials::netrc_lookup(&std::path::Path::new(&home).join(".netrc"), url))
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

/// The passphrase for a new key, asked twice when it comes from a prompt.
pub fn new_passphrase(file: Option<&Utf8Path>) -> ferry::Result<Zeroizing<Vec<u8>>> {
    let passphrase = match (file, passphrase_from_env()) {
        (Some(file), _) => credentials::first_line(file)?,
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

/// The passphrase of an existing secret key.
pub fn existing_passphrase(file: Option<&Utf8Path>, key: &Utf8Path, id: KeyId) -> ferry::Result<Zeroizing<Vec<u8>>> {
    match (file, passphrase_from_env()) {
        (Some(file), _) => credentials::first_line(file),
        (None, Some(env)) => Ok(env),
        (None, None) => prompt(&format!("passphrase for {key} (key {id}): ")),
    }
}
