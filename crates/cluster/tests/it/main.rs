//! haven-cluster against a real `redis-server`.

mod conversation;
mod lease;
mod routing;
