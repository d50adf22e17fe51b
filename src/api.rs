//! `xlator_api`: the one symbol GlusterFS looks up, and the entries it
//! points to. Every entry runs inside `guard::guarded`.

use crate::ffi;
use crate::fops::{FOPS, GETXATTR};
use crate::guard::guarded;
use crate::instance::{options_map, Instance};
use crate::{dispatch, gluster_version, interp, lifecycle, logging, threads};
use pyo3::prelude::*;
use std::collections::BTreeMap;
use std::ffi::c_char;
use std::sync::Arc;

/// The shared tables GlusterFS fills with defaults at load; each instance
/// gets its own fops table in init (see `install_fops`).
static mut FOPS_TABLE: ffi::xlator_fops = unsafe { std::mem::zeroed() };
static mut CBKS_TABLE: ffi::xlator_cbks = ffi::xlator_cbks {
    forget: Some(forget),
    release: Some(release),
    releasedir: Some(releasedir),
    // SAFETY: all-zero means "no callback" for the remaining slots.
    ..unsafe { std::mem::zeroed() }
};
static mut DUMPOPS: ffi::xlator_dumpops = ffi::xlator_dumpops {
    priv_: Some(priv_dump),
    // SAFETY: all-zero means "nothing to dump" for the remaining slots.
    ..unsafe { std::mem::zeroed() }
};

const fn option(
    keys: [*const c_char; 4],
    type_: u32,
    default: *const c_char,
    description: *const c_char,
) -> ffi::volume_option_t {
    // SAFETY: volume_option_t is plain data; all-zero is its "unset" value.
    let mut o: ffi::volume_option_t = unsafe { std::mem::zeroed() };
    o.key = [
        keys[0] as *mut c_char,
        keys[1] as *mut c_char,
        keys[2] as *mut c_char,
        keys[3] as *mut c_char,
    ];
    o.type_ = type_;
    o.default_value = default as *mut c_char;
    o.description = description as *mut c_char;
    o
}

const NONE: *const c_char = std::ptr::null();

/// The options table: glusterd validates `volume set` against it. Any
/// other option reaches Python untouched.
static mut OPTIONS: [ffi::volume_option_t; 8] = [
    option(
        [c"module-name".as_ptr(), NONE, NONE, NONE],
        ffi::volume_option_type_t_GF_OPTION_TYPE_STR,
        NONE,
        c"The Python module that defines `class xlator(glupy.Translator)`.".as_ptr(),
    ),
    option(
        [c"module-path".as_ptr(), NONE, NONE, NONE],
        ffi::volume_option_type_t_GF_OPTION_TYPE_STR,
        NONE,
        c"A directory searched first for the module and its helpers (refused unless only root can change it).".as_ptr(),
    ),
    option(
        [c"python-threads".as_ptr(), NONE, NONE, NONE],
        ffi::volume_option_type_t_GF_OPTION_TYPE_INT,
        c"8".as_ptr(),
        c"Threads (per process) that run Python code; set by the first glupy translator to start."
            .as_ptr(),
    ),
    option(
        [c"python-thread".as_ptr(), NONE, NONE, NONE],
        ffi::volume_option_type_t_GF_OPTION_TYPE_STR,
        c"auto".as_ptr(),
        c"Where Python calls run: auto (on io-threads workers, gfapi application threads and the host's threads; on the host's threads elsewhere), pool (always the host's threads), caller (always the calling thread, on a large stack).".as_ptr(),
    ),
    option(
        [c"reload".as_ptr(), NONE, NONE, NONE],
        ffi::volume_option_type_t_GF_OPTION_TYPE_STR,
        NONE,
        c"Change this value (e.g. to a timestamp) to load the module's source again; if the new code fails to load, the running translator is kept.".as_ptr(),
    ),
    option(
        [c"status-interval".as_ptr(), NONE, NONE, NONE],
        ffi::volume_option_type_t_GF_OPTION_TYPE_INT,
        c"60".as_ptr(),
        c"How often (seconds) a client process writes again its registration on the volume's root, which glupy status reads (0: never; bricks do not register).".as_ptr(),
    ),
    option(
        [c"status-space".as_ptr(), NONE, NONE, NONE],
        ffi::volume_option_type_t_GF_OPTION_TYPE_INT,
        c"3072".as_ptr(),
        c"Bytes the client registrations may take on the volume's root; a client that would exceed it does not register (0: no limit; ext4 bricks keep all of an inode's xattrs in one 4 KiB block, which GlusterFS needs too).".as_ptr(),
    ),
    // SAFETY: all-zero is the terminator GlusterFS looks for.
    unsafe { std::mem::zeroed() },
];

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut xlator_api: ffi::xlator_api_t = ffi::xlator_api_t {
    op_version: [1, 0, 0, 0],
    #[cfg(not(gluster11))]
    flags: 0,
    #[cfg(not(gluster11))]
    xlator_id: 0,
    identifier: c"glupy".as_ptr() as *mut c_char,
    options: &raw mut OPTIONS as *mut ffi::volume_option_t,
    category: ffi::gf_category_t_GF_TECH_PREVIEW,
    init: Some(init),
    fini: Some(fini),
    reconfigure: Some(reconfigure),
    mem_acct_init: Some(mem_acct_init),
    dump_metrics: None,
    notify: Some(ffi::glupy_notify),
    fops: &raw mut FOPS_TABLE,
    cbks: &raw mut CBKS_TABLE,
    dumpops: &raw mut DUMPOPS,
    pass_through_fops: std::ptr::null_mut(),
};

