//! Faults on purpose at named points of the host, armed one at a time from
//! Python (`glupy._glupy._panic_at(point)`, for tests only), so a test on a
//! real brick can show that a Rust panic there, or an error, still answers
//! the request exactly once and lets go of what it held. Disarmed (unless
//! a test armed one), a point costs one relaxed atomic load.

use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum Point {
    /// The callback entry, before the answering machine is told of the reply.
    CallbackEntry = 1,
    /// A call's arguments on their way to Python, after the first: the
    /// conversion fails there (MemoryError), not a panic.
    Conversion = 2,
}

static ARMED: AtomicU32 = AtomicU32::new(0);

/// Arms `name` for one panic, at the next time any thread passes it.
pub fn arm(name: &str) -> Result<(), String> {
    let point = match name {
        "callback-entry" => Point::CallbackEntry,
        "conversion" => Point::Conversion,
        other => {
            return Err(format!(
                "no fault point {other:?} (callback-entry, conversion)"
            ))
        }
    };
    ARMED.fetch_or(point as u32, Ordering::AcqRel);
    Ok(())
}

/// Panics if `point` is armed (once: the first thread to pass disarms it).
pub fn point(point: Point) {
    if fails(point) {
        panic!("a panic injected at {point:?} (glupy._glupy._panic_at)");
    }
}

/// Whether `point` is armed (once: the first thread to ask disarms it).
pub fn fails(point: Point) -> bool {
    let bit = point as u32;
    ARMED.load(Ordering::Relaxed) & bit != 0 && ARMED.fetch_and(!bit, Ordering::AcqRel) & bit != 0
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
        super::arm("conversion").unwrap();
        assert!(super::fails(super::Point::Conversion));
        assert!(!super::fails(super::Point::Conversion));
    }
}
