//! ferry carries software-update snapshots across an air gap.
//!
//! On the connected side, [`ops::export`] snapshots an update repository onto
//! removable media with an ed25519-signed [`manifest`]. On the isolated side,
//! [`ops::verify`] checks a drive without writing anything and [`ops::import`]
//! installs the snapshot into an update source (a [`backend`]) through the
//! [`install`] engine, so that devices only ever see a complete old tree or a
//! complete new one.
//!
//! Trust in a few lines: the manifest lists every file with its size and
//! SHA-256 and binds repository, sequence and expiry; the importer verifies
//! the signature against keys configured on its own side before it parses
//! anything, refuses older sequences, other repositories and expired
//! snapshots, and streams every byte through a digest check before it can
//! become visible. Media and targets are untrusted storage. The formats are
//! specified in `formats/`.
//!
//! Module map (`docs/design/architecture.md` has the data flow): [`scan`]
//! walks a source; [`rel_path`] validates paths; [`digest`] hashes while
//! copying; [`manifest`] and [`signing`] are the signed description (only
//! [`signing::Signed::verify`] turns signed bytes into a decoded manifest);
//! [`trust`] is the isolated side's store of keys and thresholds;
//! [`audit`] is the hash-chained journal format, written through
//! [`install::history`]; [`freeze`] refuses stale and far-jumping snapshots;
//! [`media`], [`volume`] and [`drive`] are the drive side; [`backend`] is
//! where bytes are stored (folders, FTP servers) and [`install`] decides
//! what to store and in which order; [`ops`] holds one use case per module;
//! [`credentials`] reads secret files; [`error`] is the one error type;
//! [`ledger`] is the connected side's record of its exports and [`delta`]
//! holds receipts, change plans and binary patches; [`policy`] is the
//! approval policy an export applies and [`workflow`] the verification
//! gate between a test update source and production.

#![deny(missing_docs)]

pub mod audit;
pub mod backend;
pub mod beneath;
pub mod clock;
pub mod crash;
pub mod credentials;
pub mod delta;
pub mod destination;
pub mod digest;
pub mod drive;
pub mod error;
pub mod freeze;
pub mod fsutil;
pub mod install;
pub mod ledger;
mod lines;
pub mod manifest;
pub mod manifest_v3;
pub mod media;
pub mod ops;
pub mod parallel;
pub mod payload;
pub mod policy;
pub mod rel_path;
pub mod report;
pub mod scan;
pub mod signing;
pub mod trust;
pub mod volume;
pub mod workflow;

pub use error::{Error, ErrorClass, Result};
