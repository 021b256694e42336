//! The manual: what the crate checks and why, what it costs, its limits
//! and how it answers. Documentation only; nothing to import.
#![doc = include_str!("docs/manual.md")]
