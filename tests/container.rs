//! The container image's binary, run the way `deploy/container/Dockerfile` runs it: alone in
//! an empty root (the image is `FROM scratch`: no libc, no shell, no /dev), as the image's
//! USER, with its ENTRYPOINT and CMD, reading a copy of this machine's `/proc` mounted where
//! the image expects the host's. The image itself cannot be built here (no registry for the
//! build stage's base image); this checks what it would hold.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{Exporter, TempDir, repo_root};

/// The final stage's USER, ENTRYPOINT and CMD.
struct Image {
    user: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
}

fn final_stage() -> Image {
    let text = std::fs::read_to_string(repo_root().join("deploy/container/Dockerfile")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).expect("a FROM line");
    let stage = &lines[last_from..];
    assert_eq!(stage[0], "FROM scratch", "the image is the binary alone");
    let value = |key: &str| {
        stage.iter().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key}"))
    };
    let list = |key: &str| -> Vec<String> {
        let json: Value = serde_json::from_str(value(key)).expect("exec-form JSON array");
        json.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    Image { user: value("USER ").to_string(), entrypoint: list("ENTRYPOINT "), cmd: list("CMD ") }
}

/// The static binary scripts/test.sh builds (`cargo zigbuild --target ARCH-unknown-linux-musl`).
fn static_binary() -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let triple = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    let bin = target_dir.join(triple).join("debug/libproc_exporter");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo zigbuild --target {}-unknown-linux-musl` (scripts/test.sh does)",
        bin.display(),
        std::env::consts::ARCH
    );
    bin
}

/// Copies this machine's /proc (the files the exporter reads) to `to`; returns the pids copied.
fn copy_proc(to: &Path) -> usize {
    std::fs::create_dir_all(to.join("sys/kernel/pty")).unwrap();
    std::fs::create_dir_all(to.join("sys/fs")).unwrap();
    // What the files collector reads, as a host's /proc mounted into the container has it.
    for rel in
        ["stat", "sys/kernel/pid_max", "sys/kernel/pty/max", "sys/fs/file-nr", "sys/fs/nr_open"]
    {
        std::fs::copy(Path::new("/proc").join(rel), to.join(rel)).unwrap();
    }
    let mut copied = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let (Ok(stat), Ok(status)) =
            (std::fs::read(entry.path().join("stat")), std::fs::read(entry.path().join("status")))
        else {
            continue; // exited meanwhile
        };
        let dir = to.join(&name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("stat"), stat).unwrap();
        std::fs::write(dir.join("status"), status).unwrap();
        copied += 1;
    }
    copied
}

#[test]
#[ignore = "needs root (chroot) and the static musl binary (scripts/test.sh builds both)"]
fn the_image_binary_serves_a_hosts_proc_alone_in_an_empty_root_as_nobody() {
    let image = final_stage();
    assert_eq!(image.user, "65534:65534", "the image runs as nobody, not root");
    let procfs = image
        .cmd
        .iter()
        .find_map(|a| a.strip_prefix("--path.procfs="))
        .expect("CMD names the host's /proc")
        .to_string();

    let root = TempDir::new("image_root");
    let entrypoint = root.0.join(image.entrypoint[0].trim_start_matches('/'));
    std::fs::create_dir_all(entrypoint.parent().unwrap()).unwrap();
    std::fs::copy(static_binary(), &entrypoint).unwrap();
    let processes = copy_proc(&root.0.join(procfs.trim_start_matches('/')));
    assert!(processes > 1);

    let mut command = Command::new("chroot");
    command
        .arg(format!("--userspec={}", image.user))
        .arg(&root.0)
        .args(&image.entrypoint)
        .args(&image.cmd)
        .stdin(Stdio::null());
    let exporter = Exporter::start_command(command);
    let body = exporter.scrape();
    let counted: f64 = body
        .lines()
        .filter(|l| l.starts_with("libproc_processes{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted, processes as f64, "every copied process counted");
    let failed: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("libproc_scrape_collector_success{") && !l.ends_with(" 1"))
        .collect();
    assert!(failed.is_empty(), "collectors failed in the image's root: {failed:?}");
    assert!(body.contains("libproc_processes_limit "), "pid_max read from the copied /proc");
}
