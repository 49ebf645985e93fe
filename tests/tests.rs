//! Integration tests, compiled into one binary (one link, one place to list them).

mod common;
mod darwin_sim;
mod golden;
mod replay;
mod sim_kernel;
mod single_flight;
