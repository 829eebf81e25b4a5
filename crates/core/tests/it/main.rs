//! Integration tests of the IO-free core, in one test binary.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod events;
mod handover;
mod movable;
mod properties;
mod purity;
mod router;
mod simulation;
mod support;
mod waiting_room;