fn name_of(this: *mut ffi::xlator_t) -> String {
    // SAFETY: GlusterFS passes a live xlator with a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr((*this).name) }
        .to_string_lossy()
        .into_owned()
}

unsafe extern "C" fn init(this: *mut ffi::xlator_t) -> i32 {
    guarded("init", -1, || {
        logging::install();
        let name = logging::Domain::register(this, &name_of(this));
        // init runs on whichever thread loads the graph (a brick's main or
        // event thread, an application's thread in glfs_init): the import
        // runs Python on a large stack.
        threads::on_python_stack(|| {
            guarded("init", -1, || {
                logging::with_domain(&name, || match start(this) {
                    Ok(()) => 0,
                    Err(msg) => {
                        logging::write(
                            &name,
                            logging::GF_LOG_ERROR,
                            &format!("cannot start glupy translator {name}: {msg}"),
                        );
                        logging::forget_xlator(this);
                        -1
                    }
                })
            })
        })
    })
}

fn start(this: *mut ffi::xlator_t) -> Result<(), String> {
    // Before any field of the xlator past its name is read: another
    // GlusterFS version lays it out differently.
    if let Some(why) = gluster_version::refusal() {
        return Err(why);
    }
    // SAFETY: init gets the live xlator being initialised.
    let (options, has_children) =
        unsafe { (options_map((*this).options), !(*this).children.is_null()) };
    if !has_children {
        return Err("glupy needs a child (subvolumes ...) to wind to".into());
    }
    let threads = match options.get("python-threads") {
        None => interp::DEFAULT_PYTHON_THREADS,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| {
                format!("option python-threads is {v:?}: give a number of threads from 1 to 256")
            })?,
    };
    dispatch::install_hooks();
    interp::ensure_started(threads)?;
    // SAFETY: init of a live glupy xlator; fini cannot run meanwhile.
    let life = Arc::clone(&unsafe { lifecycle::slot_or_new(this) }.life);
    let inst = Python::attach(|py| Instance::load(py, this, &options, life))?;
    install(this, inst);
    Ok(())
}

/// Makes `inst` the translator's live instance: its fops table, then the
/// slot (a replaced instance is retired: see `lifecycle`).
fn install(this: *mut ffi::xlator_t, inst: Instance) {
    let registered: Vec<&str> = FOPS
        .iter()
        .enumerate()
        .filter(|(i, _)| inst.intercepts(*i))
        .map(|(_, f)| f.name.as_str())
        .collect();
    logging::write(
        &inst.name,
        logging::GF_LOG_INFO,
        &format!(
            "loaded Python module {} (fops in Python: {})",
            inst.module,
            if registered.is_empty() {
                "none".into()
            } else {
                registered.join(", ")
            }
        ),
    );
    install_fops(this, &inst);
    // SAFETY: init or reconfigure of a live glupy xlator.
    unsafe { lifecycle::install(this, inst) };
}

