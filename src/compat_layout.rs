//! Checks gluster.glupy's ctypes layouts against the bindings.
//!
//! Glupy 1 copied C structs into ctypes by hand and they went stale without
//! a sound (struct iatt changed in 4.x). Here Python reports what ctypes
//! makes of python/gluster/glupy, and every size and field offset is
//! compared with bindgen's view of the installed headers.

use crate::ffi;
use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

/// Prints `sizeof STRUCT N`, `field STRUCT NAME OFFSET` and
/// `const NAME VALUE` lines for what gluster.glupy declares.
const REPORT_LAYOUTS: &str = r#"
import ctypes
import gluster.glupy as g
for name in ("loc_t", "iatt_t", "ia_prot_t", "rwxperm_t", "inode_t", "fd_t"):
    cls = getattr(g, name)
    print("sizeof", name, ctypes.sizeof(cls))
    for field in cls._fields_:
        print("field", name, field[0], getattr(cls, field[0]).offset)
for name in dir(g):
    if name.startswith("IA_"):
        print("const", name, getattr(g, name))
"#;

/// What ctypes makes of gluster.glupy's structs.
#[derive(Default)]
struct Reported {
    sizes: BTreeMap<String, usize>,
    /// Fields in declaration order, per struct.
    fields: BTreeMap<String, Vec<(String, usize)>>,
    consts: BTreeMap<String, u32>,
}

fn number<T: std::str::FromStr>(text: &str, line: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| panic!("not a number in {line:?}"))
}

fn parse(report: &str) -> Reported {
    let mut r = Reported::default();
    for line in report.lines() {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["sizeof", name, n] => {
                r.sizes.insert(name.into(), number(n, line));
            }
            ["field", name, field, n] => r
                .fields
                .entry(name.into())
                .or_default()
                .push((field.into(), number(n, line))),
            ["const", name, n] => {
                r.consts.insert(name.into(), number(n, line));
            }
            _ => panic!("unexpected line from python: {line:?}"),
        }
    }
    r
}

/// Runs Debian's python3 (the one glupy.so embeds) on the checkout's
/// python/ directory: gluster.glupy must import outside GlusterFS.
fn report_from_python() -> Reported {
    let python_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let out = Command::new("/usr/bin/python3")
        .args(["-c", REPORT_LAYOUTS])
        .env("PYTHONPATH", &python_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONHOME")
        .current_dir("/")
        .output()
        .expect("running /usr/bin/python3 (apt-get install python3)");
    assert!(
        out.status.success(),
        "importing gluster.glupy from {} failed:\n{}",
        python_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&String::from_utf8(out.stdout).expect("python printed UTF-8"))
}

/// Size and `(ctypes field name, offset)` pairs of a bound C type; a
/// ctypes bitfield is at the offset of bindgen's bitfield unit.
macro_rules! bound {
    ($ty:ty { $($name:literal: $field:ident),* $(,)? }) => {
        (size_of::<$ty>(), vec![$(($name, offset_of!($ty, $field))),*])
    };
}

/// Whole structs: same size, same fields at the same offsets.
fn whole(name: &str, r: &Reported, (size, fields): (usize, Vec<(&str, usize)>)) {
    assert_eq!(r.sizes[name], size, "ctypes sizeof({name}) differs from C");
    same_fields(name, r, &fields);
}

/// Structs gluster.glupy declares only the start of: those fields must sit
/// where C has them, within the C size.
fn prefix(name: &str, r: &Reported, (size, fields): (usize, Vec<(&str, usize)>)) {
    assert!(r.sizes[name] <= size, "ctypes {name} is larger than C's");
    same_fields(name, r, &fields);
}

fn same_fields(name: &str, r: &Reported, expected: &[(&str, usize)]) {
    let got: Vec<(&str, usize)> = r.fields[name]
        .iter()
        .map(|(f, o)| (f.as_str(), *o))
        .collect();
    assert_eq!(
        got, expected,
        "fields of {name}: ctypes (left) vs C (right)"
    );
}

#[test]
fn ctypes_structs_match_the_bindings() {
    let r = report_from_python();
    whole(
        "loc_t",
        &r,
        bound!(ffi::loc_t {
            "path": path, "name": name, "inode": inode, "parent": parent,
            "gfid": gfid, "pargfid": pargfid,
        }),
    );
    whole(
        "iatt_t",
        &r,
        bound!(ffi::iatt {
            "ia_flags": ia_flags, "ia_ino": ia_ino, "ia_dev": ia_dev, "ia_rdev": ia_rdev,
            "ia_size": ia_size, "ia_nlink": ia_nlink, "ia_uid": ia_uid, "ia_gid": ia_gid,
            "ia_blksize": ia_blksize, "ia_blocks": ia_blocks, "ia_atime": ia_atime,
            "ia_mtime": ia_mtime, "ia_ctime": ia_ctime, "ia_btime": ia_btime,
            "ia_atime_nsec": ia_atime_nsec, "ia_mtime_nsec": ia_mtime_nsec,
            "ia_ctime_nsec": ia_ctime_nsec, "ia_btime_nsec": ia_btime_nsec,
            "ia_attributes": ia_attributes, "ia_attributes_mask": ia_attributes_mask,
            "ia_gfid": ia_gfid, "ia_type": ia_type, "ia_prot": ia_prot,
        }),
    );
    whole(
        "ia_prot_t",
        &r,
        bound!(ffi::ia_prot_t {
            "suid": _bitfield_1, "sgid": _bitfield_1, "sticky": _bitfield_1,
            "owner": owner, "group": group, "other": other,
        }),
    );
    whole(
        "rwxperm_t",
        &r,
        bound!(ffi::ia_prot_t__bindgen_ty_1 {
            "read": _bitfield_1, "write": _bitfield_1, "execn": _bitfield_1,
        }),
    );
    prefix(
        "inode_t",
        &r,
        bound!(ffi::inode_t { "table": table, "gfid": gfid }),
    );
    prefix(
        "fd_t",
        &r,
        bound!(ffi::fd_t {
            "pid": pid, "flags": flags, "refcount": refcount,
            "inode_list": inode_list, "inode": inode,
        }),
    );
}

#[test]
fn file_type_constants_match_ia_type_t() {
    let r = report_from_python();
    let c = BTreeMap::from([
        ("IA_INVAL", ffi::ia_type_t_IA_INVAL),
        ("IA_IFREG", ffi::ia_type_t_IA_IFREG),
        ("IA_IFDIR", ffi::ia_type_t_IA_IFDIR),
        ("IA_IFLNK", ffi::ia_type_t_IA_IFLNK),
        ("IA_IFBLK", ffi::ia_type_t_IA_IFBLK),
        ("IA_IFCHR", ffi::ia_type_t_IA_IFCHR),
        ("IA_IFIFO", ffi::ia_type_t_IA_IFIFO),
        ("IA_IFSOCK", ffi::ia_type_t_IA_IFSOCK),
    ]);
    let python: BTreeMap<&str, u32> = r.consts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        python, c,
        "IA_* in gluster.glupy (left) vs ia_type_t (right)"
    );
}
