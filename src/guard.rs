//! Every entry GlusterFS calls runs inside `guarded`: a Rust panic is
//! logged and turned into the entry's failure value, never unwound into C.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`; on panic logs `what` with the panic message and returns
/// `on_panic`.
pub fn guarded<T>(what: &str, on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!("internal error in {what}: {msg} (please report this as a glupy bug)");
            on_panic
        }
    }
}

#[cfg(test)]
mod tests {
    use super::guarded;

    #[test]
    fn a_panic_becomes_the_failure_value() {
        assert_eq!(guarded("test", -1, || panic!("boom")), -1);
        assert_eq!(guarded("test", -1, || 0), 0);
    }
}
