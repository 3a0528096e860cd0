//! Configuration: command-line flags and environment → a validated `Config`, and every
//! named bound of the product ([`limits`]).
//!
//! Must not: do IO beyond reading the config file. Hot paths never read configuration;
//! they get copied plain values.

pub mod limits;
