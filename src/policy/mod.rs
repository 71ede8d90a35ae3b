//! The approval policy of the connected side (formats/policy-v1.md): which
//! parts of a repository are approved, declined or undecided, which wait
//! for their licence terms to be accepted, and so which files an export
//! carries.
//!
//! [`Policy::load`] reads and checks the TOML file; [`Policy::decide`]
//! judges one path; [`select`] applies the policy to a scan, the one
//! function `ferry policy check` and `ferry export --policy` share so that
//! the check shows exactly what the export does.

use crate::error::{Error, IoContext, Result};
use crate::scan::SourceEntry;
use camino::{Utf8Path, Utf8PathBuf};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Read;

/// Largest policy file read (formats/policy-v1.md §5).
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// The name reports use for files no component matches (§3 P4).
pub const UNMATCHED: &str = "(unmatched)";

/// An update's approval status, as the vendor's workflow names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Approved: ships (once any licence terms are accepted).
    Approved,
    /// Declined: never ships.
    Declined,
    /// Not decided yet: ships only where the policy allows it.
    #[default]
    Undefined,
}

impl Status {
    /// How reports and the policy file say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Approved => "approved",
            Status::Declined => "declined",
            Status::Undefined => "undefined",
        }
    }
}

/// Why a file is held back (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldReason {
    /// Its component is declined.
    Declined,
    /// Its licence terms are not accepted yet.
    EulaNotAccepted,
    /// Its component is undefined and the policy does not ship undefined ones.
    Undefined,
}

impl HoldReason {
    /// How reports say it.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::Declined => "declined",
            HoldReason::EulaNotAccepted => "eula-not-accepted",
            HoldReason::Undefined => "undefined",
        }
    }
}

/// Who accepted a component's licence terms, and when.
#[derive(Debug, Clone, Serialize)]
pub struct Acceptance {
    /// The person (or role) who accepted.
    pub by: String,
    /// When, RFC 3339.
    pub at: String,
}

/// One component of the policy, checked.
#[derive(Debug)]
pub struct Component {
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: Status,
    /// Whether it ships while undefined.
    pub ship_undefined: bool,
    /// Whether its licence terms must be accepted.
    pub eula: bool,
    /// The recorded acceptance, if any.
    pub accepted: Option<Acceptance>,
    patterns: GlobSet,
}

/// A checked policy file.
#[derive(Debug)]
pub struct Policy {
    /// Where it was read from.
    pub path: Utf8PathBuf,
    /// Its components, in file order; the last is the `(unmatched)` one.
    pub components: Vec<Component>,
}

