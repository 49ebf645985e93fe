//! Records the compiler, target, git revision and build date for `libproc_build_info` and
//! `--version`.
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LIBPROC_EXPORTER_RUSTC={version}");
    println!(
        "cargo:rustc-env=LIBPROC_EXPORTER_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string());
    let revision = revision.unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LIBPROC_EXPORTER_REVISION={revision}");
    // SOURCE_DATE_EPOCH (reproducible-builds.org) when the packager sets it, else now.
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse::<u64>().ok());
    let epoch = epoch.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(0, |d| d.as_secs())
    });
    let (year, month, day) = civil_date(epoch / 86_400);
    println!("cargo:rustc-env=LIBPROC_EXPORTER_BUILD_DATE={year:04}-{month:02}-{day:02}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/civil_date.rs");
}

include!("src/civil_date.rs");
