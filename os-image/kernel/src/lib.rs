//! The pure parts of the Orbital guest kernel: no I/O, no clock, no globals. They build `no_std`
//! for the kernel and with std for `cargo test --lib` on the host.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod blake3;
pub mod value;
#[cfg(test)]
mod testutil;
pub mod entry;
pub mod reducers;
pub mod sequencer;
pub mod frame;
pub mod link;
