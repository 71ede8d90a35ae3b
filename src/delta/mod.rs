//! What only-what-changed transfers need: receipts from isolated sites
//! ([`receipt`]), the comparison of two snapshots ([`plan`]) and binary
//! patches between two versions of a file ([`patch`]).

pub mod manifest;
pub mod patch;
pub mod plan;
pub mod receipt;
