//! The fop table at run time: parsed once from the same `fops.table` that
//! build.rs generated the C shim from, so indices always agree.

use crate::fop_spec::{parse_table, FopSpec};
use once_cell::sync::Lazy;

pub static FOPS: Lazy<Vec<FopSpec>> = Lazy::new(|| {
    parse_table(include_str!("fops.table")).expect("fops.table was already parsed by build.rs")
});

/// getxattr's index: its slot also answers the status key (`status`).
pub static GETXATTR: Lazy<usize> =
    Lazy::new(|| index_of("getxattr").expect("fops.table has getxattr"));

/// Index of a fop by name.
pub fn index_of(name: &str) -> Option<usize> {
    FOPS.iter().position(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_shim() {
        // SAFETY: glupy_fop_count only returns a constant.
        let shim_count = unsafe { crate::ffi::glupy_fop_count() } as usize;
        assert_eq!(FOPS.len(), shim_count);
        assert_eq!(
            FOPS.len(),
            53,
            "10.3 has 55 fops; compound and getspec are left out"
        );
        assert_eq!(FOPS.iter().filter(|f| f.in_glupy_v1).count(), 23);
    }

    #[test]
    fn the_replies_that_carry_xattrs_are_the_four_xattr_reads() {
        let mut names: Vec<_> = FOPS
            .iter()
            .filter(|f| f.answers_xattrs())
            .map(|f| f.name.as_str())
            .collect();
        names.sort();
        assert_eq!(names, ["fgetxattr", "fxattrop", "getxattr", "xattrop"]);
    }

    #[test]
    fn lookup_callback_keeps_xdata_before_postparent() {
        let lookup = &FOPS[index_of("lookup").unwrap()];
        let names: Vec<_> = lookup.cbk_args.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["inode", "buf", "xdata", "postparent"]);
    }
}
