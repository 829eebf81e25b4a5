//! The supervisor's HTTP side: the live feed and history for the
//! dashboard ([`feed`]), and watching, whispering in and joining a session
//! ([`controls`]), each written to the audit log ([`audit`]).

pub(crate) mod abuse;
pub(crate) mod audit;
pub(crate) mod controls;
mod feed;
pub(crate) mod staff;

pub(crate) use feed::{SUPERVISORS, feed, history};
