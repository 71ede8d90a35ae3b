//! `ferry policy check`: what an export with this approval policy would
//! carry, and what it would hold back and why (formats/policy-v1.md).
//!
//! The same [`crate::policy::select`] runs inside `ferry export --policy`,
//! so the check and the export agree on the same source.

use crate::error::Result;
use crate::policy::{self, Acceptance, HoldReason, Policy, Selected, Status};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// One component's totals.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentReport {
    /// Its name (`(unmatched)` for files no component matches).
    pub name: String,
    /// Its status.
    pub status: Status,
    /// Whether its licence terms must be accepted.
    pub eula: bool,
    /// Who accepted them and when, if recorded.
    pub eula_accepted: Option<Acceptance>,
    /// Files that ship.
    pub shipped_files: usize,
    /// Their bytes.
    pub shipped_bytes: u64,
    /// Files held back.
    pub held_files: usize,
    /// Their bytes.
    pub held_bytes: u64,
    /// Why its files are held, when they are.
    pub held_because: Option<HoldReason>,
}

/// A file held back.
#[derive(Debug, Clone, Serialize)]
pub struct HeldFile {
    /// Its path in the repository.
    pub path: String,
    /// Its component.
    pub component: String,
    /// Why.
    pub reason: HoldReason,
}

/// What the policy does to a source.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    /// The policy file.
    pub policy: Utf8PathBuf,
    /// Files that ship.
    pub shipped_files: usize,
    /// Their bytes.
    pub shipped_bytes: u64,
    /// Files held back.
    pub held_files: usize,
    /// Per component, in policy order (`(unmatched)` last).
    pub components: Vec<ComponentReport>,
    /// Every file that ships, in manifest order.
    pub shipped: Vec<String>,
    /// Every file held back, in manifest order.
    pub held: Vec<HeldFile>,
}

/// Loads the policy, scans `source` as export would and applies it.
pub fn check(source: &Utf8Path, policy_file: &Utf8Path, index_patterns: &[String]) -> Result<PolicyReport> {
    let policy = Policy::load(policy_file)?;
    crate::ops::export::check_source(source)?;
    let index = crate::scan::index_matcher(index_patterns)?;
    let selected = policy::select(&policy, crate::scan::scan(source, &index)?);
    Ok(summarize(&policy, &selected))
}

/// The report on what a selection kept and held.
pub fn summarize(policy: &Policy, selected: &Selected) -> PolicyReport {
    let mut components: Vec<ComponentReport> = policy
        .components
        .iter()
        .map(|c| ComponentReport {
            name: c.name.clone(),
            status: c.status,
            eula: c.eula,
            eula_accepted: c.accepted.clone(),
            shipped_files: 0,
            shipped_bytes: 0,
            held_files: 0,
            held_bytes: 0,
            held_because: None,
        })
        .collect();
    let mut shipped = Vec::new();
    for (entry, component) in selected.entries.iter().zip(&selected.components) {
        if let (Some(file), Some(component)) = (entry.file, component) {
            components[*component].shipped_files += 1;
            components[*component].shipped_bytes += file.size;
            shipped.push(entry.path.as_str().to_owned());
        }
    }
    for held in &selected.held {
        let c = &mut components[held.component];
        c.held_files += 1;
        c.held_bytes += held.size;
        c.held_because = Some(held.reason);
    }
    PolicyReport {
        policy: policy.path.clone(),
        shipped_bytes: components.iter().map(|c| c.shipped_bytes).sum(),
        shipped_files: shipped.len(),
        held_files: selected.held.len(),
        components,
        shipped,
        held: selected
            .held
            .iter()
            .map(|h| HeldFile {
                path: h.path.clone(),
                component: policy.components[h.component].name.clone(),
                reason: h.reason,
            })
            .collect(),
    }
}
