//! The statedump section (SIGUSR1): module, the code it runs (file, sha256,
//! helpers, load time), fops in Python, counters per fop, and whatever the translator's optional `dump()` returns.

use crate::ffi;
use crate::fops::FOPS;
use crate::instance::Instance;
use crate::logging;
use pyo3::prelude::*;
use std::ffi::CString;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// GlusterFS writes a statedump line (`key=value\n`) through a 4096-byte
/// stack buffer and does not bound what overflows it (v10.3's
/// `gf_proc_dump_write_fd`): a line must stay well under that.
const LINE_BYTES: usize = 4000;
const KEY_BYTES: usize = 512;

/// `text` cut to at most `max` bytes (on a character boundary), marked.
fn fit(text: String, max: usize) -> String {
    const CUT: &str = "...(cut)";
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(CUT.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &text[..end])
}

/// One `key=value` line of the section. A line break (or, in a key, an
/// `=`) from `dump()` would forge lines of its own: escaped.
fn put(key: &str, value: &str) {
    let escape = |text: &str, is_key: bool| {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '\0' => out.push('?'),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '=' if is_key => out.push_str("\\="),
                c => out.push(c),
            }
        }
        out
    };
    let key = fit(escape(key, true), KEY_BYTES);
    let value = fit(escape(value, false), LINE_BYTES - key.len());
    let (k, v) = (
        CString::new(key).unwrap_or_default(),
        CString::new(value).unwrap_or_default(),
    );
    // SAFETY: NUL-terminated strings live across the call; we run in the
    // statedump thread, inside the section we opened; together they fit
    // GlusterFS's line buffer (see LINE_BYTES).
    unsafe { ffi::glupy_dump_write(k.as_ptr(), v.as_ptr()) };
}

/// Which code the translator runs: `module`, then the module file, its
/// sha256, the helper modules and the load time (`glupy._host.origin_info`).
/// The statedump section starts with these lines, and the status key
/// (`crate::status`) answers them: one list for both.
pub fn identity(inst: &Instance) -> Vec<(&str, &str)> {
    std::iter::once(("module", inst.module.as_str()))
        .chain(inst.origin.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect()
}

pub fn write(inst: &Arc<Instance>) {
    let section =
        CString::new(format!("xlator.features.glupy.{}.priv", inst.name)).unwrap_or_default();
    // SAFETY: called from dumpops.priv, where sections may be added.
    unsafe { ffi::glupy_dump_section(section.as_ptr()) };
    for (key, value) in identity(inst) {
        put(key, value);
    }
    let mut registered = Vec::new();
    for (i, f) in FOPS.iter().enumerate() {
        let (has_fop, has_cbk) = (inst.fop_methods[i].is_some(), inst.cbk_methods[i].is_some());
        if !(has_fop || has_cbk) {
            continue;
        }
        registered.push(match (has_fop, has_cbk) {
            (true, true) => format!("{}(fop,cbk)", f.name),
            (true, false) => format!("{}(fop)", f.name),
            _ => format!("{}(cbk)", f.name),
        });
        let s = &inst.stats[i];
        let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let py_calls = n(&s.python_calls);
        let avg_us = if py_calls == 0 {
            0.0
        } else {
            n(&s.python_ns) as f64 / py_calls as f64 / 1000.0
        };
        put(
            &format!("fop.{}", f.name),
            &format!(
                "calls={} answered={} errors={} exceptions={} dropped={} python_calls={} python_avg_us={:.1}",
                n(&s.calls),
                n(&s.answered),
                n(&s.errors),
                n(&s.exceptions),
                n(&s.dropped),
                py_calls,
                avg_us
            ),
        );
    }
    put("registered", &registered.join(" "));
    put("fops-table", &crate::api::fops_in_table(inst).join(" "));
    for table in &inst.tables.all {
        let counters: Vec<String> = table
            .counters()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        put(
            &format!("answers.{}", FOPS[table.fop].name),
            &format!("key={} {}", table.kind_name(), counters.join(" ")),
        );
    }
    if inst.hooks.dump.is_some() {
        match python_lines(inst) {
            Ok(lines) => {
                for (key, value) in lines {
                    put(&format!("python.{key}"), &value);
                }
            }
            Err(why) => put("python.dump", &why),
        }
    }
}

/// How long the statedump waits for the translator's `dump()`. It runs on
/// GlusterFS's signal thread, which SIGTERM needs too: a slow `dump()`, or
/// a Python thread that holds the GIL, must not keep the process alive.
const DUMP_WAIT: Duration = Duration::from_secs(2);

/// The translator's `dump()` lines, from a thread of its own (on a large
/// stack), or why they are left out.
fn python_lines(inst: &Arc<Instance>) -> Result<Vec<(String, String)>, String> {
    if inst.dumping.swap(true, Ordering::AcqRel) {
        return Err("the previous dump() has not returned yet: left out".into());
    }
    /// Lets the next statedump run `dump()` again, however this one ends.
    struct Dumping(Arc<Instance>);
    impl Drop for Dumping {
        fn drop(&mut self) {
            self.0.dumping.store(false, Ordering::Release);
        }
    }
    let dumping = Dumping(Arc::clone(inst));
    let (send, lines) = mpsc::channel();
    std::thread::Builder::new()
        .name("glupy-dump".into())
        .stack_size(crate::pool::PYTHON_STACK_BYTES)
        .spawn(move || {
            let inst = &dumping.0;
            crate::guard::guarded("dump()", (), || {
                let dumped = logging::with_domain(&inst.name, || dump_lines(inst));
                let _ = send.send(dumped); // the statedump may have gone on without it
            })
        })
        .map_err(|e| format!("cannot start a thread for dump() ({e})"))?;
    lines.recv_timeout(DUMP_WAIT).map_err(|_| {
        format!(
            "dump() did not return within {} s (or the GIL was held that long): left out",
            DUMP_WAIT.as_secs()
        )
    })
}

fn dump_lines(inst: &Instance) -> Vec<(String, String)> {
    Python::attach(|py| {
        let Some(result) = inst.call_hook(py, &inst.hooks.dump, "dump", ()) else {
            return Vec::new();
        };
        let items = result
            .bind(py)
            .call_method0("items")
            .and_then(|it| it.try_iter().map(|i| i.collect::<Vec<_>>()));
        let Ok(items) = items else {
            return vec![("dump".into(), "dump() must return a mapping".into())];
        };
        let text = |v: &Bound<'_, PyAny>| {
            v.str()
                .map(|s| crate::interp::text_of(&s))
                .unwrap_or_default()
        };
        items
            .into_iter()
            .flatten()
            .filter_map(|item| item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>().ok())
            .map(|(k, v)| (text(&k), text(&v)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::{fit, KEY_BYTES, LINE_BYTES};

    #[test]
    fn a_long_line_is_cut_on_a_character_boundary_within_the_buffer() {
        let key = fit("k".repeat(5000), KEY_BYTES);
        let value = fit("é".repeat(5000), LINE_BYTES - key.len());
        assert!(key.len() <= KEY_BYTES && key.ends_with("...(cut)"));
        assert!(key.len() + value.len() <= LINE_BYTES && value.ends_with("...(cut)"));
        assert_eq!(fit("short".into(), 10), "short");
    }
}
