//! One glupy translator in a graph: its Python module (loaded into a
//! namespace of its own), its `xlator` object, the methods found on it,
//! and its counters.

use crate::ffi;
use crate::fops::FOPS;
use crate::frame::FrameState;
use crate::threads::Policy;
use crate::values::dict::Dict;
use crate::values::inode::{Life, Owner};
use crate::values::refs::DictRef;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

/// Counters per fop, shown in the statedump.
#[derive(Default)]
pub struct FopStats {
    pub calls: AtomicU64,
    pub answered: AtomicU64,
    pub errors: AtomicU64,
    pub exceptions: AtomicU64,
    pub dropped: AtomicU64,
    pub python_calls: AtomicU64,
    pub python_ns: AtomicU64,
}

/// Optional methods of the translator object besides the fops.
#[derive(Default)]
pub struct Hooks {
    pub reconfigure: Option<Py<PyAny>>,
    pub notify: Option<Py<PyAny>>,
    pub dump: Option<Py<PyAny>>,
    pub fini: Option<Py<PyAny>>,
    pub forget: Option<Py<PyAny>>,
    pub release: Option<Py<PyAny>>,
    pub releasedir: Option<Py<PyAny>>,
}

pub struct Instance {
    pub xl: *mut ffi::xlator_t,
    /// The translator's name, and whose GlusterFS log its lines go to.
    pub name: crate::logging::Domain,
    pub module: String,
    /// Which code runs: module file, its sha256, helpers, load time (from
    /// `glupy._host.origin_info`), shown in the statedump for `glupy status`.
    pub origin: Vec<(String, String)>,
    pub translator: Py<PyAny>,
    pub this_obj: Py<Xlator>,
    /// Each child's name as Python gets it (a callback's `cookie`), by the
    /// child's address: made once, not for every reply.
    child_names: Vec<(usize, Py<PyAny>)>,
    pub fop_methods: Vec<Option<Py<PyAny>>>,
    pub cbk_methods: Vec<Option<Py<PyAny>>>,
    pub hooks: Hooks,
    pub stats: Vec<FopStats>,
    /// The `reload` option this instance was loaded with: a new value asks
    /// for the module to be loaded again.
    pub reload_token: String,
    /// Where this translator's Python calls run (option python-thread;
    /// reconfigure changes it).
    thread_policy: AtomicU8,
    /// Options status-interval and status-space (src/announce.rs).
    pub status: StatusOptions,
    /// notify, forget, release and releasedir, run in arrival order.
    pub events: crate::events::EventQueue,
    /// Answers the host gives without Python.
    pub tables: crate::answer_table::AnswerTables,
    /// The translator's requests not answered yet, by frame address: what
    /// fini answers if Python still keeps them.
    frames: crate::pending::Pending,
    /// Answers going up the graph right now (untracked already): the end
    /// of the graph waits for them before GlusterFS frees what they touch.
    unwinding: AtomicUsize,
    /// Answers and winds handed to Python's threads (src/queued.rs).
    pub queued: crate::queued::QueuedWork,
    /// Shared by the values handed to Python (see `Life`).
    pub life: Arc<Life>,
    /// Who finishes it (`lifecycle::finish`): a reload's retirement and
    /// fini may both try; one does, the other waits until it is done.
    pub finishing: crate::lifecycle::Finishing,
    /// A thread runs the translator's `dump()` (src/statedump.rs): one at
    /// a time, however many statedumps a hung one sees.
    pub dumping: std::sync::atomic::AtomicBool,
    /// The contextvars every coroutine of this translator starts from
    /// (its log id set: `_aio.task_context`), made at the first one.
    task_context: pyo3::sync::PyOnceLock<Py<PyAny>>,
}

// SAFETY: xl is the xlator this instance belongs to; it outlives the
// instance (freed only after fini, which drops the instance) and GlusterFS
// allows its use from any thread. The rest is Py handles and atomics.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

/// The translator object Python gets as `this`.
#[pyclass(frozen, module = "glupy", name = "Xlator")]
pub struct Xlator {
    #[pyo3(get)]
    name: String,
    #[pyo3(get, name = "type")]
    type_: String,
    #[pyo3(get)]
    children: Vec<String>,
    #[pyo3(get)]
    pub(crate) options: Py<PyDict>,
    /// Which translator a line of `Translator.log` belongs to (see
    /// `logging::Domain`): two translators can share a name.
    #[pyo3(get)]
    log_id: u64,
    /// Answer tables made while the translator is created.
    tables: crate::answer_table::Pending,
}

