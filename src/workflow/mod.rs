//! The verification gate between a test update source and production
//! (formats/verdict-v1.md): the verdict on the snapshot staged at a test
//! target, the verify command that reaches it, and the record of where a
//! verified snapshot was promoted.
//!
//! The verdict lives in the test target's state folder and names the
//! snapshot id it was reached for, so that it never counts for another
//! snapshot installed there later.

pub mod command;
pub mod inventory;
pub mod keep;
pub mod record;
pub mod staged;

use crate::backend::Backend;
use crate::digest::Digest;
use crate::error::{Error, Result};
use jiff::Timestamp;
use serde::Serialize;

/// The state file holding the verdict (§2).
pub const VERDICT_FILE: &str = "verdict";
/// The state file holding the last verify command's output (§1).
pub const OUTPUT_FILE: &str = "verify-output";
/// The state file recording promotions (§4).
pub const PROMOTIONS_FILE: &str = "promotions";

const VERDICT_HEADER: &str = "ferry verdict v1";
const PROMOTIONS_HEADER: &str = "ferry promotions v1";
/// Largest `verdict` file read (§2).
const MAX_VERDICT_BYTES: u64 = 64 * 1024;
const KEYS: [&str; 7] = ["repository", "sequence", "snapshot", "result", "by", "time", "reason"];

/// What the verification found (§2 V2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Staged, not verified yet.
    Pending,
    /// Verified: may be promoted.
    Pass,
    /// Failed verification: may not be promoted.
    Fail,
}

impl Outcome {
    /// The word in the file and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
        }
    }
}

/// Who reached the verdict (§2 V2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictBy {
    /// `ferry import --stage` (with `pending`).
    Stage,
    /// The `--verify-cmd` command.
    Command,
    /// An operator, with `ferry verdict`.
    Operator,
}

impl VerdictBy {
    /// The word in the file and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictBy::Stage => "stage",
            VerdictBy::Command => "command",
            VerdictBy::Operator => "operator",
        }
    }
}

/// The verdict on one snapshot at a test target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Repository of the snapshot.
    pub repository: String,
    /// Its sequence.
    pub sequence: u64,
    /// Its snapshot id (SHA-256 of the manifest), hex.
    pub snapshot: String,
    /// The result.
    pub result: Outcome,
    /// Who reached it.
    pub by: VerdictBy,
    /// When, RFC 3339.
    pub time: String,
    /// Why, one line.
    pub reason: String,
}

impl Verdict {
    /// A verdict on the snapshot `state` describes.
    pub fn new(
        state: &crate::install::state::InstalledState,
        result: Outcome,
        by: VerdictBy,
        time: Timestamp,
        reason: &str,
    ) -> Self {
        Verdict {
            repository: state.repository.to_string(),
            sequence: state.sequence,
            snapshot: state.snapshot.to_hex(),
            result,
            by,
            time: crate::clock::format(time),
            reason: one_line(reason),
        }
    }

    /// The file's bytes (§2).
    pub fn encode(&self) -> Vec<u8> {
        let values = [
            self.repository.clone(),
            self.sequence.to_string(),
            self.snapshot.clone(),
            self.result.as_str().into(),
            self.by.as_str().into(),
            self.time.clone(),
            self.reason.clone(),
        ];
        let mut text = format!("{VERDICT_HEADER}\n");
        for (key, value) in KEYS.iter().zip(values) {
            text.push_str(&format!("{key}: {}\n", one_line(&value)));
        }
        text.into_bytes()
    }

