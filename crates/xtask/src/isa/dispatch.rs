//! Which code of a program runs only after a CPU-feature check: the evidence rule of the
//! audit, independent of any variant.
//!
//! 1. Detection facts, to a fixpoint: detection state starts as std_detect's cache (what
//!    `is_x86_feature_detected!`/`is_aarch64_feature_detected!` read) and compiler-rt's
//!    outline-atomics flag, and grows by every static a detection-derived value is stored to
//!    (e.g. a crate's own `cpuid` or `getauxval(AT_HWCAP)` result cache); functions returning
//!    a detection-derived value are detection functions. See [`super::guard`] (x86-64) and
//!    [`super::guard::aarch64`].
//! 2. A reference graph: functions and data blobs (a stretch of data starting where some
//!    code or data points) as nodes; calls, jumps, taken addresses, memory operands and
//!    pointers stored in data as edges. An edge from code is *guarded* when its instruction
//!    runs only behind a detection check ([`super::guard`]).
//! 3. Roots: the ELF entry point, exported functions, loader-called arrays, and anything
//!    nothing references (it is reached in a way the graph does not show).
//! 4. *Reached* = reachable from a root through unguarded edges. A function not reached,
//!    but reachable from a guarded edge of reached code, is *dispatched*: it can only start
//!    running after a detection check passed. Within a reached function, instructions the
//!    function itself guards (e.g. `xgetbv` after `cpuid`) are dispatched too.
//!
//! What this proves and what it does not: the code is entered only under a condition
//! derived from CPU detection; not that the condition tested the right feature bit. That
//! is the dispatching crate's correctness, while this audit exists to catch build leaks
//! (a `target-cpu` or `target-feature` reaching code that is called unconditionally).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::features::Arch;
use super::guard::{self, DetectionFacts, GuardAnalysis};
use super::program::{Program, ReferenceKind, plt};

/// The std_detect statics that cache `is_x86_feature_detected!` results, by name prefix.
const STD_DETECT_CACHE: &str = "std_detect::detect::cache::CACHE";
/// std_detect's slow path, which returns the detected feature bits.
const STD_DETECT_INIT: &str = "std_detect::detect::cache::detect_and_initialize";
/// compiler-rt's flag for the aarch64 outline atomics (`__aarch64_ldadd4_acq` and friends
/// test it before their LSE instruction); its constructor sets it from `getauxval`.
const LSE_ATOMICS_FLAG: &str = "__aarch64_have_lse_atomics";
/// The C library's `getauxval` (musl's and its alias).
const GETAUXVAL: [&str; 2] = ["getauxval", "__getauxval"];
/// How far into a data blob a pointer may sit from the nearest referenced address.
const MAX_BLOB_SIZE: u64 = 4096;
/// How many function names to keep as evidence for one dispatched function.
const MAX_EVIDENCE: usize = 3;

/// The result for one program.
#[derive(Debug, Clone, Default)]
pub struct Dispatch {
    /// Per function (indexed like `Program::functions`): how it can start running.
    pub reach: Vec<Reach>,
    /// Per function: guarded instruction addresses inside it (only functions that read
    /// detection state have any).
    pub guarded: HashMap<usize, BTreeSet<u64>>,
    /// Detection state found, as address ranges, with the names of the statics.
    pub detection_state: Vec<(u64, u64, String)>,
    /// Functions that read detection state or query the CPU.
    pub detecting_functions: BTreeSet<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Reachable from a root without passing a detection check.
    Unconditional,
    /// Entered only through guarded edges; the functions whose checks admit it.
    Dispatched { behind: Vec<String> },
    /// Referenced, but from nothing reachable: dead code as far as the graph shows. Not
    /// evidence of dispatch, so it is audited like unconditional code.
    Unexplained,
}

impl Dispatch {
    /// Whether the instruction at `address` in function `index` runs only after a check.
    pub fn is_dispatched(&self, index: usize, address: u64) -> bool {
        matches!(self.reach[index], Reach::Dispatched { .. })
            || self
                .guarded
                .get(&index)
                .is_some_and(|set| set.contains(&address))
    }
}

struct Facts {
    /// start → end.
    state: BTreeMap<u64, u64>,
    returning: BTreeSet<u64>,
    /// Slots (GOT entries) holding the address of detection state.
    pointer_slots: BTreeSet<u64>,
    /// Slots holding the address of a function returning a detection result.
    returning_slots: BTreeSet<u64>,
    /// `getauxval`.
    auxv: BTreeSet<u64>,
    /// aarch64 functions that never return.
    noreturn: BTreeSet<u64>,
}

impl Facts {
    fn update_pointer_slots(&mut self, program: &Program) {
        self.pointer_slots = program
            .data_pointers
            .iter()
            .filter(|(_, target)| self.is_detection_state(*target))
            .map(|(slot, _)| *slot)
            .collect();
        self.returning_slots = program
            .data_pointers
            .iter()
            .filter(|(_, target)| self.returning.contains(target))
            .map(|(slot, _)| *slot)
            .collect();
    }
}

