//! The statedump section (SIGUSR1): module, the code it runs (file, sha256,
//! helpers, load time), fops in Python, counters per fop, and whatever the translator's optional `dump()` returns.

use crate::ffi;
use crate::fops::FOPS;
use crate::instance::Instance;
use pyo3::prelude::*;
use std::ffi::CString;
use std::sync::atomic::Ordering;

fn put(key: &str, value: &str) {
    let (k, v) = (
        CString::new(key.replace('\0', "?")).unwrap_or_default(),
        CString::new(value.replace('\0', "?")).unwrap_or_default(),
    );
    // SAFETY: NUL-terminated strings live across the call; we run in the
    // statedump thread, inside the section we opened.
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

pub fn write(inst: &Instance) {
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
        Python::attach(|py| {
            let Some(result) = inst.call_hook(py, &inst.hooks.dump, "dump", ()) else {
                return;
            };
            let items = result
                .bind(py)
                .call_method0("items")
                .and_then(|it| it.try_iter().map(|i| i.collect::<Vec<_>>()));
            match items {
                Ok(items) => {
                    for item in items.into_iter().flatten() {
                        if let Ok((k, v)) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>() {
                            put(
                                &format!(
                                    "python.{}",
                                    k.str().map(|s| s.to_string()).unwrap_or_default()
                                ),
                                &v.str().map(|s| s.to_string()).unwrap_or_default(),
                            );
                        }
                    }
                }
                Err(_) => put("python.dump", "dump() must return a mapping"),
            }
        });
    }
}
