//! The one validated relative-path type used in manifests.
//!
//! Every path that comes from outside (a source tree being exported, a
//! manifest being read) is checked once, here, against the rules of
//! `formats/manifest-v1.md` (path rules), before it touches a filesystem.
//! The rules are the union of what FAT32, exFAT, NTFS and Windows refuse, so
//! that a snapshot can be carried on any drive and served to any device.

use camino::{Utf8Path, Utf8PathBuf};
use std::fmt;

/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest path component accepted, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;
/// The first component reserved for ferry's state folder.
pub const RESERVED_ROOT: &str = ".ferry";

/// A relative, `/`-separated path that is safe to create below a target
/// root on any filesystem ferry supports.
///
/// Held as a boxed `str` (16 bytes, not a `String`'s 24): a manifest of a
/// million files holds a million of them, an incremental import two
/// manifests' worth (issue 14).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(Box<str>);

impl RelPath {
    /// Validates `text` as a manifest path; the error says which rule it breaks.
    pub fn new(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty path".into());
        }
        if text.len() > MAX_PATH_BYTES {
            return Err(format!("path longer than {MAX_PATH_BYTES} bytes"));
        }
        if text.starts_with('/') {
            return Err(format!("absolute path `{}`", escape(text)));
        }
        for (index, component) in text.split('/').enumerate() {
            check_component(component).map_err(|why| format!("path `{}`: {why}", escape(text)))?;
            if index == 0 && component.eq_ignore_ascii_case(RESERVED_ROOT) {
                return Err(format!("path `{}`: `{RESERVED_ROOT}` is reserved for ferry's state", escape(text)));
            }
        }
        Ok(RelPath(text.into()))
    }

    /// A path below the reserved root `.ferry/` for files ferry itself puts
    /// on a medium (a delta's patch files, formats/delta-v1.md DM1): never a
    /// repository path, so it cannot collide with one. `rest` comes from
    /// ferry's code, never from input.
    pub(crate) fn reserved(rest: &str) -> RelPath {
        RelPath(if rest.is_empty() { RESERVED_ROOT.into() } else { format!("{RESERVED_ROOT}/{rest}").into() })
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path as a camino path, for joining onto a root.
    pub fn as_path(&self) -> &Utf8Path {
        Utf8Path::new(&self.0)
    }

    /// `root` joined with this path.
    pub fn under(&self, root: &Utf8Path) -> Utf8PathBuf {
        root.join(&*self.0)
    }

    /// The parent path, or `None` for a top-level entry.
    pub fn parent(&self) -> Option<RelPath> {
        self.0.rfind('/').map(|at| RelPath(self.0[..at].into()))
    }

    /// The number of components (1 for a top-level entry).
    pub fn depth(&self) -> usize {
        self.0.bytes().filter(|b| *b == b'/').count() + 1
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_component(component: &str) -> Result<(), String> {
    match component {
        "" => return Err("empty component (`//` or trailing `/`)".into()),
        "." | ".." => return Err(format!("`{component}` component")),
        _ => {}
    }
    if component.len() > MAX_COMPONENT_BYTES {
        return Err(format!("component longer than {MAX_COMPONENT_BYTES} bytes"));
    }
    if let Some(bad) = component.chars().find(|c| c.is_control()) {
        return Err(format!("control character U+{:04X}", bad as u32));
    }
    if let Some(bad) = component.chars().find(|c| "<>:\"\\|?*".contains(*c)) {
        return Err(format!("character `{bad}` is not allowed on FAT/NTFS"));
    }
    if component.ends_with('.') || component.ends_with(' ') {
        return Err(format!("name `{component}` ends in a dot or space (Windows strips it)"));
    }
    let stem = component.split('.').next().unwrap_or(component).trim_end();
    if is_windows_device(stem) {
        return Err(format!("`{component}` is a Windows device name"));
    }
    Ok(())
}

/// Whether `stem` (a name without its extension) is a Windows device name:
/// CON, PRN, AUX, NUL, CONIN$, CONOUT$, COM0-9 and LPT0-9 (with the
/// superscript digits Windows also maps), in any case. The one list of
/// them: manifests and drive checks both use it.
pub fn is_windows_device(stem: &str) -> bool {
    let upper = stem.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            // COM0-9 and LPT0-9, and the superscript digits Windows also maps.
            let Some(digit) = upper.strip_prefix("COM").or_else(|| upper.strip_prefix("LPT")) else { return false };
            let mut chars = digit.chars();
            matches!((chars.next(), chars.next()), (Some('0'..='9' | '¹' | '²' | '³'), None))
        }
    }
}

/// Makes control characters visible in messages (a path with a newline must
/// not forge a second line of output).
pub fn escape(text: &str) -> String {
    text.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in ["a", "a/b/c.txt", "bases/ünïcødé.dat", "x y/z", ".hidden", "a/.ferry", "com10", "console.txt"] {
            assert!(RelPath::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_unsafe_paths() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "./a",
            "a//b",
            "a/",
            "a\\b",
            "a:b",
            "q?",
            "x*",
            "trail.",
            "trail ",
            "CON",
            "con.txt",
            "Lpt1.log",
            "a/AUX/b",
            "nl\nx",
            ".ferry",
            ".ferry/state",
            ".FERRY",
            "COM²",
            "conin$.x",
        ] {
            assert!(RelPath::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parent_and_depth() {
        let path = RelPath::new("a/b/c").unwrap();
        assert_eq!(path.parent().unwrap().as_str(), "a/b");
        assert_eq!(path.depth(), 3);
        assert_eq!(path.file_name(), "c");
        assert!(RelPath::new("top").unwrap().parent().is_none());
    }
}