#[pymethods]
impl Xlator {
    /// A table of answers the host gives for `fop` without Python (see
    /// `glupy.Translator.answer_table`). Only while the translator is made.
    #[pyo3(signature = (fop, key="entry", limit=65536))]
    fn answer_table(
        &self,
        fop: &str,
        key: &str,
        limit: usize,
    ) -> PyResult<crate::answer_table::AnswerTable> {
        self.tables.create(fop, key, limit)
    }

    fn __repr__(&self) -> String {
        format!("<glupy.Xlator {} ({})>", self.name, self.type_)
    }
}

fn cstr(p: *const libc::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: GlusterFS names are NUL-terminated and live with the xlator.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// The children of `xl`, in volfile order.
pub fn children(xl: *mut ffi::xlator_t) -> Vec<(String, *mut ffi::xlator_t)> {
    let mut out = Vec::new();
    // SAFETY: xl is live; its children list is fixed once the graph is built.
    unsafe {
        let mut c = (*xl).children;
        while !c.is_null() {
            let child = (*c).xlator;
            out.push((cstr((*child).name), child));
            c = (*c).next;
        }
    }
    out
}

/// A GlusterFS options dict as str -> str.
pub fn options_map(options: *mut ffi::dict_t) -> BTreeMap<String, String> {
    // SAFETY: NULL or a live dict we reference while reading.
    let Some(dict) = (unsafe { DictRef::take(options) }) else {
        return BTreeMap::new();
    };
    let d = Dict::new(dict);
    d.key_list()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|k| {
            let v = d.get_bytes(&k).ok().flatten()?;
            Some((k, String::from_utf8_lossy(&v).into_owned()))
        })
        .collect()
}

impl Xlator {
    pub fn new(
        py: Python<'_>,
        xl: *mut ffi::xlator_t,
        options: &BTreeMap<String, String>,
    ) -> PyResult<Self> {
        let opts = PyDict::new(py);
        for (k, v) in options {
            opts.set_item(k, v)?;
        }
        // SAFETY: xl is the live xlator being initialised.
        let (name, type_) = unsafe { (cstr((*xl).name), cstr((*xl).type_)) };
        Ok(Xlator {
            log_id: crate::logging::Domain::register(xl, &name).id(),
            name,
            type_,
            children: children(xl).into_iter().map(|(n, _)| n).collect(),
            options: opts.unbind(),
            tables: crate::answer_table::Pending::open(),
        })
    }
}

