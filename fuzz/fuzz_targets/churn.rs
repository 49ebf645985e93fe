//! SimKernel's churn mode with its schedule taken from the input (`Choices::Bytes`): the
//! reader, `record` and replay never panic or hang, a snapshot counts or calls vanished
//! exactly the pids it listed, and every recording passes the strict reader and records back
//! identical. The input running out ends the churn, so every run ends.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use libproc_exporter::commands::recording;
use libproc_exporter::host::Limits;
use libproc_exporter::libproc::sim::churn::{Choices, Churn};
use libproc_exporter::libproc::sim::{Call, SimKernel, SimTable};
use libproc_exporter::table::darwin::{DarwinSource, TtyDevices};
use libproc_exporter::table::replay::ReplaySource;
use libproc_exporter::table::{Tty, snapshot_file};
use libproc_exporter::users::UserNames;

fuzz_target!(|data: &[u8]| {
    let ttys: Vec<Tty> =
        (0..3).map(|i| Tty { dev: 0x1000_0000 + i, name: format!("ttys{i:03}") }).collect();
    let devs: Vec<u32> = ttys.iter().map(|t| t.dev).collect();
    // The first bytes boot the machine, the rest churn it while it is read.
    let (boot, rest) = data.split_at(data.len().min(128));
    let mut table = SimTable::booted();
    let bytes = |b: &[u8]| Choices::Bytes { bytes: b.to_vec(), at: 0 };
    let mut warm = Churn::with_choices(bytes(boot), &table, 0, devs.clone());
    for index in 0..64 {
        let call = Call { index, callnum: 0, pid: 0, flavor: 0, arg: 0, buf_len: None };
        warm.step(&mut table, &call);
    }
    let caller = if data.first().is_some_and(|b| b & 1 == 1) { 0 } else { 501 };
    let kernel = Arc::new(SimKernel::new(table, caller));
    let churn = Churn::install_with(&kernel, bytes(rest), devs);
    let limits = Limits {
        maxproc: Some(4176),
        maxprocperuid: Some(2784),
        ptmx_max: Some(511),
        ..Limits::default()
    };
    let mut source = DarwinSource::new(
        kernel.clone(),
        TtyDevices::Fixed(ttys),
        Some(limits),
        Default::default(),
        caller,
    );
    let from = kernel.calls();
    if let Ok(snap) = source.read() {
        let to = kernel.calls() - 1;
        let churn = churn.lock().unwrap();
        let (_, listed) = churn.history.listings(from, to).last().expect("a complete listing");
        let vanished = snap.unreadable.vanished as usize;
        assert_eq!(snap.processes.len() + vanished, listed.len(), "counted + vanished");
        assert!(snap.processes.iter().all(|p| listed.contains(&p.pid)), "counted, not listed");
    }
    if let Ok(recorded) = recording(&mut source) {
        let text = snapshot_file::to_json(&recorded, &UserNames::new());
        let file = snapshot_file::parse(&text).expect("the strict reader accepts a recording");
        let again = recording(&mut ReplaySource::new(&file)).expect("a replay records");
        assert_eq!(snapshot_file::to_json(&again, &UserNames::new()), text, "records back");
    }
});
