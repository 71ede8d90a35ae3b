//! Inventories (formats/inventory-v1.md): the components a site requests,
//! as policy-style patterns, and the selection of an export by them.

use crate::error::{Error, IoContext, Result};
use crate::scan::SourceEntry;
use camino::Utf8Path;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::BTreeSet;
use std::io::Read;

/// The first line of an inventory file (§2 I1).
pub const HEADER: &str = "ferry inventory v1";
/// Largest inventory file read (§2 I1).
const MAX_BYTES: u64 = 1 << 20;

/// The requested components: patterns, compiled.
#[derive(Debug, Clone)]
pub struct Coverage {
    /// The patterns, as written.
    pub patterns: Vec<String>,
    set: GlobSet,
}

impl Coverage {
    /// Compiles patterns; `origin` names where they came from in errors.
    pub fn new(patterns: Vec<String>, origin: &dyn Fn(usize) -> String) -> Result<Coverage> {
        let mut builder = GlobSetBuilder::new();
        for (n, pattern) in patterns.iter().enumerate() {
            let glob = GlobBuilder::new(pattern.trim_end_matches('/'))
                .literal_separator(true)
                .build()
                .map_err(|e| Error::InvalidArgument(format!("{}: pattern `{pattern}`: {e}", origin(n))))?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| Error::InvalidArgument(format!("{}: {e}", origin(0))))?;
        Ok(Coverage { patterns, set })
    }

    /// Reads an inventory file strictly (§2).
    pub fn load(path: &Utf8Path) -> Result<Coverage> {
        let file = std::fs::File::open(path).ctx("open inventory", path)?;
        let mut text = String::new();
        file.take(MAX_BYTES + 1).read_to_string(&mut text).ctx("read inventory", path)?;
        if text.len() as u64 > MAX_BYTES {
            return Err(Error::InvalidArgument(format!("inventory `{path}`: larger than 1 MiB")));
        }
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some(HEADER) {
            return Err(Error::InvalidArgument(format!(
                "inventory `{path}`: the first line is not `{HEADER}`\nhint: `ferry inventory TARGET --out FILE` writes one"
            )));
        }
        let (mut numbers, mut patterns) = (Vec::new(), Vec::new());
        for (n, line) in lines {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                numbers.push(n + 1);
                patterns.push(line.to_owned());
            }
        }
        Coverage::new(patterns, &|i| format!("inventory `{path}` line {}", numbers.get(i).copied().unwrap_or(1)))
    }

    /// Whether `path` or a folder above it is covered (policy-v1.md §3 P3).
    pub fn covers(&self, path: &str) -> bool {
        crate::policy::ancestors(path).any(|p| self.set.is_match(p))
    }

    /// The entries a partial export carries (§2 I3): requested files,
    /// every index file, the folders above them and covered empty folders.
    pub fn select(&self, scanned: Vec<SourceEntry>) -> Vec<SourceEntry> {
        let kept = |e: &SourceEntry| e.file.is_some_and(|f| f.index || self.covers(e.path.as_str()));
        let mut needed = BTreeSet::new();
        for entry in scanned.iter().filter(|e| kept(e)) {
            needed.extend(crate::policy::ancestors(entry.path.as_str()).skip(1).map(str::to_owned));
        }
        scanned
            .into_iter()
            .filter(|e| match e.file {
                Some(_) => kept(e),
                None => needed.contains(e.path.as_str()) || self.covers(e.path.as_str()),
            })
            .collect()
    }
}

/// An inventory file's bytes: the header, a comment, the patterns (§1).
pub fn encode(comment: &str, patterns: &[String]) -> Vec<u8> {
    let mut text = format!("{HEADER}\n# {}\n", comment.replace('\n', " "));
    for pattern in patterns {
        text.push_str(pattern);
        text.push('\n');
    }
    text.into_bytes()
}
