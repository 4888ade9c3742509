//! The router's protocol logic with no I/O: what ipoed and ipoectl say to each other.

pub mod ctl;
