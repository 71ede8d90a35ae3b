//! What only-what-changed transfers need: receipts from isolated sites
//! ([`receipt`]), the comparison of two snapshots ([`plan`]) and binary
//! patches between two versions of a file ([`patch`]). The delta manifest
//! itself is [`crate::manifest_v3`].

pub mod export;
pub mod import;
pub mod medium;
pub mod patch;
pub mod plan;
pub mod receipt;
