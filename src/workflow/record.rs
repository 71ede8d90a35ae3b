//! What an export decided, for the `policy` section of its signed manifest
//! (formats/policy-v1.md §6), and what an import makes of it (PS5).

use crate::error::{Error, Result};
use crate::manifest_v3::{Approval, HeldLine, PolicySection};
use crate::policy::{HoldReason, Policy, Selected, Status};
use crate::rel_path::RelPath;
use crate::signing::VerifiedSnapshot;
use crate::workflow::inventory::Coverage;
use serde::Serialize;

/// The section of an export with `only` (partial) and/or a policy's
/// selection; `None` when neither was used (a plain full snapshot).
pub fn section(only: Option<&Coverage>, decided: Option<(&Policy, &Selected)>) -> Result<Option<PolicySection>> {
    if only.is_none() && decided.is_none() {
        return Ok(None);
    }
    let covers = only.map(|only| only.patterns.clone());
    // A section line ends at the newline: a pattern cannot hold one.
    if let Some(bad) = covers.iter().flatten().find(|p| p.contains('\n') || p.is_empty()) {
        return Err(Error::InvalidArgument(format!("the pattern {bad:?} cannot be recorded in the manifest")));
    }
    let mut section = PolicySection { covers, ..PolicySection::default() };
    let Some((policy, selected)) = decided else { return Ok(Some(section)) };
    for (entry, component) in selected.entries.iter().zip(&selected.components) {
        let Some(component) = component else { continue };
        let approval = match policy.components[*component].status {
            Status::Approved => Approval::Approved,
            // A declined component never ships (policy-v1 §4).
            Status::Undefined | Status::Declined => Approval::Undefined,
        };
        section.approval.insert(entry.path.as_str().to_owned(), approval);
    }
    for held in &selected.held {
        section
            .held
            .push(HeldLine { reason: held.reason, path: RelPath::new(&held.path).map_err(Error::InvalidArgument)? });
    }
    section.held.sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    Ok(Some(section))
}

/// How many of the `removed` files `snapshot` removes as declined (PS5).
pub fn declined(snapshot: &VerifiedSnapshot, removed: &[&RelPath]) -> usize {
    snapshot.policy().map_or(0, |policy| removed.iter().filter(|path| policy.declines(path.as_str())).count())
}

/// What the installed snapshot's policy section says, for `ferry status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySummary {
    /// `full`, or `partial` for an export of requested components only.
    pub scope: &'static str,
    /// The patterns a partial export covered.
    pub covers: Vec<String>,
    /// Files installed as approved (flag `a`).
    pub approved: usize,
    /// Files installed while undefined (flag `u`).
    pub undefined: usize,
    /// Files of the source declined, not installed.
    pub declined: Vec<String>,
    /// Files of the source held back for another reason, as `PATH: REASON`.
    pub held: Vec<String>,
}

impl PolicySummary {
    /// The summary of `section`.
    pub fn of(section: &PolicySection) -> PolicySummary {
        let count = |wanted| section.approval.values().filter(|a| **a == wanted).count();
        let (declined, held): (Vec<&HeldLine>, Vec<&HeldLine>) =
            section.held.iter().partition(|h| h.reason == HoldReason::Declined);
        PolicySummary {
            scope: if section.covers.is_some() { "partial" } else { "full" },
            covers: section.covers.clone().unwrap_or_default(),
            approved: count(Approval::Approved),
            undefined: count(Approval::Undefined),
            declined: declined.iter().map(|h| h.path.to_string()).collect(),
            held: held.iter().map(|h| format!("{}: {}", h.path, h.reason.as_str())).collect(),
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        let covers = if self.covers.is_empty() { String::new() } else { format!(" of {}", self.covers.join(" ")) };
        format!(
            "policy: {} snapshot{covers}; {} approved, {} undefined; {} declined, {} held",
            self.scope,
            self.approved,
            self.undefined,
            self.declined.len(),
            self.held.len()
        )
    }
}
