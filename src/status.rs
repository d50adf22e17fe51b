//! The status key (`trusted.glupy.status`, `GLUPY_STATUS_KEY` in the
//! shim): a getxattr of it reaching a glupy translator is answered by the
//! host itself, in the C fop entry, without Python and whether or not the
//! module defines `getxattr_fop` (which never sees the key). The value is a
//! small JSON object: which translator, which code it runs (the same lines
//! as the statedump section: `statedump::identity`), and which process.
//! `glupy status` reads it from every brick of a pool through GlusterFS's
//! own client stack (python/glupy/brickquery.py).
//!
//! The key may carry a suffix after a dot (`trusted.glupy.status.<nonce>`),
//! answered the same under the name asked: `glupy status` asks with a
//! fresh random suffix, so a value someone stored under the plain key on a
//! brick without glupy (root on a client can) is never taken for an answer.
//!
//! Why this name: in the `trusted.` namespace a brick without glupy answers
//! it ENODATA, which storage/posix logs at DEBUG only (a name outside the
//! kernel's namespaces, such as `glusterfs.glupy.status`, is EOPNOTSUPP
//! there: an E line in the brick log per query), and the kernel lets only
//! root read it through a FUSE mount. No translator of GlusterFS 10.3's
//! brick graph between protocol/server and glupy acts on it (checked in
//! the v10.3 sources: server, io-stats, quota, index, barrier, marker,
//! selinux, io-threads, upcall, leases, read-only, worm, locks,
//! access-control, bitrot-stub, changelog and trash wind it on unchanged).
//!
//! Cost for every other getxattr: one `strcmp` in the shim's entry, which
//! then calls what the slot held before (GlusterFS's `default_getxattr`, or
//! glupy's own entry when the module has getxattr in Python).

use crate::ffi;
use crate::guard::guarded;
use crate::instance::Instance;
use std::ffi::{c_char, CStr, CString};

/// The shim's status hook: the answer's text, gf_strdup'ed (the shim hands
/// it to the reply's dict), or NULL when the translator has no live
/// instance (the shim then answers EIO). Never calls Python.
pub unsafe extern "C" fn on_status(this: *mut ffi::xlator_t) -> *mut c_char {
    guarded("a status query", std::ptr::null_mut(), || {
        // SAFETY: the shim calls us from the fop entry of a live glupy xlator.
        let Some(inst) = (unsafe { Instance::of(this) }) else {
            return std::ptr::null_mut();
        };
        let text = CString::new(text(&inst).replace('\0', "?")).unwrap_or_default();
        // SAFETY: a NUL-terminated string, copied by GlusterFS's allocator.
        unsafe { ffi::glupy_strdup(text.as_ptr()) }
    })
}

/// The JSON text answering the status key for `inst`: its fields, and
/// under "below" those of every glupy translator under it in the graph
/// (the key never reaches them: the topmost answers for all).
pub fn text(inst: &Instance) -> String {
    let mut top = fields(inst);
    let below: Vec<serde_json::Value> = glupy_below(inst.xl)
        .iter()
        .map(|i| serde_json::Value::Object(fields(i)))
        .collect();
    if !below.is_empty() {
        top.insert("below".into(), below.into());
    }
    serde_json::Value::Object(top).to_string()
}

/// The live instances of the glupy translators under `xl`, each once, in
/// depth-first volfile order.
fn glupy_below(xl: *mut ffi::xlator_t) -> Vec<std::sync::Arc<Instance>> {
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    let mut stack: Vec<_> = crate::instance::children(xl).into_iter().rev().collect();
    while let Some((_, child)) = stack.pop() {
        if !seen.insert(child as usize) {
            continue;
        }
        if crate::lifecycle::is_glupy(child) {
            // SAFETY: a glupy xlator of this live graph (its fini comes
            // after this graph's requests end).
            if let Some(inst) = unsafe { crate::lifecycle::current(child) } {
                found.push(inst);
            }
        }
        stack.extend(crate::instance::children(child).into_iter().rev());
    }
    found
}

/// A client's registration (src/announce.rs): the status answer without
/// the helpers and versions, who the process is (what is known of it),
/// when this was written and when it is written again.
pub fn client_text(
    inst: &Instance,
    this: *mut ffi::xlator_t,
    me: &crate::announce::Identity,
    interval: u64,
) -> String {
    let mut fields = fields(inst);
    // Small: the bricks keep it in the root's xattrs (status-space).
    for unneeded in ["module-helpers", "glusterfs", "glupy"] {
        fields.remove(unneeded);
    }
    fields.insert("host_id".into(), me.host_id.clone().into());
    fields.insert("hostname".into(), me.hostname.clone().into());
    fields.insert("written_at".into(), crate::announce::unix_now().into());
    fields.insert("interval".into(), interval.into());
    // SAFETY: `this` is a live xlator; its context's strings live as long
    // as the process.
    let (server, mount, process) = unsafe {
        (
            ffi::glupy_volfile_server(this),
            ffi::glupy_mount_point(this),
            ffi::glupy_process_name(this),
        )
    };
    for (name, value) in [
        ("volfile_server", server),
        ("mount_point", mount),
        ("process_name", process),
    ] {
        let value = crate::announce::context_string(value);
        if !value.is_empty() {
            fields.insert(name.into(), value.into());
        }
    }
    serde_json::Value::Object(fields).to_string()
}

fn fields(inst: &Instance) -> serde_json::Map<String, serde_json::Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("xlator".into(), inst.name.to_string().into());
    for (key, value) in crate::statedump::identity(inst) {
        fields.insert(key.into(), value.into());
    }
    fields.insert("pid".into(), std::process::id().into());
    fields.insert("hostname".into(), hostname().into());
    fields.insert("glusterfs".into(), crate::gluster_version::BUILT_FOR.into());
    fields.insert("glupy".into(), env!("CARGO_PKG_VERSION").into());
    fields
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: writes at most buf.len() bytes into buf.
    if unsafe { libc::gethostname(buf.as_mut_ptr() as *mut c_char, buf.len()) } != 0 {
        return String::new();
    }
    buf[buf.len() - 1] = 0;
    CStr::from_bytes_until_nul(&buf)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_shims() {
        let shim = std::str::from_utf8(ffi::GLUPY_STATUS_KEY)
            .unwrap()
            .trim_end_matches('\0');
        assert_eq!(shim, "trusted.glupy.status");
    }
}
