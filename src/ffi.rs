//! The raw GlusterFS bindings (bindgen over the installed headers plus the
//! C shim). Everything here is `unsafe` to call; the rest of the host goes
//! through the small safe wrappers in `values/` and `dispatch`.
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    clippy::all,
    unsafe_op_in_unsafe_fn,
    unnecessary_transmutes
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

#[cfg(test)]
mod layout {
    use super::*;
    use std::mem::size_of;

    /// Sizes of Debian's GlusterFS 10.3 binaries (shared/GLUSTER-ABI.md):
    /// wrong defines give bindings that compile and corrupt memory.
    #[test]
    fn struct_sizes_match_the_installed_binaries() {
        assert_eq!(size_of::<xlator_t>(), 4128);
        assert_eq!(size_of::<call_frame_t>(), 176);
        assert_eq!(size_of::<call_stack_t>(), 1864);
        assert_eq!(size_of::<loc_t>(), 64);
        assert_eq!(size_of::<iatt>(), 152);
        assert_eq!(size_of::<fd_t>(), 120);
        assert_eq!(size_of::<inode_t>(), 168);
        assert_eq!(size_of::<xlator_api_t>(), 128);
        assert_eq!(size_of::<glupy_slot_t>(), 8);
    }
}
