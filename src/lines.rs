//! The small line-oriented text format every ferry metadata file except the
//! manifest shares (formats/README.md §2): a magic first line naming the
//! kind of file and its version, then `key: value` lines, LF-terminated.
//! Keys, signature files, trust stores and the installed state use it.

use crate::error::{Error, Result};
use camino::Utf8Path;

/// Reads `key: value` lines in a fixed order after a magic first line.
pub(crate) struct KeyValueLines<'a> {
    lines: std::iter::Enumerate<std::str::Split<'a, char>>,
    path: &'a Utf8Path,
}

impl<'a> KeyValueLines<'a> {
    /// Checks the first line is `magic` and the text ends with a newline.
    pub(crate) fn new(text: &'a str, path: &'a Utf8Path, magic: &str) -> Result<Self> {
        let body =
            text.strip_suffix('\n').ok_or_else(|| Error::format(path, "does not end with a newline (truncated?)"))?;
        let mut lines = body.split('\n').enumerate();
        match lines.next() {
            Some((_, first)) if first == magic => Ok(KeyValueLines { lines, path }),
            _ => Err(Error::format(
                path,
                format!("line 1: expected `{magic}` (wrong kind of file or unsupported version)"),
            )),
        }
    }

    /// The value of the next line, which must be `key: value`.
    pub(crate) fn value(&mut self, key: &str) -> Result<&'a str> {
        let (index, line) =
            self.lines.next().ok_or_else(|| Error::format(self.path, format!("missing `{key}:` line")))?;
        line.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(": "))
            .ok_or_else(|| Error::format(self.path, format!("line {}: expected `{key}: ...`", index + 1)))
    }

    /// The next line's key and value, or `None` at the end.
    pub(crate) fn next_pair(&mut self) -> Result<Option<(usize, &'a str, &'a str)>> {
        let Some((index, line)) = self.lines.next() else { return Ok(None) };
        let (key, value) = line
            .split_once(": ")
            .ok_or_else(|| Error::format(self.path, format!("line {}: expected `key: value`", index + 1)))?;
        Ok(Some((index + 1, key, value)))
    }

    /// Fails if lines are left.
    pub(crate) fn end(mut self) -> Result<()> {
        match self.lines.next() {
            None => Ok(()),
            Some((index, _)) => Err(Error::format(self.path, format!("line {}: unexpected extra line", index + 1))),
        }
    }
}

/// Decodes exactly `N` bytes written as `2N` lowercase hex digits; `what`
/// names the field in the error.
pub(crate) fn hex_array<const N: usize>(text: &str, path: &Utf8Path, what: &str) -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    if text.len() != 2 * N
        || text.bytes().any(|b| b.is_ascii_uppercase())
        || hex::decode_to_slice(text, &mut bytes).is_err()
    {
        return Err(Error::format(path, format!("{what}: expected {} lowercase hex digits", 2 * N)));
    }
    Ok(bytes)
}