/// The verdict on one path: which component, and whether it ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Index into [`Policy::components`].
    pub component: usize,
    /// `None` when it ships, else why it is held.
    pub held: Option<HoldReason>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: u32,
    #[serde(default)]
    unmatched: Status,
    #[serde(default)]
    ship_undefined: bool,
    #[serde(default)]
    component: Vec<ComponentFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentFile {
    name: String,
    paths: Vec<String>,
    #[serde(default)]
    status: Status,
    ship_undefined: Option<bool>,
    #[serde(default)]
    eula: bool,
    eula_accepted: Option<AcceptanceFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptanceFile {
    by: String,
    at: toml::value::Datetime,
}

impl Policy {
    /// Reads and checks a policy file; every problem is one line naming it
    /// (exit code 2).
    pub fn load(path: &Utf8Path) -> Result<Policy> {
        let file = std::fs::File::open(path).ctx("open policy", path)?;
        let mut text = String::new();
        file.take(MAX_POLICY_BYTES + 1).read_to_string(&mut text).ctx("read policy", path)?;
        if text.len() as u64 > MAX_POLICY_BYTES {
            return Err(bad(path, "larger than 1 MiB".into()));
        }
        let parsed: PolicyFile = toml::from_str(&text).map_err(|e| bad(path, one_line(&e.to_string())))?;
        Policy::check(path, parsed)
    }

    fn check(path: &Utf8Path, parsed: PolicyFile) -> Result<Policy> {
        if parsed.version != 1 {
            return Err(bad(path, format!("version {} is not supported (this ferry reads version 1)", parsed.version)));
        }
        let mut names = BTreeSet::new();
        let mut components = Vec::with_capacity(parsed.component.len() + 1);
        for component in parsed.component {
            let name = component.name.trim().to_owned();
            if name.is_empty() || name == UNMATCHED || !names.insert(name.clone()) {
                return Err(bad(path, format!("component name `{}` is empty, reserved or used twice", component.name)));
            }
            if component.paths.is_empty() {
                return Err(bad(path, format!("component `{name}` has no paths")));
            }
            let accepted = component.eula_accepted.map(|a| acceptance(path, &name, a)).transpose()?;
            components.push(Component {
                patterns: patterns(path, &name, &component.paths)?,
                name,
                status: component.status,
                ship_undefined: component.ship_undefined.unwrap_or(parsed.ship_undefined),
                eula: component.eula,
                accepted,
            });
        }
        components.push(Component {
            name: UNMATCHED.into(),
            status: parsed.unmatched,
            ship_undefined: parsed.ship_undefined,
            eula: false,
            accepted: None,
            patterns: GlobSet::empty(),
        });
        Ok(Policy { path: path.to_owned(), components })
    }

    /// The component `path` belongs to (§3 P4) and whether it ships (§4).
    pub fn decide(&self, path: &str) -> Decision {
        let last = self.components.len() - 1;
        let component = self.components[..last]
            .iter()
            .position(|c| ancestors(path).any(|p| c.patterns.is_match(p)))
            .unwrap_or(last);
        let c = &self.components[component];
        let held = if c.status == Status::Declined {
            Some(HoldReason::Declined)
        } else if c.eula && c.accepted.is_none() {
            Some(HoldReason::EulaNotAccepted)
        } else if c.status == Status::Undefined && !c.ship_undefined {
            Some(HoldReason::Undefined)
        } else {
            None
        };
        Decision { component, held }
    }
}

/// `path` and each folder above it, longest first: a pattern matching a
/// folder matches what is below it (§3 P3).
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let cuts = path.match_indices('/').map(|(at, _)| at).collect::<Vec<_>>();
    std::iter::once(path).chain(cuts.into_iter().rev().map(move |at| &path[..at]))
}

fn patterns(path: &Utf8Path, name: &str, globs: &[String]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let trimmed = glob.trim_end_matches('/');
        let compiled = GlobBuilder::new(trimmed)
            .literal_separator(true)
            .build()
            .map_err(|e| bad(path, format!("component `{name}`: pattern `{glob}`: {e}")))?;
        builder.add(compiled);
    }
    builder.build().map_err(|e| bad(path, format!("component `{name}`: {e}")))
}

fn acceptance(path: &Utf8Path, name: &str, accepted: AcceptanceFile) -> Result<Acceptance> {
    let by = accepted.by.trim().to_owned();
    let at = accepted.at.to_string().parse::<jiff::Timestamp>().map_err(|e| {
        bad(
            path,
            format!("component `{name}`: eula_accepted.at `{}` is not a date-time with an offset: {e}", accepted.at),
        )
    })?;
    if by.is_empty() {
        return Err(bad(path, format!("component `{name}`: eula_accepted.by is empty")));
    }
    Ok(Acceptance { by, at: crate::clock::format(at) })
}

fn bad(path: &Utf8Path, problem: String) -> Error {
    Error::InvalidArgument(format!("policy `{path}`: {problem}"))
}

/// A TOML error's message on one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A file held back.
#[derive(Debug, Clone)]
pub struct Held {
    /// Its path in the repository.
    pub path: String,
    /// Index into [`Policy::components`].
    pub component: usize,
    /// Why.
    pub reason: HoldReason,
    /// Its size when scanned.
    pub size: u64,
}

/// What a selection kept of a scan, and what it held back.
#[derive(Debug, Clone, Default)]
pub struct Selected {
    /// The entries to export, in scan order.
    pub entries: Vec<SourceEntry>,
    /// Files held back, in scan order.
    pub held: Vec<Held>,
    /// Component index of every shipped file, in `entries` order (folders: `None`).
    pub components: Vec<Option<usize>>,
}