impl Instance {
    /// A fresh copy of the contexts this translator's coroutines start in.
    pub fn task_context<'py>(
        &self,
        py: Python<'py>,
        translator: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let template = self.task_context.get_or_try_init(py, || {
            crate::aio::task_context(py)?
                .call1((translator,))
                .map(Bound::unbind)
        })?;
        template.bind(py).call_method0(pyo3::intern!(py, "copy"))
    }

    /// Imports the module and checks the translator class (through
    /// `glupy._host.load`, which `glupy check` shares); the error string
    /// says what to fix.
    pub fn load(
        py: Python<'_>,
        xl: *mut ffi::xlator_t,
        options: &BTreeMap<String, String>,
        life: Arc<Life>,
    ) -> Result<Instance, String> {
        let describe = |e: PyErr| crate::interp::format_exception(py, &e);
        let module = options
            .get("module-name")
            .filter(|m| !m.is_empty())
            .ok_or("option module-name is missing: set it to the Python module that defines `class xlator(glupy.Translator)`")?
            .clone();
        let thread_policy = Policy::parse(options.get("python-thread").map(String::as_str))?;
        let status = StatusOptions::new(options)?;
        let this_obj =
            Py::new(py, Xlator::new(py, xl, options).map_err(describe)?).map_err(describe)?;
        let host = py
            .import("glupy._host")
            .map_err(|e| format!("cannot import the glupy Python package: {}", describe(e)))?;
        let loaded = host
            .call_method1(
                "load",
                (&module, options.get("module-path"), this_obj.clone_ref(py)),
            )
            .map_err(describe)?;
        let (translator, methods, hooks, origin): (
            Py<PyAny>,
            Bound<'_, PyDict>,
            Bound<'_, PyDict>,
            BTreeMap<String, String>,
        ) = loaded.extract().map_err(describe)?;
        let mut fop_methods: Vec<Option<Py<PyAny>>> = (0..FOPS.len()).map(|_| None).collect();
        let mut cbk_methods: Vec<Option<Py<PyAny>>> = (0..FOPS.len()).map(|_| None).collect();
        for (name, pair) in methods.iter() {
            let name: String = name.extract().map_err(describe)?;
            let idx = crate::fops::index_of(&name)
                .ok_or_else(|| format!("glupy._host.load returned unknown fop {name}"))?;
            let (f, c): (Option<Py<PyAny>>, Option<Py<PyAny>>) =
                pair.extract().map_err(describe)?;
            fop_methods[idx] = f;
            cbk_methods[idx] = c;
        }
        let hook = |n: &str| {
            hooks
                .get_item(n)
                .ok()
                .flatten()
                .filter(|h| !h.is_none())
                .map(Bound::unbind)
        };
        let this_obj_tables = this_obj.get().tables.close();
        Ok(Instance {
            xl,
            name: crate::logging::Domain::register(xl, &this_obj.get().name),
            module,
            origin: origin.into_iter().collect(),
            translator,
            this_obj,
            child_names: children(xl)
                .into_iter()
                .map(|(name, child)| (child as usize, PyString::new(py, &name).into_any().unbind()))
                .collect(),
            fop_methods,
            cbk_methods,
            hooks: Hooks {
                reconfigure: hook("reconfigure"),
                notify: hook("notify"),
                dump: hook("dump"),
                fini: hook("fini"),
                forget: hook("forget"),
                release: hook("release"),
                releasedir: hook("releasedir"),
            },
            stats: (0..FOPS.len()).map(|_| FopStats::default()).collect(),
            reload_token: options.get("reload").cloned().unwrap_or_default(),
            thread_policy: AtomicU8::new(thread_policy as u8),
            status,
            events: Default::default(),
            tables: crate::answer_table::AnswerTables::new(this_obj_tables),
            frames: Default::default(),
            unwinding: AtomicUsize::new(0),
            queued: Default::default(),
            life,
            finishing: Default::default(),
            dumping: Default::default(),
            task_context: pyo3::sync::PyOnceLock::new(),
        })
    }

    pub fn thread_policy(&self) -> Policy {
        Policy::from_u8(self.thread_policy.load(Ordering::Relaxed))
    }

    pub fn set_thread_policy(&self, policy: Policy) {
        self.thread_policy.store(policy as u8, Ordering::Relaxed);
    }

    /// Who the values handed to this translator's Python belong to.
    pub fn owner(&self) -> Owner {
        Owner::new(self.xl, Arc::clone(&self.life))
    }

    /// The name of `child` for a callback's `cookie` (None if it is not
    /// one of ours).
    pub fn child_name(&self, py: Python<'_>, child: usize) -> Option<Py<PyAny>> {
        self.child_names
            .iter()
            .find(|(address, _)| *address == child)
            .map(|(_, name)| name.clone_ref(py))
    }

    /// A request of this translator arrived (see `answer_pending`).
    pub fn track_frame(&self, state: &Arc<FrameState>) {
        self.frames.add(state.raw() as usize, state);
    }

    /// The request was answered.
    pub fn untrack_frame(&self, frame: *mut ffi::call_frame_t) {
        self.frames.remove(frame as usize);
    }

    /// An answer starts up the graph (`finish_unwind`); ended by `unwound`.
    pub fn unwinding(&self) {
        self.unwinding.fetch_add(1, Ordering::AcqRel);
    }

    pub fn unwound(&self) {
        self.unwinding.fetch_sub(1, Ordering::AcqRel);
    }

    /// Answers still going up the graph, and work a Python thread took
    /// from the queue and is doing (src/queued.rs).
    pub fn unwinds_in_progress(&self) -> usize {
        self.unwinding.load(Ordering::Acquire) + self.queued.in_flight()
    }

    /// Requests with Python or wound below, not answered yet.
    pub fn pending_requests(&self) -> usize {
        self.frames.len()
    }

    /// The keys (`FrameState::key`) of the requests only Python can move on.
    pub fn waiting_on_python(&self) -> Vec<usize> {
        let pending = self.frames.alive();
        pending
            .iter()
            .filter(|state| state.waits_on_python())
            .map(|state| state.key())
            .collect()
    }

    /// Answers `errno` every request not answered yet: now if it is with
    /// Python, when its winds return if it is wound. Returns how many.
    pub fn answer_pending(&self, errno: i32) -> usize {
        let pending = self.frames.alive();
        pending
            .iter()
            .filter(|state| state.shut_down(errno))
            .count()
    }

    /// Whether the fop goes through glupy at all.
    pub fn intercepts(&self, fop: usize) -> bool {
        self.fop_methods[fop].is_some()
            || self.cbk_methods[fop].is_some()
            || self.tables.by_fop[fop].is_some()
            || (!self.tables.entry.is_empty() && crate::answer_table::makes_names(fop))
    }

    /// The child to wind to: the first, or the one named.
    pub fn child(&self, name: Option<&str>) -> PyResult<*mut ffi::xlator_t> {
        if name.is_none() {
            // The common case, on every wind: no list to build.
            // SAFETY: xl is our live xlator.
            let first = unsafe { ffi::glupy_first_child(self.xl) };
            if !first.is_null() {
                return Ok(first);
            }
        }
        let kids = children(self.xl);
        match name {
            None => kids.first().map(|(_, x)| *x).ok_or_else(|| {
                PyValueError::new_err(format!("{} has no child to wind to", self.name))
            }),
            Some(n) => kids
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, x)| *x)
                .ok_or_else(|| {
                    let names: Vec<_> = kids.iter().map(|(k, _)| k.as_str()).collect();
                    PyValueError::new_err(format!(
                        "{} has no child {n:?} (children: {})",
                        self.name,
                        names.join(", ")
                    ))
                }),
        }
    }

    /// The translator's live instance (a new reference).
    ///
    /// # Safety
    /// `this` must be a glupy xlator that fini has not freed.
    pub unsafe fn of(this: *mut ffi::xlator_t) -> Option<Arc<Instance>> {
        // SAFETY: by contract.
        unsafe { crate::lifecycle::current(this) }
    }

    /// Calls an optional hook; errors are logged, never raised.
    pub fn call_hook<'py, A>(
        &self,
        py: Python<'py>,
        hook: &Option<Py<PyAny>>,
        what: &str,
        args: A,
    ) -> Option<Py<PyAny>>
    where
        A: pyo3::call::PyCallArgs<'py>,
    {
        let h = hook.as_ref()?;
        match h.call1(py, args) {
            Ok(v) => Some(v),
            Err(e) => {
                crate::logging::write(
                    &self.name,
                    crate::logging::GF_LOG_ERROR,
                    &format!(
                        "{}.{what} raised: {}",
                        self.module,
                        crate::interp::format_exception(py, &e)
                    ),
                );
                None
            }
        }
    }
}

