//! `tree`: the longest parent chain and the largest subtree, which catch what per-parent
//! counts miss: a chain of one child per level, and a fork bomb spread over many parents.

use super::{CollectError, Collector, Context, Definition, Family, Output};
use crate::table::Snapshot;

/// The `tree` collector's declaration.
pub const DEFINITION: Definition = Definition {
    name: "tree",
    help: "deepest parent chain and largest subtree",
    default_enabled: true,
    settings: &[],
    lists: &[],
    borrows: &[],
    build: |_| Box::new(Tree),
};

/// The `tree` collector.
pub struct Tree;

/// Depth of the longest chain and size of the largest subtree.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    /// Processes on the longest root-to-leaf chain, pid 0 not counted (launchd alone is 1).
    pub depth_max: u64,
    /// Descendants of the process with the most, among processes that are not roots (pid 0,
    /// and pid 0's children: launchd; on Linux init and kthreadd).
    pub descendants_max: u64,
}

/// Computes the tree's shape in O(N log N). Parents missing from the table (exited between
/// reads) make their children roots; a cycle (pid reuse mid-read) is cut where it is found.
pub fn shape(snapshot: &Snapshot) -> Shape {
    let procs = &snapshot.processes;
    let n = procs.len();
    const NONE: usize = usize::MAX;
    let parent: Vec<usize> = procs
        .iter()
        .map(|p| {
            if p.pid == 0 || p.ppid == p.pid {
                return NONE;
            }
            procs.binary_search_by_key(&p.ppid, |q| q.pid).unwrap_or(NONE)
        })
        .collect();

    // depth[i] = 1 + depth[parent]; pid 0 has depth 0. Iterative, memoised, cycle-safe.
    const UNKNOWN: u64 = u64::MAX;
    let mut depth = vec![UNKNOWN; n];
    let mut stack = Vec::new();
    for start in 0..n {
        let mut i = start;
        while depth[i] == UNKNOWN {
            stack.push(i);
            depth[i] = UNKNOWN - 1; // on the stack: meeting it again means a cycle
            let p = parent[i];
            if p == NONE || depth[p] == UNKNOWN - 1 {
                break;
            }
            i = p;
        }
        while let Some(j) = stack.pop() {
            let p = parent[j];
            let parent_known = p != NONE && depth[p] < UNKNOWN - 1;
            // A root (or the process where a cycle is cut) starts a chain; pid 0 is not counted.
            depth[j] = if parent_known { depth[p] + 1 } else { u64::from(procs[j].pid != 0) };
        }
    }
    let depth_max = depth.iter().copied().max().unwrap_or(0);

    // Accumulate subtree sizes from the deepest processes up.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by_key(|&i| std::cmp::Reverse(depth[i]));
    let mut descendants = vec![0u64; n];
    for &i in &order {
        let p = parent[i];
        if p != NONE && depth[p] < depth[i] {
            descendants[p] += descendants[i] + 1;
        }
    }
    let is_root = |i: usize| procs[i].pid == 0 || procs[i].ppid == 0;
    let descendants_max =
        (0..n).filter(|&i| !is_root(i)).map(|i| descendants[i]).max().unwrap_or(0);
    Shape { depth_max, descendants_max }
}

impl Collector for Tree {
    fn collect(&self, ctx: &Context<'_>, out: &mut Output) -> Result<(), CollectError> {
        let shape = shape(ctx.snapshot);
        out.families.push(Family::single(
            "libproc_process_tree_depth_max",
            "Processes on the longest parent chain (launchd or init alone is 1).",
            shape.depth_max as f64,
        ));
        out.families.push(Family::single(
            "libproc_process_descendants_max",
            "Descendants of the process with the most, launchd/init/kthreadd and pid 0 excepted.",
            shape.descendants_max as f64,
        ));
        Ok(())
    }
}
