//! `ferry import --stage [--verify-cmd CMD]` and `ferry verdict`: the
//! verdict on the snapshot a test update source serves
//! (formats/verdict-v1.md §3).

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::ops::import::{self, ImportOptions, ImportReport};
use crate::report::Progress;
use crate::signing::TrustStore;
use crate::workflow::{self, Outcome, Verdict, VerdictBy, command};
use jiff::Timestamp;
use serde::Serialize;
use std::time::Duration;

/// The verify command and its timeout.
#[derive(Debug, Clone)]
pub struct VerifyCommand {
    /// The shell command line.
    pub command: String,
    /// How long it may run before its process group is killed.
    pub timeout: Duration,
}

/// What staging did.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// The import into the test target.
    pub import: ImportReport,
    /// The verdict recorded.
    pub verdict: Verdict,
    /// The verify command's exit code, when it ran and exited.
    pub verify_exit_code: Option<i32>,
    /// Whether it was killed at its timeout.
    pub verify_timed_out: bool,
    /// The last lines of its output (at most 4 KiB; all of its last 1 MiB is in the state file `verify-output`).
    pub verify_output: String,
}

/// Imports into the test target, records `pending`, then runs the verify
/// command (if any) and records its verdict (§3 W1-W4).
pub fn stage(
    target: &dyn Backend,
    options: &ImportOptions,
    trust: &TrustStore,
    verify: Option<&VerifyCommand>,
    progress: &dyn Progress,
) -> Result<StageReport> {
    let report = import::import(target, options, trust, progress)?;
    let pending = record(target, options.wait, progress, None, |state| {
        Ok(Verdict::new(state, Outcome::Pending, VerdictBy::Stage, options.now, "staged; not verified yet"))
    })?;
    let mut staged = StageReport {
        import: report,
        verdict: pending.clone(),
        verify_exit_code: None,
        verify_timed_out: false,
        verify_output: String::new(),
    };
    let Some(verify) = verify else { return Ok(staged) };
    progress.notice(&format!("running the verify command: {}", verify.command));
    let env = [
        ("FERRY_STAGED_PATH", target.location()),
        ("FERRY_REPOSITORY", pending.repository.clone()),
        ("FERRY_SEQUENCE", pending.sequence.to_string()),
        ("FERRY_SNAPSHOT", pending.snapshot.clone()),
        ("FERRY_MANIFEST_DIGEST", pending.snapshot.clone()),
    ];
    let local = camino::Utf8Path::new(&staged.import.target);
    let ran = command::run(&verify.command, &env, local.is_dir().then_some(local), verify.timeout)?;
    let outcome = if ran.passed { Outcome::Pass } else { Outcome::Fail };
    let now = crate::clock::now().max(options.now);
    staged.verdict = record(target, true, progress, Some((&pending.snapshot, &ran.output)), |state| {
        Ok(Verdict::new(state, outcome, VerdictBy::Command, now, &ran.reason))
    })?;
    staged.verify_exit_code = ran.exit_code;
    staged.verify_timed_out = ran.timed_out;
    let from = ran.output.len().saturating_sub(4096);
    staged.verify_output = String::from_utf8_lossy(&ran.output[from..]).into_owned();
    Ok(staged)
}

/// Records an operator's verdict on the snapshot the test target serves
/// (§3 W5); refuses a target that was never staged.
pub fn operator_verdict(
    target: &dyn Backend,
    result: Outcome,
    reason: &str,
    now: Timestamp,
    wait: bool,
    progress: &dyn Progress,
) -> Result<Verdict> {
    if workflow::read_verdict(target)?.is_none() {
        return Err(Error::InvalidArgument(format!(
            "`{}` was never staged: it has no verdict to change\nhint: import into it with `ferry import MEDIA {} --stage` first",
            target.location(),
            target.location()
        )));
    }
    record(target, wait, progress, None, |state| Ok(Verdict::new(state, result, VerdictBy::Operator, now, reason)))
}

/// Under the target lock: builds the verdict for the installed snapshot
/// and writes it (with the command's output first). With `tested`, the
/// installed snapshot must still be the one tested (§3 W4).
fn record(
    target: &dyn Backend,
    wait: bool,
    progress: &dyn Progress,
    tested: Option<(&str, &[u8])>,
    verdict: impl FnOnce(&crate::install::state::InstalledState) -> Result<Verdict>,
) -> Result<Verdict> {
    let _lock = crate::install::lock(target, wait, progress)?;
    let Some(state) = crate::install::installed_state(target)? else {
        return Err(Error::NotInstalled(target.location().into()));
    };
    if let Some((snapshot, output)) = tested {
        if state.snapshot.to_hex() != snapshot {
            return Err(Error::NotVerified {
                target: target.location(),
                found: format!(
                    "snapshot {} was installed while snapshot {} was being tested; no verdict recorded",
                    state.snapshot.short(),
                    &snapshot[..12]
                ),
            });
        }
        target.write_state(workflow::OUTPUT_FILE, output)?;
    }
    let verdict = verdict(&state)?;
    workflow::write_verdict(target, &verdict)?;
    Ok(verdict)
}