/// Options status-interval (seconds between a client's registrations; 0:
/// none) and status-space (bytes the registrations may take on the
/// volume's root; 0: no limit): see src/announce.rs.
pub struct StatusOptions {
    interval: AtomicU64,
    space: AtomicU64,
}

impl StatusOptions {
    fn new(options: &BTreeMap<String, String>) -> Result<Self, String> {
        let (interval, space) = Self::parse(options)?;
        Ok(StatusOptions {
            interval: AtomicU64::new(interval),
            space: AtomicU64::new(space),
        })
    }

    fn parse(options: &BTreeMap<String, String>) -> Result<(u64, u64), String> {
        let number = |key: &str, default: u64, what: &str| match options.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("option {key} {v:?}: give {what}")),
        };
        Ok((
            number(
                "status-interval",
                crate::announce::DEFAULT_INTERVAL,
                "whole seconds (0: this client does not register for glupy status)",
            )?,
            number(
                "status-space",
                crate::announce::DEFAULT_SPACE,
                "bytes (0: no limit, for bricks on XFS)",
            )?,
        ))
    }

    pub fn interval(&self) -> u64 {
        self.interval.load(Ordering::Relaxed)
    }

    pub fn space(&self) -> u64 {
        self.space.load(Ordering::Relaxed)
    }

    /// Applies new options (reconfigure): whether a value changed.
    pub fn set(&self, options: &BTreeMap<String, String>) -> Result<bool, String> {
        let (interval, space) = Self::parse(options)?;
        let before = (
            self.interval.swap(interval, Ordering::Relaxed),
            self.space.swap(space, Ordering::Relaxed),
        );
        Ok(before != (interval, space))
    }
}
