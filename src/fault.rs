//! Panics on purpose at named points of the host, armed one at a time from
//! Python (`glupy._glupy._panic_at(point)`, for tests only), so a test on a
//! real brick can show that a Rust panic there still answers the request
//! exactly once. Disarmed (unless a test armed one), a point costs one
//! relaxed atomic load.

use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum Point {
    /// The callback entry, before the answering machine is told of the reply.
    CallbackEntry = 1,
}

static ARMED: AtomicU32 = AtomicU32::new(0);

/// Arms `name` for one panic, at the next time any thread passes it.
pub fn arm(name: &str) -> Result<(), String> {
    let point = match name {
        "callback-entry" => Point::CallbackEntry,
        other => return Err(format!("no fault point {other:?} (callback-entry)")),
    };
    ARMED.fetch_or(point as u32, Ordering::AcqRel);
    Ok(())
}

/// Panics if `point` is armed (once: the first thread to pass disarms it).
pub fn point(point: Point) {
    let bit = point as u32;
    if ARMED.load(Ordering::Relaxed) & bit != 0
        && ARMED.fetch_and(!bit, Ordering::AcqRel) & bit != 0
    {
        panic!("a panic injected at {point:?} (glupy._glupy._panic_at)");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_armed_point_panics_once() {
        super::point(super::Point::CallbackEntry);
        super::arm("callback-entry").unwrap();
        assert!(std::panic::catch_unwind(|| super::point(super::Point::CallbackEntry)).is_err());
        super::point(super::Point::CallbackEntry);
        assert!(super::arm("nowhere").is_err());
    }
}
