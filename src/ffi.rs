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

    /// Sizes of Debian's GlusterFS binaries (shared/GLUSTER-ABI.md; for 11.1
    /// call_frame_t, call_stack_t and fd_t are also the sizeof-type of those
    /// pools in a statedump of Debian 13's brick): wrong defines give
    /// bindings that compile and corrupt memory.
    #[cfg(not(gluster11))]
    const SIZES: [usize; 8] = [4128, 176, 1864, 64, 152, 120, 168, 128];
    #[cfg(gluster11)]
    const SIZES: [usize; 8] = [4096, 176, 1856, 64, 152, 104, 176, 120];

    #[test]
    fn struct_sizes_match_the_installed_binaries() {
        let [xlator, frame, stack, loc, iatt_, fd, inode, api] = SIZES;
        assert_eq!(size_of::<xlator_t>(), xlator);
        assert_eq!(size_of::<call_frame_t>(), frame);
        assert_eq!(size_of::<call_stack_t>(), stack);
        assert_eq!(size_of::<loc_t>(), loc);
        assert_eq!(size_of::<iatt>(), iatt_);
        assert_eq!(size_of::<fd_t>(), fd);
        assert_eq!(size_of::<inode_t>(), inode);
        assert_eq!(size_of::<xlator_api_t>(), api);
        assert_eq!(size_of::<glupy_slot_t>(), 8);
    }
}
