//! Parser for `src/fops.table`, shared by build.rs (which generates the C
//! shim from it) and the host (which dispatches on it at run time).

/// How a C argument type crosses to Python.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Loc,
    Fd,
    Dict,
    Inode,
    Iatt,
    Str,
    Int,
    Uint,
    Iovec,
    Iobref,
    Flock,
    Statvfs,
    Dirents,
    Lease,
    Checksum,
    LockList,
}

impl Ty {
    /// Maps a C type from the table to its kind; `None` for a type the host
    /// does not know (a table typo, caught by build.rs).
    pub fn from_c(c_type: &str) -> Option<Ty> {
        Some(match c_type {
            "loc_t *" => Ty::Loc,
            "fd_t *" => Ty::Fd,
            "dict_t *" => Ty::Dict,
            "inode_t *" => Ty::Inode,
            "struct iatt *" => Ty::Iatt,
            "const char *" => Ty::Str,
            "int" | "int32_t" | "off_t" | "off64_t" | "entrylk_cmd" | "entrylk_type"
            | "gf_xattrop_flags_t" | "gf_seek_what_t" => Ty::Int,
            "uint32_t" | "size_t" | "mode_t" | "dev_t" | "uint64_t" => Ty::Uint,
            "struct iovec *" => Ty::Iovec,
            "struct iobref *" => Ty::Iobref,
            "struct gf_flock *" => Ty::Flock,
            "struct statvfs *" => Ty::Statvfs,
            "gf_dirent_t *" => Ty::Dirents,
            "struct gf_lease *" => Ty::Lease,
            "uint8_t *" => Ty::Checksum,
            "lock_migration_info_t *" => Ty::LockList,
            _ => return None,
        })
    }

    /// Whether the C value is a pointer (carried in the slot's `p`).
    pub fn is_pointer(self) -> bool {
        !matches!(self, Ty::Int | Ty::Uint)
    }
}

#[derive(Clone, Debug)]
pub struct Arg {
    pub name: String,
    pub c_type: String,
    pub ty: Ty,
}

#[derive(Clone, Debug)]
pub struct FopSpec {
    pub name: String,
    pub args: Vec<Arg>,
    pub cbk_args: Vec<Arg>,
    /// One of the 23 fops the original Glupy exposed.
    #[allow(dead_code)] // read by the host, not by build.rs
    pub in_glupy_v1: bool,
}

impl FopSpec {
    /// The reply is a dict of extended attributes (getxattr, fgetxattr,
    /// xattrop, fxattrop): on a client, its success goes up as op_ret 0.
    #[allow(dead_code)] // read by the host, not by build.rs
    pub fn answers_xattrs(&self) -> bool {
        self.cbk_args
            .first()
            .is_some_and(|a| a.ty == Ty::Dict && a.name != "xdata")
    }
}

fn parse_args(list: &str) -> Result<Vec<Arg>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|decl| {
            let split = decl
                .rfind([' ', '*'])
                .ok_or_else(|| format!("argument without a type: {decl:?}"))?;
            let name = decl[split + 1..].to_string();
            let c_type = decl[..=split].trim();
            let c_type = if c_type.ends_with('*') && !c_type.ends_with(" *") {
                format!("{} *", c_type.trim_end_matches('*').trim())
            } else {
                c_type.to_string()
            };
            let ty = Ty::from_c(&c_type).ok_or_else(|| format!("unknown C type {c_type:?}"))?;
            Ok(Arg { name, c_type, ty })
        })
        .collect()
}

/// Parses the whole table; errors name the offending line.
pub fn parse_table(text: &str) -> Result<Vec<FopSpec>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, line)| {
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            let [name, args, cbk, flags] = cols[..] else {
                return Err(format!("fops.table:{}: expected 4 columns", n + 1));
            };
            let at = |e: String| format!("fops.table:{}: {e}", n + 1);
            Ok(FopSpec {
                name: name.to_string(),
                args: parse_args(args).map_err(at)?,
                cbk_args: parse_args(cbk).map_err(at)?,
                in_glupy_v1: flags == "glupy",
            })
        })
        .collect()
}
