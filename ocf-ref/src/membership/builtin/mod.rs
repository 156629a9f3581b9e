//! The built-in engine: the sans-IO [`protocol`](super::protocol) driven over UDP.
//!
//! - [`engine`]: [`BuiltinEngine`], the engine behind the `Membership` trait;
//! - [`transport`]: the UDP driver that feeds the protocol packets and time;
//! - [`wire`]: the authenticated packet format; [`key`]: the cluster key file;
//! - [`hub`]: the one ordered event log every subscriber shares;
//! - [`loopback`]: several engines on 127.0.0.1 in one process (tests, demo, benches).

pub mod engine;
pub mod hub;
pub mod key;
pub mod loopback;
pub mod transport;
pub mod wire;

pub use engine::{BuiltinEngine, EngineError};