    /// Reads a `verdict` file strictly (§2 V1); `file` names it in errors.
    pub fn decode(bytes: &[u8], file: &str) -> Result<Verdict> {
        let bad = |problem: String| Error::Format { path: file.into(), problem };
        if bytes.len() as u64 > MAX_VERDICT_BYTES {
            return Err(bad("larger than 64 KiB".into()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        let mut lines =
            text.strip_suffix('\n').ok_or_else(|| bad("does not end with a line break".into()))?.split('\n');
        if lines.next() != Some(VERDICT_HEADER) {
            return Err(bad(format!("the first line is not `{VERDICT_HEADER}`")));
        }
        let mut values = Vec::with_capacity(KEYS.len());
        for key in KEYS {
            let line = lines.next().ok_or_else(|| bad(format!("`{key}:` is missing")))?;
            let value = line.strip_prefix(key).and_then(|rest| rest.strip_prefix(": "));
            values.push(value.ok_or_else(|| bad(format!("expected `{key}: ...`, found `{line}`")))?);
        }
        if let Some(line) = lines.next() {
            return Err(bad(format!("unexpected line `{line}`")));
        }
        let sequence = values[1].parse().map_err(|_| bad(format!("sequence `{}` is not a number", values[1])))?;
        Digest::from_hex(values[2]).ok_or_else(|| bad(format!("snapshot `{}` is not 64 hex digits", values[2])))?;
        let result = match values[3] {
            "pending" => Outcome::Pending,
            "pass" => Outcome::Pass,
            "fail" => Outcome::Fail,
            other => return Err(bad(format!("result `{other}` is not pending, pass or fail"))),
        };
        let by = match values[4] {
            "stage" => VerdictBy::Stage,
            "command" => VerdictBy::Command,
            "operator" => VerdictBy::Operator,
            other => return Err(bad(format!("by `{other}` is not stage, command or operator"))),
        };
        values[5].parse::<Timestamp>().map_err(|_| bad(format!("time `{}` is not RFC 3339", values[5])))?;
        Ok(Verdict {
            repository: values[0].into(),
            sequence,
            snapshot: values[2].into(),
            result,
            by,
            time: values[5].into(),
            reason: values[6].into(),
        })
    }

    /// How reports say it: `pass by command at TIME (REASON)`.
    pub fn describe(&self) -> String {
        format!(
            "{} by {} at {} for sequence {} (snapshot {}): {}",
            self.result.as_str(),
            self.by.as_str(),
            self.time,
            self.sequence,
            &self.snapshot[..12.min(self.snapshot.len())],
            self.reason
        )
    }
}

/// The verdict recorded at `target`, if it was ever staged.
pub fn read_verdict(target: &dyn Backend) -> Result<Option<Verdict>> {
    let file = format!("{}/{VERDICT_FILE}", target.state_location());
    target.read_state(VERDICT_FILE)?.map(|bytes| Verdict::decode(&bytes, &file)).transpose()
}

/// Replaces the verdict at `target` (call with the target lock held).
pub fn write_verdict(target: &dyn Backend, verdict: &Verdict) -> Result<()> {
    target.write_state(VERDICT_FILE, &verdict.encode())
}

/// One promotion of a verified snapshot to a target (§4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Promotion {
    /// When, RFC 3339.
    pub time: String,
    /// The snapshot id promoted.
    pub snapshot: String,
    /// `updated` or `up-to-date`.
    pub status: String,
    /// The target it went to.
    pub target: String,
}

/// Appends promotions to the test target's record (§4).
pub fn record_promotions(target: &dyn Backend, promotions: &[Promotion]) -> Result<()> {
    for p in promotions {
        let line = format!("{} {} {} {}", p.time, p.snapshot, p.status, one_line(&p.target));
        target.append_state(PROMOTIONS_FILE, PROMOTIONS_HEADER, &line)?;
    }
    Ok(())
}

/// Every promotion recorded at `target`; lines that do not parse are skipped (§4).
pub fn read_promotions(target: &dyn Backend) -> Result<Vec<Promotion>> {
    let Some(bytes) = target.read_state(PROMOTIONS_FILE)? else { return Ok(Vec::new()) };
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.splitn(4, ' ');
            let (time, snapshot, status, target) = (words.next()?, words.next()?, words.next()?, words.next()?);
            Digest::from_hex(snapshot)?;
            Some(Promotion {
                time: time.into(),
                snapshot: snapshot.into(),
                status: status.into(),
                target: target.into(),
            })
        })
        .collect())
}

/// Copies the gate's state files (`verdict`, `verify-output`,
/// `promotions`) from the live state folder with `write`, into the state
/// folder of a tree a whole-tree switch or a rollback switches in, so that
/// they outlive the switch as they do an ordered one (§6).
pub fn carry(backend: &dyn Backend, write: &dyn Fn(&str, &[u8]) -> Result<()>) -> Result<()> {
    for name in [VERDICT_FILE, OUTPUT_FILE, PROMOTIONS_FILE] {
        if let Some(bytes) = backend.read_state(name)? {
            write(name, &bytes)?;
        }
    }
    Ok(())
}

/// `text` with line breaks and other control characters as spaces (§2 V3).
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict() -> Verdict {
        Verdict {
            repository: "av".into(),
            sequence: 7,
            snapshot: "ab".repeat(32),
            result: Outcome::Pass,
            by: VerdictBy::Command,
            time: "2026-12-04T17:00:00Z".into(),
            reason: "exit status 0".into(),
        }
    }

    #[test]
    fn round_trip() {
        let v = verdict();
        assert_eq!(Verdict::decode(&v.encode(), "v").unwrap(), v);
        let odd = Verdict { reason: "two\nlines\r".into(), ..v };
        assert_eq!(Verdict::decode(&odd.encode(), "v").unwrap().reason, "two lines ");
    }

    #[test]
    fn strict_reading() {
        let good = String::from_utf8(verdict().encode()).unwrap();
        for bad in [
            good.replace("ferry verdict v1", "ferry verdict v2"),
            good.replace("result: pass", "result: maybe"),
            good.replace("by: command", "by: robot"),
            good.replace("sequence: 7", "sequence: x"),
            good.replace(&"ab".repeat(32), "abc"),
            good.trim_end().to_owned(),
            format!("{good}extra: 1\n"),
            good.replace("time: 2026-12-04T17:00:00Z\n", ""),
        ] {
            assert!(Verdict::decode(bad.as_bytes(), "v").is_err(), "accepted:\n{bad}");
        }
    }
}
