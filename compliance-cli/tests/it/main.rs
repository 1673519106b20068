//! The `compliance` command as users run it: arguments, exit codes, files.
//! One binary (link time), one module per area.

mod aws;
mod commands;
mod deploy;
mod fleet;
mod frameworks;
mod monitor;
mod remediate;
mod reports;
mod scan;
mod signing;
mod support;
mod webhook;
