//! The Python files generated from the fop table: `python/glupy/_fops.py`
//! (the table, for `glupy check` and the loader) and the fop methods of
//! `python/glupy/__init__.pyi`. A test keeps the checked-in copies equal to
//! what the table says; `make generate` rewrites them.

use crate::fop_spec::{Arg, Ty};
use crate::fops::FOPS;
use std::fmt::Write as _;

pub const STUB_BEGIN: &str = "    # BEGIN generated fop methods (make generate)\n";
pub const STUB_END: &str = "    # END generated fop methods\n";

fn py_type(ty: Ty) -> &'static str {
    match ty {
        Ty::Loc => "Loc",
        Ty::Fd => "Fd",
        Ty::Dict => "Dict | None",
        Ty::Inode => "Inode | None",
        Ty::Iatt => "Iatt | None",
        Ty::Str => "str | None",
        Ty::Int | Ty::Uint => "int",
        Ty::Iovec => "Vector",
        Ty::Iobref => "Iobref | None",
        Ty::Flock => "Flock | None",
        Ty::Statvfs => "Statvfs | None",
        Ty::Dirents => "list[Dirent] | None",
        Ty::Lease => "Lease | None",
        Ty::Checksum => "bytes | None",
        Ty::LockList => "list[ActiveLock] | None",
    }
}

fn names(args: &[Arg]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| format!("{:?}", a.name)).collect();
    match quoted.len() {
        1 => format!("({},)", quoted[0]),
        _ => format!("({})", quoted.join(", ")),
    }
}

pub fn fops_py() -> String {
    let mut s = String::from(
        "# Generated from src/fops.table by `make generate`; a cargo test checks it. Do not edit.\n\
         \"\"\"The fops a translator can define: name -> (fop args, callback args, in Glupy 1).\"\"\"\n\nFOPS = {\n",
    );
    for f in FOPS.iter() {
        let _ = writeln!(
            s,
            "    {:?}: ({}, {}, {}),",
            f.name,
            names(&f.args),
            names(&f.cbk_args),
            if f.in_glupy_v1 { "True" } else { "False" }
        );
    }
    s.push_str("}\n\nGLUPY_V1_FOPS = tuple(name for name, (_, _, v1) in FOPS.items() if v1)\n");
    s
}

/// `copy_file_range` -> `CopyFileRangeReply`.
pub fn reply_class(fop: &str) -> String {
    let camel: String = fop
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("{camel}Reply")
}

pub fn stub_methods() -> String {
    let mut s = String::from(STUB_BEGIN);
    let params = |args: &[Arg]| {
        args.iter()
            .map(|a| format!(", {}: {}", a.name, py_type(a.ty)))
            .collect::<String>()
    };
    for f in FOPS.iter() {
        let reply = reply_class(&f.name);
        let _ = writeln!(
            s,
            "    def {}_fop(self, frame: Frame[{reply}], this: Xlator{}) -> object: ...",
            f.name,
            params(&f.args)
        );
        let _ = writeln!(
            s,
            "    def {}_cbk(self, frame: Frame[{reply}], cookie: object, this: Xlator, op_ret: int, op_errno: int{}) -> object: ...",
            f.name,
            params(&f.cbk_args)
        );
    }
    s.push_str(STUB_END);
    s
}

pub const REPLIES_BEGIN: &str = "# BEGIN generated reply classes (make generate)\n";
pub const REPLIES_END: &str = "# END generated reply classes\n";

/// One typed Reply class per fop, for `await frame.wind(...)`.
pub fn stub_replies() -> String {
    let mut s = String::from(REPLIES_BEGIN);
    for f in FOPS.iter() {
        let _ = writeln!(s, "class {}(Reply):", reply_class(&f.name));
        for a in &f.cbk_args {
            let _ = writeln!(s, "    {}: {}", a.name, py_type(a.ty));
        }
    }
    s.push_str(REPLIES_END);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(path: &Path, expected: &str) {
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        if actual != expected {
            if std::env::var_os("GLUPY_REGENERATE").is_some() {
                std::fs::write(path, expected).unwrap();
            } else {
                panic!(
                    "{} is out of date with src/fops.table: run `make generate`",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn python_files_match_the_fop_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/glupy");
        check(&root.join("_fops.py"), &fops_py());
        let stub_path = root.join("__init__.pyi");
        let stub = std::fs::read_to_string(&stub_path).expect("python/glupy/__init__.pyi");
        let stub = replace_region(&stub, REPLIES_BEGIN, REPLIES_END, &stub_replies());
        let stub = replace_region(&stub, STUB_BEGIN, STUB_END, &stub_methods());
        check(&stub_path, &stub);
    }

    fn replace_region(text: &str, begin: &str, end: &str, with: &str) -> String {
        let (head, rest) = text
            .split_once(begin)
            .unwrap_or_else(|| panic!("stub lacks {begin:?}"));
        let (_, tail) = rest
            .split_once(end)
            .unwrap_or_else(|| panic!("stub lacks {end:?}"));
        format!("{head}{with}{tail}")
    }
}