/// Applies `policy` to a scan (§4): files that ship, the folders above
/// them, and empty folders whose own path would ship.
pub fn select(policy: &Policy, scanned: Vec<SourceEntry>) -> Selected {
    let decisions: Vec<Decision> = scanned.iter().map(|e| policy.decide(e.path.as_str())).collect();
    let mut needed = BTreeSet::new();
    let mut has_files = BTreeSet::new();
    for (entry, decision) in scanned.iter().zip(&decisions) {
        if entry.file.is_some() {
            let path = entry.path.as_str();
            let folders: Vec<String> = ancestors(path).skip(1).map(str::to_owned).collect();
            if decision.held.is_none() {
                needed.extend(folders.iter().cloned());
            }
            has_files.extend(folders);
        }
    }
    let mut selected = Selected::default();
    for (entry, decision) in scanned.into_iter().zip(decisions) {
        let path = entry.path.as_str().to_owned();
        let keep = match entry.file {
            Some(_) => decision.held.is_none(),
            None => needed.contains(&path) || (!has_files.contains(&path) && decision.held.is_none()),
        };
        match (keep, decision.held, entry.file) {
            (true, _, file) => {
                selected.components.push(file.map(|_| decision.component));
                selected.entries.push(entry);
            }
            (false, Some(reason), Some(file)) => {
                selected.held.push(Held { path, component: decision.component, reason, size: file.size })
            }
            _ => {}
        }
    }
    selected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Result<Policy> {
        Policy::check(Utf8Path::new("p.toml"), toml::from_str(text).map_err(|e| bad("p.toml".into(), e.to_string()))?)
    }

    #[test]
    fn first_matching_component_decides() {
        let p = policy(
            r#"version = 1
            [[component]]
            name = "bases"
            paths = ["bases"]
            status = "approved"
            [[component]]
            name = "all"
            paths = ["**"]
            status = "declined"
            "#,
        )
        .unwrap();
        assert_eq!(p.decide("bases/a/b.bin"), Decision { component: 0, held: None });
        assert_eq!(p.decide("other.bin"), Decision { component: 1, held: Some(HoldReason::Declined) });
    }

    #[test]
    fn eula_then_undefined() {
        let p = policy(
            r#"version = 1
            ship_undefined = true
            [[component]]
            name = "e"
            paths = ["e/*"]
            status = "approved"
            eula = true
            [[component]]
            name = "u"
            paths = ["u/*"]
            ship_undefined = false
            "#,
        )
        .unwrap();
        assert_eq!(p.decide("e/x").held, Some(HoldReason::EulaNotAccepted));
        assert_eq!(p.decide("u/x").held, Some(HoldReason::Undefined));
        // `u/*` matches the folder `u/deeper`, so what is below it too (P3).
        assert_eq!(p.decide("u/deeper/x"), Decision { component: 1, held: Some(HoldReason::Undefined) });
        assert_eq!(p.decide("ux/y").held, None, "unmatched, shipped: ship_undefined = true at the top");
        assert_eq!(p.decide("z").component, 2);
    }

    #[test]
    fn bad_files_are_refused() {
        for text in [
            "version = 2",
            "verzion = 1",
            "version = 1\n[[component]]\nname = \"a\"\npaths = []",
            "version = 1\n[[component]]\nname = \"a\"\npaths = [\"[\"]",
            "version = 1\n[[component]]\nname = \"a\"\npaths = [\"x\"]\nstatus = \"maybe\"",
            "version = 1\n[[component]]\nname = \"a\"\npaths = [\"x\"]\n[[component]]\nname = \"a\"\npaths = [\"y\"]",
            "version = 1\n[[component]]\nname = \"a\"\npaths = [\"x\"]\neula_accepted = { by = \"\", at = 2026-01-01T00:00:00Z }",
            "version = 1\n[[component]]\nname = \"a\"\npaths = [\"x\"]\neula_accepted = { by = \"j\", at = 2026-01-01 }",
        ] {
            assert!(policy(text).is_err(), "accepted:\n{text}");
        }
    }
}
