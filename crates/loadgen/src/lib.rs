//! duplex-bench: bounded load on Duplex's ws-server, or on a plain relay
//! server, from this machine to this machine.
//!
//! The measuring parts: [`payload`]s stamped on a [`pacer`]'s schedule and
//! cut out of frames in place, [`latency`] histograms, the [`sequence`]
//! loss detector, what [`procfs`] says of a server and of this process, and
//! the [`client`] connection in either mode.

pub mod cli;
pub mod client;
pub mod clock;
pub mod latency;
pub mod pacer;
pub mod payload;
pub mod procfs;
pub mod sequence;
