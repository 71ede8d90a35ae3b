//! One use case per module: what each `ferry` command does, as library
//! calls that take an options struct and return a report. The CLI only
//! parses arguments into options and prints reports.

pub mod diff;
pub mod export;
pub mod import;
pub mod inventory;
pub mod keygen;
pub mod list;
pub mod log;
pub mod policy;
pub mod promote;
pub mod publish;
pub mod receipt;
pub mod rollback;
pub mod rotate;
pub mod sign;
pub mod status;
pub mod trust;
pub mod verdict;
pub mod verify;