impl DetectionFacts for Facts {
    fn is_detection_state(&self, address: u64) -> bool {
        self.state
            .range(..=address)
            .next_back()
            .is_some_and(|(_, &end)| address < end)
    }
    fn returns_detection(&self, address: u64) -> bool {
        self.returning.contains(&address)
    }
    fn points_to_detection_state(&self, address: u64) -> bool {
        self.pointer_slots.contains(&address)
    }
    fn slot_returns_detection(&self, address: u64) -> bool {
        self.returning_slots.contains(&address)
    }
    fn reads_auxv(&self, address: u64) -> bool {
        self.auxv.contains(&address)
    }
    fn never_returns(&self, address: u64) -> bool {
        self.noreturn.contains(&address)
    }
}

pub fn analyze(program: &Program) -> Dispatch {
    let functions = &program.functions;
    let mut facts = Facts {
        state: BTreeMap::new(),
        returning: BTreeSet::new(),
        pointer_slots: BTreeSet::new(),
        returning_slots: BTreeSet::new(),
        auxv: BTreeSet::new(),
        noreturn: if program.arch == Arch::Aarch64 {
            never_returning(program)
        } else {
            BTreeSet::new()
        },
    };
    for (start, size, name) in &program.data_symbols {
        // zig's compiler_rt keeps the flag as a local of its own namespace.
        if name.starts_with(STD_DETECT_CACHE) || name.ends_with(LSE_ATOMICS_FLAG) {
            facts.state.insert(*start, start + size);
        }
    }
    for function in functions {
        if function.name.starts_with(STD_DETECT_INIT) {
            facts.returning.insert(function.address);
        }
        // A shared library calls the C library's through its PLT stub.
        let name = plt::import_of(&function.name).unwrap_or(&function.name);
        if GETAUXVAL.contains(&name) {
            facts.auxv.insert(function.address);
        }
    }

    // 1. Detection facts to a fixpoint; analyses of every function touching them.
    let mut analyses: HashMap<usize, GuardAnalysis> = HashMap::new();
    for _round in 0..16 {
        let before = (facts.state.clone(), facts.returning.clone());
        facts.update_pointer_slots(program);
        for (index, function) in functions.iter().enumerate() {
            let candidate = function.queries_cpu
                || function.references.iter().any(|r| {
                    facts.is_detection_state(r.target)
                        || facts.points_to_detection_state(r.target)
                        || facts.slot_returns_detection(r.target)
                        || (matches!(r.kind, ReferenceKind::Call | ReferenceKind::Jump)
                            && (facts.returns_detection(r.target) || facts.reads_auxv(r.target)))
                });
            if !candidate {
                continue;
            }
            let analysis = match program.arch {
                Arch::X86_64 => guard::analyze(&program.instructions(function), &facts),
                Arch::Aarch64 => {
                    guard::aarch64::analyze(&program.aarch64_instructions(function), &facts)
                }
            };
            analyses.insert(index, analysis);
        }
        for (&index, analysis) in &analyses {
            if analysis.returns_detection {
                facts.returning.insert(functions[index].address);
            }
            for &(address, size) in &analysis.detection_stores {
                let (start, end) = program
                    .data_symbol_at(address)
                    .unwrap_or((address, address + size));
                facts.state.insert(start, end);
            }
        }
        if (facts.state.clone(), facts.returning.clone()) == before {
            break;
        }
    }

    // 2. The reference graph.
    let graph = Graph::build(program, &analyses);

    // 3 + 4. Reachability through unguarded edges, then dispatched regions.
    let reached = graph.reachable(&graph.roots, |edge| !edge.guarded);
    let mut behind: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); graph.nodes];
    let mut queue = VecDeque::new();
    for (from, edges) in graph.edges.iter().enumerate() {
        if !reached[from] || from >= functions.len() {
            continue;
        }
        for edge in edges.iter().filter(|e| e.guarded && !reached[e.to]) {
            if behind[edge.to].insert(from) {
                queue.push_back(edge.to);
            }
        }
    }
    while let Some(node) = queue.pop_front() {
        let sources = behind[node].clone();
        for edge in &graph.edges[node] {
            if reached[edge.to] {
                continue;
            }
            let before = behind[edge.to].len();
            behind[edge.to].extend(sources.iter().copied());
            if behind[edge.to].len() != before {
                queue.push_back(edge.to);
            }
        }
    }

    let reach = (0..functions.len())
        .map(|index| {
            if reached[index] {
                Reach::Unconditional
            } else if behind[index].is_empty() {
                Reach::Unexplained
            } else {
                let mut names: Vec<String> = behind[index]
                    .iter()
                    .map(|&source| functions[source].name.clone())
                    .collect();
                names.dedup();
                names.truncate(MAX_EVIDENCE);
                Reach::Dispatched { behind: names }
            }
        })
        .collect();

    let detection_state = facts
        .state
        .iter()
        .map(|(&start, &end)| {
            let name = program
                .data_symbols
                .iter()
                .find(|(address, _, _)| *address == start)
                .map(|(_, _, name)| name.clone())
                .unwrap_or_else(|| format!("{start:#x}"));
            (start, end, name)
        })
        .collect();
    Dispatch {
        reach,
        detecting_functions: analyses
            .iter()
            .filter(|(_, a)| a.reads_detection)
            .map(|(&index, _)| index)
            .collect(),
        guarded: analyses
            .into_iter()
            .filter(|(_, a)| !a.guarded.is_empty())
            .map(|(index, a)| (index, a.guarded))
            .collect(),
        detection_state,
    }
}

