//! A repository on the connected side for the delta tests: a source
//! folder, a signing key and an export ledger, exported as repository
//! `av` with the sequence the test names.

use super::{Run, Scratch, key_pair, run};
use camino::{Utf8Path, Utf8PathBuf};

/// A source, a key pair and a ledger in a scratch folder of their own.
pub struct Exporter {
    pub scratch: Scratch,
    pub key: Utf8PathBuf,
    pub public: Utf8PathBuf,
    pub ledger: Utf8PathBuf,
    pub source: Utf8PathBuf,
}

impl Exporter {
    /// An empty source (the test writes it), a fresh key pair and ledger.
    pub fn new() -> Exporter {
        let scratch = Scratch::new();
        let (key, public) = key_pair(&scratch);
        Exporter { key, public, ledger: scratch.path("ledger"), source: scratch.path("source"), scratch }
    }

    /// `ferry export SOURCE DRIVE` with this key and ledger, sequence
    /// `sequence`, `--since` each of `since`, then `extra`; not checked.
    pub fn export(&self, drive: &Utf8Path, sequence: u64, since: &[&Utf8Path], extra: &[&str]) -> Run {
        let sequence = sequence.to_string();
        let mut args = vec!["export", self.source.as_str(), drive.as_str(), "--key", self.key.as_str()];
        args.extend(["--repository", "av", "--sequence", &sequence, "--ledger", self.ledger.as_str()]);
        for base in since {
            args.extend(["--since", base.as_str()]);
        }
        args.extend_from_slice(extra);
        run(&args)
    }

    /// Quietly exports to a fresh scratch drive `name`, which it returns;
    /// the export must succeed.
    pub fn export_to(&self, name: &str, sequence: u64, since: &[&Utf8Path]) -> Utf8PathBuf {
        let drive = self.scratch.path(name);
        self.export(&drive, sequence, since, &["-q"]).ok();
        drive
    }

    /// `ferry import DRIVE TARGET` trusting this key, then `extra`.
    pub fn import(&self, drive: &Utf8Path, target: &Utf8Path, extra: &[&str]) -> Run {
        let mut args = vec!["import", drive.as_str(), target.as_str(), "--trust", self.public.as_str()];
        args.extend_from_slice(extra);
        run(&args)
    }

    /// The receipt of `target`, written to scratch file `name`.
    pub fn receipt(&self, target: &Utf8Path, name: &str) -> Utf8PathBuf {
        let out = self.scratch.path(name);
        run(&["receipt", target.as_str(), out.as_str(), "-q"]).ok();
        out
    }
}
