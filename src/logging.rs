//! Logging into the process's own GlusterFS log (`_gf_msg`), for the host's
//! `tracing` events and for Python's `logging`.

use crate::ffi;
use std::cell::RefCell;
use std::ffi::CString;
use std::fmt::Write as _;
use std::sync::Arc;
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

thread_local! {
    /// The translator whose work this thread is doing: the log domain.
    static DOMAIN: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Runs `body` with log lines from this thread attributed to `domain`.
pub fn with_domain<T>(domain: &Arc<str>, body: impl FnOnce() -> T) -> T {
    let previous = DOMAIN.with(|d| d.replace(Some(Arc::clone(domain))));
    let out = body();
    DOMAIN.with(|d| *d.borrow_mut() = previous);
    out
}

pub fn current_domain() -> String {
    DOMAIN
        .with(|d| d.borrow().as_deref().map(str::to_string))
        .unwrap_or_else(|| "glupy".into())
}

/// Writes one line to the GlusterFS log of this process.
pub fn write(domain: &str, level: i32, message: &str) {
    write_at(
        domain,
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

pub fn write_at(domain: &str, place: Place<'_>, level: i32, message: &str) {
    let (domain, message) = (c_string(domain), c_string(message));
    let (file, function) = (c_string(place.file), c_string(place.function));
    // SAFETY: all strings are NUL-terminated and live across the call;
    // _gf_msg copies what it keeps and ignores calls before the log exists.
    unsafe {
        ffi::glupy_log(
            domain.as_ptr(),
            file.as_ptr(),
            function.as_ptr(),
            place.line as i32,
            level,
            message.as_ptr(),
        )
    };
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
        write_at(&current_domain(), place, level, &msg.0);
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