/// Start addresses of the functions that never return: no `ret` or indirect jump, and every
/// tail call to such a function (the greatest fixpoint: mutual tail calls without a return
/// loop forever). Calls to them end a block; the code after them is reached from elsewhere.
fn never_returning(program: &Program) -> BTreeSet<u64> {
    let functions = &program.functions;
    let mut noreturn: BTreeSet<u64> = functions
        .iter()
        .filter(|f| !f.returns_directly && f.instructions > 0)
        .map(|f| f.address)
        .collect();
    loop {
        let before = noreturn.len();
        let returning: Vec<u64> = functions
            .iter()
            .filter(|f| noreturn.contains(&f.address))
            .filter(|f| {
                f.references.iter().any(|r| {
                    r.kind == super::program::ReferenceKind::Jump && !noreturn.contains(&r.target)
                })
            })
            .map(|f| f.address)
            .collect();
        for address in returning {
            noreturn.remove(&address);
        }
        if noreturn.len() == before {
            return noreturn;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    to: usize,
    guarded: bool,
}

/// Functions are nodes `0..functions.len()`, data blobs the nodes after them, and one
/// last node stands for data no reference explains (a root).
struct Graph {
    nodes: usize,
    edges: Vec<Vec<Edge>>,
    roots: Vec<usize>,
}

impl Graph {
    fn build(program: &Program, analyses: &HashMap<usize, GuardAnalysis>) -> Graph {
        let functions = &program.functions;
        // Data blob starts: every data address something points at.
        let mut starts: BTreeSet<u64> = BTreeSet::new();
        for function in functions {
            for reference in &function.references {
                if program.data_section_at(reference.target).is_some() {
                    starts.insert(reference.target);
                }
            }
        }
        for &(_, target) in &program.data_pointers {
            if program.data_section_at(target).is_some() {
                starts.insert(target);
            }
        }
        let starts: Vec<u64> = starts.into_iter().collect();
        let unexplained = functions.len() + starts.len();
        let nodes = unexplained + 1;
        let blob_of = |address: u64| -> usize {
            let Some(section) = program.data_section_at(address) else {
                return unexplained;
            };
            match starts.partition_point(|&s| s <= address).checked_sub(1) {
                Some(index)
                    if starts[index] >= section.address
                        && address - starts[index] < MAX_BLOB_SIZE =>
                {
                    functions.len() + index
                }
                _ => unexplained,
            }
        };
        let node_of = |address: u64| -> Option<usize> {
            program
                .function_at(address)
                .or_else(|| program.data_section_at(address).map(|_| blob_of(address)))
        };

        let mut edges: Vec<Vec<Edge>> = vec![Vec::new(); nodes];
        for (index, function) in functions.iter().enumerate() {
            let guarded = analyses.get(&index).map(|a| &a.guarded);
            for reference in &function.references {
                let Some(to) = node_of(reference.target) else {
                    continue;
                };
                if to == index {
                    continue;
                }
                edges[index].push(Edge {
                    to,
                    guarded: guarded.is_some_and(|set| set.contains(&reference.site)),
                });
            }
        }
        let mut roots: Vec<usize> = program
            .entry_points
            .iter()
            .filter_map(|&address| program.function_at(address))
            .collect();
        roots.push(unexplained);
        for &(slot, target) in &program.data_pointers {
            let Some(to) = node_of(target) else { continue };
            let from = blob_of(slot);
            edges[from].push(Edge { to, guarded: false });
            if program
                .data_section_at(slot)
                .is_some_and(|section| section.called_by_loader)
            {
                roots.push(to);
            }
        }
        let mut referenced = vec![false; nodes];
        for list in &edges {
            for edge in list {
                referenced[edge.to] = true;
            }
        }
        roots.extend((0..nodes).filter(|&node| !referenced[node]));
        roots.sort_unstable();
        roots.dedup();
        Graph {
            nodes,
            edges,
            roots,
        }
    }

    fn reachable(&self, roots: &[usize], follow: impl Fn(&Edge) -> bool) -> Vec<bool> {
        let mut seen = vec![false; self.nodes];
        let mut stack: Vec<usize> = roots.to_vec();
        for &root in roots {
            seen[root] = true;
        }
        while let Some(node) = stack.pop() {
            for edge in self.edges[node].iter().filter(|e| follow(e)) {
                if !seen[edge.to] {
                    seen[edge.to] = true;
                    stack.push(edge.to);
                }
            }
        }
        seen
    }
}