/// Gives the instance its own fops table: glupy entries for the fops its
/// module defines, GlusterFS's defaults for every other one, so an unused
/// fop costs nothing. getxattr is the one exception: its slot always
/// answers the status key (`status`) and hands every other name to what
/// it would have held (one `strcmp` more). The copy is made from the table GlusterFS loaded
/// (shared by every glupy instance in the process, filled with GlusterFS's
/// pass-through defaults), never from the previous instance's: a fop a
/// reloaded module no longer defines goes straight to the child again.
fn install_fops(this: *mut ffi::xlator_t, inst: &Instance) {
    let intercept: Vec<u8> = (0..FOPS.len()).map(|i| inst.intercepts(i) as u8).collect();
    // SAFETY: FOPS_TABLE is the shared table fill_defaults filled before
    // the first init and that nobody writes afterwards but STACK_WIND's
    // bookkeeping; the copy must be writable for the same reason. It stays
    // allocated until fini (GlusterFS may read a replaced table a little
    // longer: a parent may have loaded this->fops just before the swap).
    unsafe {
        let table = Box::into_raw(Box::new(std::ptr::read(&raw const FOPS_TABLE)));
        ffi::glupy_fill_fops(table, intercept.as_ptr());
        ffi::glupy_fill_status(table, intercept[*GETXATTR] as i32);
        (*this).fops = table;
        lifecycle::slot_or_new(this).keep_table(table);
    }
}

/// The fops whose slot in the translator's live fops table is a glupy
/// entry (what the statedump shows as `fops-table`).
pub fn fops_in_table(inst: &Instance) -> Vec<&'static str> {
    const WORDS: usize = std::mem::size_of::<ffi::xlator_fops>() / std::mem::size_of::<usize>();
    let entries = glupy_entries();
    // SAFETY: xlator_fops is a struct of function pointers, readable as
    // words; this->fops is the live table of our live xlator.
    let table = unsafe { &*(std::ptr::read_volatile(&(*inst.xl).fops) as *const [usize; WORDS]) };
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_some_and(|(word, entry)| table[word] == entry))
        .map(|(i, _)| FOPS[i].name.as_str())
        .collect()
}

/// For each fop: where its slot is in xlator_fops and glupy's entry for it.
fn glupy_entries() -> &'static [Option<(usize, usize)>] {
    static ENTRIES: std::sync::OnceLock<Vec<Option<(usize, usize)>>> = std::sync::OnceLock::new();
    ENTRIES.get_or_init(|| {
        const WORDS: usize = std::mem::size_of::<ffi::xlator_fops>() / std::mem::size_of::<usize>();
        (0..FOPS.len())
            .map(|i| {
                let mut intercept = vec![0u8; FOPS.len()];
                intercept[i] = 1;
                // SAFETY: an all-NULL table is valid; glupy_fill_fops writes
                // only the slot of fop i; it is then read as words.
                unsafe {
                    let mut table: ffi::xlator_fops = std::mem::zeroed();
                    ffi::glupy_fill_fops(&mut table, intercept.as_ptr());
                    if i == *GETXATTR {
                        // Reached through the status entry (install_fops).
                        ffi::glupy_fill_status(&mut table, 1);
                    }
                    let words = &*(&table as *const ffi::xlator_fops as *const [usize; WORDS]);
                    words.iter().position(|w| *w != 0).map(|k| (k, words[k]))
                }
            })
            .collect()
    })
}

unsafe extern "C" fn fini(this: *mut ffi::xlator_t) {
    guarded("fini", (), || {
        // SAFETY: GlusterFS calls fini once, after the graph stopped
        // calling the translator; the table it loaded goes back in place
        // before ours are freed.
        unsafe {
            (*this).fops = &raw mut FOPS_TABLE;
            lifecycle::fini(this);
        }
        // No line is written into this translator's log from now on.
        logging::forget_xlator(this);
    })
}

