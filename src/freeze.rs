//! Freeze and fast-forward protection (formats/threat-model.md §F,
//! formats/target-state-v1.md §9): the importing host's clock is not
//! trusted alone. A snapshot is refused when it has expired, when it was
//! created before the installed snapshot, or when its sequence jumps
//! further ahead of the installed one than a bound. The first and last may
//! be overridden on purpose, with a reason; each override becomes an
//! `override` entry of the audit journal.

use crate::audit::{Action, Record};
use crate::error::{Error, Result};
use crate::install::state::InstalledState;
use crate::media::SnapshotDir;
use crate::ops::import::ImportOptions;
use crate::signing::VerifiedSnapshot;

/// Default bound on a sequence jump: one year of daily exports. Sequences
/// are creation times in Unix seconds (formats/ledger-v1.md §5 N1), so the
/// bound is 365 days of seconds.
pub const DEFAULT_MAX_JUMP: u64 = 365 * 86_400;

/// Refuses override flags given without a reason, before anything is read.
pub fn check_options(options: &ImportOptions) -> Result<()> {
    let reason = options.reason.as_deref().is_some_and(|r| !r.trim().is_empty());
    for (given, flag) in [(options.allow_expired, "--allow-expired"), (options.allow_jump, "--allow-jump")] {
        if given && !reason {
            return Err(Error::InvalidArgument(format!(
                "{flag} needs --reason TEXT: an override is recorded in the target's audit journal with its reason"
            )));
        }
    }
    Ok(())
}

/// Checks expiry against `options.now`; an expired snapshot passes only
/// with `allow_expired`, and then yields its `override` record.
pub fn check_expiry(dir: &SnapshotDir, snapshot: &VerifiedSnapshot, options: &ImportOptions) -> Result<Vec<Record>> {
    match crate::ops::verify::check_expiry(dir, snapshot, options.now) {
        Ok(()) => Ok(Vec::new()),
        Err(Error::Expired { expires, .. }) if options.allow_expired => {
            Ok(vec![overriding(snapshot, options, &format!("allow-expired (expired at {expires})"))])
        }
        Err(error) => Err(error),
    }
}

/// Checks the offered snapshot against the installed one: not created
/// before it, and not further ahead than `options.max_jump` unless
/// `allow_jump` (then its `override` record is returned).
pub fn check_installed(
    dir: &SnapshotDir,
    snapshot: &VerifiedSnapshot,
    installed: &InstalledState,
    options: &ImportOptions,
) -> Result<Vec<Record>> {
    let manifest = snapshot.manifest();
    if manifest.created < installed.created {
        return Err(Error::Stale {
            manifest: dir.manifest_path(),
            created: crate::clock::format(manifest.created),
            installed_sequence: installed.sequence,
            installed_created: crate::clock::format(installed.created),
        });
    }
    let jump = manifest.sequence.saturating_sub(installed.sequence);
    if jump <= options.max_jump {
        return Ok(Vec::new());
    }
    let describe = |seconds: u64| {
        crate::clock::describe(jiff::SignedDuration::from_secs(i64::try_from(seconds).unwrap_or(i64::MAX)))
    };
    if options.allow_jump {
        let what = format!("allow-jump ({} ahead of sequence {})", describe(jump), installed.sequence);
        return Ok(vec![overriding(snapshot, options, &what)]);
    }
    Err(Error::SequenceJump {
        manifest: dir.manifest_path(),
        offered: manifest.sequence,
        installed: installed.sequence,
        jump: describe(jump),
        bound: describe(options.max_jump),
    })
}

/// The `override` record: what was overridden, then the reason given.
fn overriding(snapshot: &VerifiedSnapshot, options: &ImportOptions, what: &str) -> Record {
    let reason = format!("{what}: {}", options.reason.as_deref().unwrap_or("-"));
    Record::new(options.now, Action::Override).about(snapshot).by(options.operator.as_deref(), Some(&reason))
}
