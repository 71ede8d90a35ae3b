//! Progress and notices as events: the library never prints.
//!
//! Operations call a [`Progress`] that the CLI turns into a progress bar on
//! a terminal, log lines under `-v`, or nothing. Calls come from worker
//! threads, hence `Sync`.

/// Receives progress from long-running operations.
pub trait Progress: Sync {
    /// A new phase starts ("hashing", "copying", ...), covering `total_bytes`.
    fn phase(&self, name: &str, total_bytes: u64);
    /// `bytes` more of the current phase are done.
    fn advance(&self, bytes: u64);
    /// The current phase covers `total` files too (call after `phase`).
    fn files(&self, _total: usize) {}
    /// One more file of the current phase is done.
    fn file_done(&self) {}
    /// Something the operator may want to know (shown with `-v`).
    fn notice(&self, message: &str);
    /// Something the operator must see now even without `-v`, such as
    /// waiting for another process's lock.
    fn attention(&self, message: &str) {
        self.notice(message);
    }
}

/// A [`Progress`] that discards everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _name: &str, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn notice(&self, _message: &str) {}
}

/// `1 file`, `2 files`: a count with its noun in the right number, so that
/// messages never say `1 files` or `file(s)`.
pub fn counted(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// Formats a byte count for people.
pub fn human_bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{count} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