unsafe extern "C" fn reconfigure(this: *mut ffi::xlator_t, options: *mut ffi::dict_t) -> i32 {
    guarded("reconfigure", -1, || {
        // SAFETY: this is a live glupy xlator.
        let Some(inst) = (unsafe { Instance::of(this) }) else {
            return 0;
        };
        let options = options_map(options);
        // Called on glusterd's volfile fetch (an event thread or a
        // synctask): Python runs on a large stack.
        threads::on_python_stack(|| {
            guarded("reconfigure", -1, || {
                logging::with_domain(&inst.name, || apply(this, &inst, &options))
            })
        })
    })
}

/// Applies new options: a reload if asked, else python-thread at once and
/// the rest to Python's `reconfigure(options)`.
fn apply(this: *mut ffi::xlator_t, inst: &Instance, options: &BTreeMap<String, String>) -> i32 {
    let new_token = options.get("reload").cloned().unwrap_or_default();
    if new_token != inst.reload_token || options.get("module-name") != Some(&inst.module) {
        return reload(this, inst, options);
    }
    match threads::Policy::parse(options.get("python-thread").map(String::as_str)) {
        Ok(policy) => inst.set_thread_policy(policy),
        Err(msg) => {
            logging::write(&inst.name, logging::GF_LOG_ERROR, &msg);
            return -1;
        }
    }
    match inst.status.set(options) {
        Ok(true) => {
            // SAFETY: reconfigure gets a live glupy xlator.
            if let Some(slot) = unsafe { crate::lifecycle::slot(this) } {
                slot.announcer.poke();
            }
        }
        Ok(false) => {}
        Err(msg) => {
            logging::write(&inst.name, logging::GF_LOG_ERROR, &msg);
            return -1;
        }
    }
    Python::attach(|py| {
        let opts = inst.this_obj.get().options.bind(py);
        opts.clear();
        for (k, v) in options {
            if opts.set_item(k, v).is_err() {
                return -1;
            }
        }
        let _ = inst.translator.bind(py).setattr("options", opts);
        if inst.hooks.reconfigure.is_some()
            && inst
                .call_hook(py, &inst.hooks.reconfigure, "reconfigure", (opts.clone(),))
                .is_none()
        {
            return -1;
        }
        0
    })
}

/// Loads the module again (the `reload` option changed). If the new code
/// fails to load, the running instance stays and the log says why; else
/// the old one is retired (its `fini()` runs once its work in flight is
/// done: see `lifecycle`).
fn reload(this: *mut ffi::xlator_t, old: &Instance, options: &BTreeMap<String, String>) -> i32 {
    let loaded = Python::attach(|py| Instance::load(py, this, options, Arc::clone(&old.life)));
    match loaded {
        Ok(inst) => {
            install(this, inst);
            0
        }
        Err(msg) => {
            logging::write(
                &old.name,
                logging::GF_LOG_ERROR,
                &format!(
                    "reload of {} failed; the running translator is kept: {msg}",
                    old.module
                ),
            );
            0
        }
    }
}

unsafe extern "C" fn mem_acct_init(this: *mut ffi::xlator_t) -> i32 {
    // SAFETY: GlusterFS passes a live xlator.
    guarded("mem_acct_init", -1, || unsafe {
        ffi::glupy_mem_acct_init(this)
    })
}

unsafe extern "C" fn priv_dump(this: *mut ffi::xlator_t) -> i32 {
    guarded("statedump", -1, || {
        // SAFETY: this is a live glupy xlator.
        if let Some(inst) = unsafe { Instance::of(this) } {
            // The signal thread's stack is GlusterFS's: dump() runs on a large one.
            threads::on_python_stack(|| {
                guarded("statedump", (), || crate::statedump::write(&inst))
            });
        }
        0
    })
}

unsafe extern "C" fn forget(this: *mut ffi::xlator_t, inode: *mut ffi::inode_t) -> i32 {
    guarded("forget", 0, || {
        crate::events::forget_inode(this, inode);
        0
    })
}

unsafe extern "C" fn release(this: *mut ffi::xlator_t, fd: *mut ffi::fd_t) -> i32 {
    guarded("release", 0, || {
        crate::events::release_fd(this, fd, false);
        0
    })
}

unsafe extern "C" fn releasedir(this: *mut ffi::xlator_t, fd: *mut ffi::fd_t) -> i32 {
    guarded("releasedir", 0, || {
        crate::events::release_fd(this, fd, true);
        0
    })
}
