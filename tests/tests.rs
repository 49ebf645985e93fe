//! Integration tests, compiled into one binary (one link, one place to list them).

mod common;
mod deploy;
mod prometheus_e2e;
