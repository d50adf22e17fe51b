//! The GlusterFS version this build is for, and the verdict of the check the
//! C shim makes when the .so is loaded (src/shim/gluster_version.c).

use crate::ffi;
use std::ffi::CStr;

/// The version of the GlusterFS headers this build was compiled against.
pub const BUILT_FOR: &str = env!("GLUPY_GLUSTERFS_VERSION");

/// Why the GlusterFS that loaded this .so is refused (another version than
/// BUILT_FOR, whose structures have other layouts), or None.
pub fn refusal() -> Option<String> {
    // SAFETY: returns NULL or a pointer to a static NUL-terminated buffer
    // written once, by the load-time constructor, before any entry runs.
    let why = unsafe { ffi::glupy_version_refusal() };
    (!why.is_null()).then(|| {
        // SAFETY: checked non-NULL above; static and NUL-terminated.
        unsafe { CStr::from_ptr(why) }
            .to_string_lossy()
            .into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shim and Rust were built for the same headers, and this process
    /// (linked against the installed libglusterfs) is not refused.
    #[test]
    fn the_shim_agrees_and_this_gluster_is_accepted() {
        // SAFETY: returns a static NUL-terminated string.
        let shim = unsafe { CStr::from_ptr(ffi::glupy_gluster_version()) };
        assert_eq!(shim.to_str().unwrap(), BUILT_FOR);
        assert_eq!(refusal(), None);
    }
}
