//! Logging into the process's own GlusterFS log (`_gf_msg`), for the host's
//! `tracing` events and for Python's `logging`.

use crate::ffi;
use std::cell::RefCell;
use std::ffi::CString;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

pub const GF_LOG_CRITICAL: i32 = ffi::gf_loglevel_t_GF_LOG_CRITICAL as i32;
pub const GF_LOG_ERROR: i32 = ffi::gf_loglevel_t_GF_LOG_ERROR as i32;
pub const GF_LOG_WARNING: i32 = ffi::gf_loglevel_t_GF_LOG_WARNING as i32;
pub const GF_LOG_INFO: i32 = ffi::gf_loglevel_t_GF_LOG_INFO as i32;
pub const GF_LOG_DEBUG: i32 = ffi::gf_loglevel_t_GF_LOG_DEBUG as i32;
pub const GF_LOG_TRACE: i32 = ffi::gf_loglevel_t_GF_LOG_TRACE as i32;

/// The translator a log line belongs to: its name (the line's domain) and
/// the identity of its xlator in this process, which says whose GlusterFS
/// log the line goes to. `_gf_msg` writes to the log of `THIS->ctx`, so a
/// line must be written with THIS set to the translator: in a gfapi
/// application every glfs instance has a log (and a ctx) of its own, and
/// the host's threads otherwise log into gfapi's global ctx, which logs
/// nothing.
#[derive(Clone)]
pub struct Domain {
    name: Arc<str>,
    id: u64,
}

impl Domain {
    /// The domain of `xl`, registered as a live translator until
    /// `forget_xlator(xl)` (at its fini). Registering again (a reload)
    /// gives the same identity.
    pub fn register(xl: *mut ffi::xlator_t, name: &str) -> Domain {
        let mut live = LIVE.write().unwrap_or_else(|p| p.into_inner());
        let id = match live.iter().find(|(_, x)| *x == xl as usize) {
            Some((id, _)) => *id,
            None => {
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                live.push((id, xl as usize));
                id
            }
        };
        Domain {
            name: Arc::from(name),
            id,
        }
    }

    /// The identity Python's loggers carry (see `glupy._glupy.log`).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl std::ops::Deref for Domain {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// Live translators (identity, xlator address): a line is written with
/// THIS set to its xlator only while the xlator is here. Writers hold the
/// read lock across `_gf_msg`, so `forget_xlator` (at fini, before
/// GlusterFS frees the xlator) waits for lines being written.
static LIVE: RwLock<Vec<(u64, usize)>> = RwLock::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// `xl` is finishing: lines of its translator written from now on go to
/// the log of the writing thread's own THIS.
pub fn forget_xlator(xl: *mut ffi::xlator_t) {
    LIVE.write()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|(_, x)| *x != xl as usize);
}

thread_local! {
    /// The translator whose work this thread is doing.
    static DOMAIN: RefCell<Option<Domain>> = const { RefCell::new(None) };
}

/// Runs `body` with log lines from this thread attributed to `domain`.
pub fn with_domain<T>(domain: &Domain, body: impl FnOnce() -> T) -> T {
    let previous = DOMAIN.with(|d| d.replace(Some(domain.clone())));
    let out = body();
    DOMAIN.with(|d| *d.borrow_mut() = previous);
    out
}

/// The name and identity of the translator this thread works for.
pub fn current() -> (String, Option<u64>) {
    DOMAIN.with(|d| match d.borrow().as_ref() {
        Some(d) => (d.name.to_string(), Some(d.id)),
        None => ("glupy".into(), None),
    })
}

/// Writes one line to the GlusterFS log of `domain`'s translator.
pub fn write(domain: &Domain, level: i32, message: &str) {
    write_at(
        &domain.name,
        Some(domain.id),
        Place {
            file: "glupy",
            function: "host",
            line: 0,
        },
        level,
        message,
    )
}

/// Where a log line comes from: shown as [file:line:function].
pub struct Place<'a> {
    pub file: &'a str,
    pub function: &'a str,
    pub line: u32,
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

/// Writes one line into the log of translator `id` while it is live, else
/// into the log of the calling thread's THIS.
pub fn write_at(domain: &str, id: Option<u64>, place: Place<'_>, level: i32, message: &str) {
    let (domain, message) = (c_string(domain), c_string(message));
    let (file, function) = (c_string(place.file), c_string(place.function));
    let live = LIVE.read().unwrap_or_else(|p| p.into_inner());
    let xl = id.and_then(|id| live.iter().find(|(i, _)| *i == id).map(|(_, xl)| *xl));
    // SAFETY: the xlator is live (registered, and `forget_xlator` waits for
    // this read lock); THIS is this thread's own slot, put back right after.
    // All strings are NUL-terminated and live across the call; _gf_msg
    // copies what it keeps and ignores calls before the log exists.
    unsafe {
        let this = ffi::glupy_this_location();
        let previous = *this;
        if let Some(xl) = xl {
            *this = xl as *mut ffi::xlator_t;
        }
        ffi::glupy_log(
            domain.as_ptr(),
            file.as_ptr(),
            function.as_ptr(),
            place.line as i32,
            level,
            message.as_ptr(),
        );
        *this = previous;
    }
    drop(live);
}

/// Python `logging` level number to GlusterFS level.
pub fn from_python_level(level: i32) -> i32 {
    match level {
        l if l >= 50 => GF_LOG_CRITICAL,
        l if l >= 40 => GF_LOG_ERROR,
        l if l >= 30 => GF_LOG_WARNING,
        l if l >= 20 => GF_LOG_INFO,
        l if l >= 10 => GF_LOG_DEBUG,
        _ => GF_LOG_TRACE,
    }
}

struct GlusterLog;

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for GlusterLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut msg = Message::default();
        event.record(&mut msg);
        let level = match *event.metadata().level() {
            Level::ERROR => GF_LOG_ERROR,
            Level::WARN => GF_LOG_WARNING,
            Level::INFO => GF_LOG_INFO,
            Level::DEBUG => GF_LOG_DEBUG,
            Level::TRACE => GF_LOG_TRACE,
        };
        let meta = event.metadata();
        let file = meta
            .file()
            .map(|f| f.rsplit('/').next().unwrap_or(f))
            .unwrap_or("glupy");
        let place = Place {
            file,
            function: meta.target(),
            line: meta.line().unwrap_or(0),
        };
        let (domain, id) = current();
        write_at(&domain, id, place, level, &msg.0);
    }
}

/// Routes the host's `tracing` events to the GlusterFS log (once per process).
pub fn install() {
    let _ = tracing_subscriber::registry().with(GlusterLog).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_levels_map_to_gluster_levels() {
        assert_eq!(from_python_level(50), GF_LOG_CRITICAL);
        assert_eq!(from_python_level(40), GF_LOG_ERROR);
        assert_eq!(from_python_level(30), GF_LOG_WARNING);
        assert_eq!(from_python_level(20), GF_LOG_INFO);
        assert_eq!(from_python_level(10), GF_LOG_DEBUG);
        assert_eq!(from_python_level(5), GF_LOG_TRACE);
    }
}
