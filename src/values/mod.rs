//! The values Python sees instead of pointers. Each owns what it shows
//! (a copy or a counted reference), so anything Python keeps stays valid.

pub mod buffer;
pub mod dict;
pub mod dirent;
pub mod iatt;
pub mod inode;
pub mod loc;
pub mod locks;
pub mod plain;
pub mod refs;

use crate::ffi;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Bytes from GlusterFS as a Python str: undecodable bytes survive the
/// round trip (surrogateescape, as os.fsdecode).
pub fn os_string(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

pub fn gfid_str(gfid: &[u8; 16]) -> String {
    let h: String = gfid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The xlator this thread runs for (GlusterFS's THIS).
pub fn current_this() -> *mut ffi::xlator_t {
    // SAFETY: __glusterfs_this_location always returns a valid slot.
    unsafe { *ffi::glupy_this_location() }
}
