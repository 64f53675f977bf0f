//! One file per `relay` subcommand.

pub mod broker;
