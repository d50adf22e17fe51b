//! The embedded interpreter: started once per process on the first init
//! (never in glusterd, which only dlopens us), never finalized.

use crate::pool;
use once_cell::sync::OnceCell;
use pyo3::prelude::*;
use pyo3::types::{PyAnyMethods, PyString};
use std::ffi::CStr;

static STARTED: OnceCell<Result<(), String>> = OnceCell::new();

/// Default number of threads that run Python (see `pool`).
pub const DEFAULT_PYTHON_THREADS: usize = 8;

/// Starts Python, the `glupy._glupy` module and the worker pool, once.
pub fn ensure_started(python_threads: usize) -> Result<(), String> {
    STARTED
        .get_or_init(|| {
            promote_libpython()?;
            // SAFETY: called once, before any other Python use in the process.
            unsafe { initialize()? };
            Python::attach(|py| {
                crate::pymodule::install(py).map_err(|e| format_exception(py, &e))
            })?;
            pool::start(python_threads);
            Ok(())
        })
        .clone()
}

/// GlusterFS dlopens translators RTLD_LOCAL, which hides libpython's
/// symbols from the C extension modules Python loads later (`_ctypes`,
/// `_json`, ...): make libpython global, and never unloaded.
fn promote_libpython() -> Result<(), String> {
    // SAFETY: dladdr on a function of libpython fills `info` with the path
    // of the library it lives in; dlopen with RTLD_NOLOAD only changes the
    // flags of that already-loaded library.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let addr = pyo3::ffi::Py_IsInitialized as *const libc::c_void;
        if libc::dladdr(addr, &mut info) == 0 || info.dli_fname.is_null() {
            return Err("cannot find the loaded libpython".into());
        }
        let h = libc::dlopen(
            info.dli_fname,
            libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
        );
        if h.is_null() {
            let err = CStr::from_ptr(libc::dlerror())
                .to_string_lossy()
                .into_owned();
            return Err(format!("cannot make libpython global: {err}"));
        }
    }
    Ok(())
}

/// Initialises CPython like Debian's /usr/bin/python3, whoever started the
/// process: no PYTHON* variables from glusterd's or a shell's environment,
/// no signal handlers (GlusterFS owns the signals), and hands off the
/// process's locale, environment and C stdio: CPython would otherwise
/// coerce the locale (PEP 538: setenv LC_CTYPE, setlocale) from whichever
/// GlusterFS thread starts it, racing every other thread's getenv and
/// locale use. UTF-8 mode makes Python independent of the locale instead.
/// Releases the GIL after.
///
/// # Safety
/// Must be called once, before any other use of Python in the process.
unsafe fn initialize() -> Result<(), String> {
    use pyo3::ffi;
    // SAFETY: the PyConfig API is used as documented: init, set, use, clear.
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            return Ok(());
        }
        let mut pre = std::mem::MaybeUninit::<ffi::PyPreConfig>::zeroed();
        ffi::PyPreConfig_InitIsolatedConfig(pre.as_mut_ptr());
        let mut pre = pre.assume_init();
        pre.isolated = 0;
        pre.configure_locale = 0;
        pre.coerce_c_locale = 0;
        pre.coerce_c_locale_warn = 0;
        pre.utf8_mode = 1;
        pre.use_environment = 0;
        pre.parse_argv = 0;
        let status = ffi::Py_PreInitialize(&pre);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(format!(
                "Python failed to start: {}",
                status_message(&status)
            ));
        }
        let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let mut config = config.assume_init();
        config.install_signal_handlers = 0;
        config.configure_c_stdio = 0;
        config.use_environment = 0;
        config.parse_argv = 0;
        config.user_site_directory = 0;
        let status = ffi::PyConfig_SetBytesString(
            &mut config,
            &mut config.program_name,
            c"/usr/bin/python3".as_ptr(),
        );
        if ffi::PyStatus_Exception(status) != 0 {
            ffi::PyConfig_Clear(&mut config);
            return Err("cannot configure Python".into());
        }
        let status = ffi::Py_InitializeFromConfig(&config);
        ffi::PyConfig_Clear(&mut config);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(format!(
                "Python failed to start: {}",
                status_message(&status)
            ));
        }
        // The initialising thread holds the GIL; hand it back so any thread
        // can take it.
        ffi::PyEval_SaveThread();
    }
    Ok(())
}

fn status_message(status: &pyo3::ffi::PyStatus) -> String {
    if status.err_msg.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: a failed PyStatus points at a static NUL-terminated message.
        unsafe { CStr::from_ptr(status.err_msg) }
            .to_string_lossy()
            .into_owned()
    }
}

/// The exception with its full traceback, as Python prints it.
pub fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py
        .import("traceback")
        .and_then(|tb| {
            tb.call_method1(
                "format_exception",
                (err.get_type(py), err.value(py), err.traceback(py)),
            )
        })
        .and_then(|lines| lines.extract::<Vec<Bound<'_, PyString>>>());
    match formatted {
        Ok(lines) => lines
            .iter()
            .map(text_of)
            .collect::<String>()
            .trim_end()
            .to_string(),
        Err(_) => err.to_string(),
    }
}

/// A Python str as Rust text. Lone surrogates (the undecodable bytes of a
/// file name, as Python decodes names) become `\udcXX` escapes that name
/// the byte, instead of failing the conversion (and losing the line).
pub fn text_of(s: &Bound<'_, PyString>) -> String {
    if let Ok(text) = s.to_str() {
        return text.to_owned();
    }
    s.call_method1("encode", ("utf-8", "backslashreplace"))
        .and_then(|b| b.extract::<Vec<u8>>())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| s.to_string_lossy().into_owned())
}

/// The errno a translator chose by raising FopError or any OSError with
/// an errno; None for any other exception.
pub fn errno_of(py: Python<'_>, err: &PyErr) -> Option<i32> {
    if !err.is_instance_of::<pyo3::exceptions::PyOSError>(py) {
        return None;
    }
    err.value(py)
        .getattr("errno")
        .ok()?
        .extract::<i32>()
        .ok()
        .filter(|e| *e > 0)
}
