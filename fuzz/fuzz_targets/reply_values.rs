//! Fuzzes what a Python translator winds and unwinds: arbitrary Python
//! values (built by tests/xlators/fault_fuzz.py inside a real brick from a
//! program this target derives from the input) must be converted by the
//! glupy host into the reply, or refused with a Python exception. The
//! brick must never crash, and no request may hang; where the program is
//! valid, the client must get back exactly what the translator answered
//! (xattr values, iatt fields, read data, directory names).
//!
//! The brick is a separate glusterfsd started on first use (loopback only);
//! this process is its gfapi client. See RELIABILITY.md for how it is run.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value as J};
use std::ffi::{CStr, CString};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CALL_TIMEOUT_MS: u64 = 10_000;
const MAX_NAME: usize = 255;

#[allow(non_camel_case_types)]
type glfs_t = libc::c_void;
#[allow(non_camel_case_types)]
type glfs_fd_t = libc::c_void;

#[link(name = "gfapi")]
extern "C" {
    fn glfs_new(volname: *const libc::c_char) -> *mut glfs_t;
    fn glfs_set_volfile(fs: *mut glfs_t, volfile: *const libc::c_char) -> libc::c_int;
    fn glfs_set_logging(fs: *mut glfs_t, log: *const libc::c_char, level: libc::c_int) -> libc::c_int;
    fn glfs_init(fs: *mut glfs_t) -> libc::c_int;
    fn glfs_creat(fs: *mut glfs_t, path: *const libc::c_char, flags: libc::c_int, mode: libc::mode_t) -> *mut glfs_fd_t;
    fn glfs_mkdir(fs: *mut glfs_t, path: *const libc::c_char, mode: libc::mode_t) -> libc::c_int;
    fn glfs_setxattr(fs: *mut glfs_t, path: *const libc::c_char, name: *const libc::c_char, value: *const libc::c_void, size: libc::size_t, flags: libc::c_int) -> libc::c_int;
    fn glfs_getxattr(fs: *mut glfs_t, path: *const libc::c_char, name: *const libc::c_char, value: *mut libc::c_void, size: libc::size_t) -> libc::ssize_t;
    fn glfs_fstat(fd: *mut glfs_fd_t, buf: *mut libc::stat) -> libc::c_int;
    fn glfs_pread(fd: *mut glfs_fd_t, buf: *mut libc::c_void, count: libc::size_t, offset: libc::off_t, flags: libc::c_int, poststat: *mut libc::c_void) -> libc::ssize_t;
    fn glfs_opendir(fs: *mut glfs_t, path: *const libc::c_char) -> *mut glfs_fd_t;
    fn glfs_readdir(fd: *mut glfs_fd_t) -> *mut libc::dirent;
    fn glfs_closedir(fd: *mut glfs_fd_t) -> libc::c_int;
}

// ------------------------------------------------------------ the programs

#[derive(Arbitrary, Debug)]
enum Val {
    None,
    Int(i128),
    Small(i32),
    Float(f64),
    Str(Vec<u8>),
    Bytes(Vec<u8>),
    ByteArray(Vec<u8>),
    MemView(Vec<u8>),
    List(Vec<Val>),
    Tuple(Vec<Val>),
    Dict(Vec<(Val, Val)>),
    GlupyDict(Vec<(Vec<u8>, Vec<u8>)>),
    Vector(Vec<u8>),
    Iatt(IattSpec),
    Dirent(Vec<u8>, u8),
    Loc(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct IattSpec {
    size: u64,
    uid: u32,
    gid: u32,
    nlink: u32,
    blocks: u64,
    /// A field set out of its range or by a wrong name, now and then.
    wild: Option<(u8, i128)>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum BufKind {
    Bytes,
    ByteArray,
    MemView,
    Vector,
    ListOfInts,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum RawFop {
    Getxattr,
    Fstat,
    Readv,
    Readdir,
}

#[derive(Arbitrary, Debug)]
enum Program {
    /// getxattr answered with a dict: the value of the name asked for must
    /// come back exactly.
    Xattr { value: Vec<u8>, others: Vec<(Vec<u8>, Vec<u8>)>, glupy_dict: bool, xdata: Val },
    /// fstat answered with an iatt (or something else in its place).
    Fstat { iatt: IattSpec, instead: Option<Val>, xdata: Val },
    /// readv answered with data in one of the buffer types.
    Read { data: Vec<u8>, kind: BufKind },
    /// readdir answered with these names.
    Readdir { names: Vec<(Vec<u8>, u8)> },
    /// An error reply with arbitrary values and errno.
    Error { fop: RawFop, op_errno: i64, values: Vec<Val> },
    /// getxattr wound with an arbitrary name and xdata.
    Wind { name: Val, xdata: Val },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn iatt_json(spec: &IattSpec) -> J {
    let mut fields = serde_json::Map::new();
    fields.insert("st_size".into(), json!(spec.size.to_string()));
    fields.insert("st_uid".into(), json!(spec.uid.to_string()));
    fields.insert("st_gid".into(), json!(spec.gid.to_string()));
    fields.insert("st_nlink".into(), json!(spec.nlink.to_string()));
    fields.insert("st_blocks".into(), json!(spec.blocks.to_string()));
    if let Some((which, value)) = spec.wild {
        const NAMES: [&str; 6] = ["st_size", "st_uid", "st_mode", "ia_gid", "st_nonsense", "st_blksize"];
        fields.insert(NAMES[which as usize % NAMES.len()].into(), json!(value.to_string()));
    }
    json!({ "iatt": fields })
}

fn val_json(v: &Val) -> J {
    match v {
        Val::None => J::Null,
        Val::Int(i) => json!({ "i": i.to_string() }),
        Val::Small(i) => json!({ "i": i.to_string() }),
        Val::Float(f) => json!({ "f": if f.is_finite() { *f } else { 0.0 } }),
        Val::Str(b) => json!({ "s": hex(b) }),
        Val::Bytes(b) => json!({ "b": hex(b) }),
        Val::ByteArray(b) => json!({ "ba": hex(b) }),
        Val::MemView(b) => json!({ "mv": hex(b) }),
        Val::List(items) => json!({ "l": items.iter().map(val_json).collect::<Vec<_>>() }),
        Val::Tuple(items) => json!({ "t": items.iter().map(val_json).collect::<Vec<_>>() }),
        Val::Dict(pairs) => json!({ "d": pairs.iter().map(|(k, v)| json!([val_json(k), val_json(v)])).collect::<Vec<_>>() }),
        Val::GlupyDict(pairs) => json!({ "gd": pairs.iter().map(|(k, v)| json!([{ "s": hex(k) }, { "b": hex(v) }])).collect::<Vec<_>>() }),
        Val::Vector(b) => json!({ "vec": hex(b) }),
        Val::Iatt(spec) => iatt_json(spec),
        Val::Dirent(name, d_type) => json!({ "dirent": [{ "s": hex(name) }, "1", d_type.to_string(), J::Null] }),
        Val::Loc(path) => json!({ "loc": { "s": hex(path) } }),
    }
}

fn program(kind: &str, op_ret: i64, op_errno: i64, values: Vec<J>) -> J {
    json!({ "kind": kind, "op_ret": op_ret.to_string(), "op_errno": op_errno.to_string(), "values": values })
}

// ------------------------------------------------------------- the brick

struct Harness {
    fs: *mut glfs_t,
    file: *mut glfs_fd_t,
    brick: std::process::Child,
    log: PathBuf,
}

// SAFETY: used from the fuzz thread only, behind a Mutex.
unsafe impl Send for Harness {}

static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();
static DEADLINE_MS: AtomicU64 = AtomicU64::new(0);
static BRICK_PID: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn brick_volfile(dir: &std::path::Path, port: u16, xlators: &str) -> String {
    format!(
        "volume fz-posix\n    type storage/posix\n    option directory {dir}/brick\nend-volume\n\n\
         volume fz-locks\n    type features/locks\n    subvolumes fz-posix\nend-volume\n\n\
         volume fz-glupy\n    type features/glupy\n    option module-name fault_fuzz\n    option module-path {xlators}\n    subvolumes fz-locks\nend-volume\n\n\
         volume fz-server\n    type protocol/server\n    option transport-type tcp\n    option transport.socket.listen-port {port}\n\
         \x20   option transport.socket.bind-address 127.0.0.1\n    option transport.address-family inet\n\
         \x20   option auth.addr.fz-glupy.allow *\n    option auth-path fz-glupy\n    option statedump-path {dir}\n    subvolumes fz-glupy\nend-volume\n",
        dir = dir.display()
    )
}

fn client_volfile(port: u16) -> String {
    format!(
        "volume fz-client\n    type protocol/client\n    option transport-type tcp\n    option remote-host 127.0.0.1\n\
         \x20   option remote-port {port}\n    option remote-subvolume fz-glupy\n    option transport.address-family inet\nend-volume\n"
    )
}

/// At exit: a statedump (the translator's counts of accepted and refused
/// programs, the host's per-fop counters), then stop the brick.
extern "C" fn stop_brick() {
    let pid = BRICK_PID.load(Ordering::Relaxed);
    if pid != 0 {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_secs(2));
        // SAFETY: as above.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
}

fn start() -> Harness {
    let xlators = std::env::var("GLUPY_FUZZ_XLATORS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/xlators").into());
    let dir = std::env::var("GLUPY_FUZZ_WORKDIR").map(PathBuf::from).unwrap_or_else(|_| {
        std::env::temp_dir().join(format!("glupy-fuzz-{}", std::process::id()))
    });
    std::fs::create_dir_all(dir.join("brick")).unwrap();
    let port = free_port();
    let volfile = dir.join("brick.vol");
    std::fs::write(&volfile, brick_volfile(&dir, port, &xlators)).unwrap();
    let log = dir.join("brick.log");
    let mut command = Command::new("glusterfsd");
    command.args(["-N", "-f"]).arg(&volfile).arg("-l").arg(&log)
        .args(["-L", "INFO", "--volfile-id", "fz", "--brick-name"]).arg(dir.join("brick"))
        .stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).current_dir(&dir);
    // SAFETY: prctl in the child before exec: the brick dies with us.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let brick = command.spawn().expect("start glusterfsd");
    BRICK_PID.store(brick.id() as u64, Ordering::Relaxed);
    // SAFETY: registering a plain extern "C" function.
    unsafe { libc::atexit(stop_brick) };
    wait_for_graph(&log);
    let client = dir.join("client.vol");
    std::fs::write(&client, client_volfile(port)).unwrap();
    let c = |s: &std::path::Path| CString::new(s.to_str().unwrap()).unwrap();
    // SAFETY: gfapi calls with valid NUL-terminated strings.
    unsafe {
        let fs = glfs_new(c"fuzz".as_ptr());
        assert!(!fs.is_null());
        glfs_set_volfile(fs, c(&client).as_ptr());
        glfs_set_logging(fs, c(&dir.join("client.log")).as_ptr(), 5);
        assert_eq!(glfs_init(fs), 0, "glfs_init failed; see {}", dir.display());
        let file = glfs_creat(fs, c"/fuzz".as_ptr(), libc::O_RDWR, 0o644);
        assert!(!file.is_null());
        glfs_mkdir(fs, c"/fuzzdir".as_ptr(), 0o755);
        std::thread::spawn(watchdog);
        eprintln!("glupy-fuzz: brick pid {} on 127.0.0.1:{port}, files in {}", brick.id(), dir.display());
        Harness { fs, file, brick, log }
    }
}

fn wait_for_graph(log: &std::path::Path) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(f) = std::fs::File::open(log) {
            if BufReader::new(f).lines().map_while(Result::ok).any(|l| l.starts_with("Final graph")) {
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the brick did not start: see {}", log.display());
}

/// Aborts (libFuzzer saves the input) when a call is not answered in time.
fn watchdog() {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let deadline = DEADLINE_MS.load(Ordering::Relaxed);
        if deadline != 0 && now_ms() > deadline {
            eprintln!("glupy-fuzz: a request was not answered within {CALL_TIMEOUT_MS} ms");
            std::process::abort();
        }
    }
}

fn timed<T>(call: impl FnOnce() -> T) -> (T, i32) {
    DEADLINE_MS.store(now_ms() + CALL_TIMEOUT_MS, Ordering::Relaxed);
    // SAFETY: errno is thread-local.
    unsafe { *libc::__errno_location() = 0 };
    let value = call();
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    DEADLINE_MS.store(0, Ordering::Relaxed);
    (value, errno)
}

impl Harness {
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.brick.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<_> = log.lines().rev().take(30).collect();
            panic!("the brick died ({status}); log tail:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
    }

    fn send(&self, program: &J) {
        let text = program.to_string();
        // SAFETY: valid strings and a buffer of text.len() bytes.
        let (ret, errno) = timed(|| unsafe {
            glfs_setxattr(self.fs, c"/fuzz".as_ptr(), c"user.fuzz.program".as_ptr(),
                          text.as_ptr().cast(), text.len(), 0)
        });
        assert_eq!(ret, 0, "sending the program failed: errno {errno}");
    }

    fn getxattr(&self) -> Result<Vec<u8>, i32> {
        let mut buf = vec![0u8; 1 << 17];
        // SAFETY: buf has the size given.
        let (n, errno) = timed(|| unsafe {
            glfs_getxattr(self.fs, c"/fuzz".as_ptr(), c"user.fuzz.get".as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        });
        // A length past the buffer: gfapi turned an error reply with a
        // negative errno into a "size" (see RELIABILITY.md).
        if n < 0 { Err(errno) } else { Ok(buf[..(n as usize).min(buf.len())].to_vec()) }
    }

    fn fstat(&self) -> Result<libc::stat, i32> {
        // SAFETY: a zeroed stat is a valid out-buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let (ret, errno) = timed(|| unsafe { glfs_fstat(self.file, &mut st) });
        if ret < 0 { Err(errno) } else { Ok(st) }
    }

    fn pread(&self) -> Result<Vec<u8>, i32> {
        let mut buf = vec![0u8; 1 << 17];
        // SAFETY: buf has the size given; no poststat wanted.
        let (n, errno) = timed(|| unsafe {
            glfs_pread(self.file, buf.as_mut_ptr().cast(), buf.len(), 0, 0, std::ptr::null_mut())
        });
        if n < 0 { Err(errno) } else { Ok(buf[..(n as usize).min(buf.len())].to_vec()) }
    }

    fn readdir(&self) -> Result<Vec<Vec<u8>>, i32> {
        // SAFETY: gfapi directory calls on a handle we open and close here.
        unsafe {
            let (dir, errno) = timed(|| glfs_opendir(self.fs, c"/fuzzdir".as_ptr()));
            if dir.is_null() {
                return Err(errno);
            }
            let mut names = Vec::new();
            let result = loop {
                let (entry, errno) = timed(|| glfs_readdir(dir));
                if entry.is_null() {
                    break if errno != 0 { Err(errno) } else { Ok(names) };
                }
                names.push(CStr::from_ptr((*entry).d_name.as_ptr()).to_bytes().to_vec());
            };
            timed(|| glfs_closedir(dir));
            result
        }
    }
}

// ----------------------------------------------------------- properties

fn run(h: &mut Harness, p: &Program) {
    match p {
        Program::Xattr { value, others, glupy_dict, xdata } => {
            let mut pairs = vec![(b"user.fuzz.get".to_vec(), value.clone())];
            pairs.extend(others.iter().map(|(k, v)| (format!("user.f.{}", hex(k)).into_bytes(), v.clone())));
            let tag = if *glupy_dict { "gd" } else { "d" };
            let dict = json!({ tag: pairs.iter().map(|(k, v)| json!([{ "s": hex(k) }, { "b": hex(v) }])).collect::<Vec<_>>() });
            h.send(&program("getxattr", value.len() as i64, 0, vec![dict, val_json(xdata)]));
            match h.getxattr() {
                Ok(got) => assert_eq!(&got, value, "getxattr returned another value"),
                Err(e) => assert_eq!(e, libc::EINVAL, "getxattr failed with errno {e}"),
            }
        }
        Program::Fstat { iatt, instead, xdata } => {
            let slot = match instead {
                Some(Val::None) | None => iatt_json(iatt),
                Some(other) => val_json(other),
            };
            let exact = instead.is_none() && iatt.wild.is_none();
            h.send(&program("fstat", 0, 0, vec![slot, val_json(xdata)]));
            match h.fstat() {
                Ok(st) if exact => {
                    assert_eq!((st.st_size as u64, st.st_uid, st.st_gid, st.st_nlink as u32, st.st_blocks as u64),
                               (iatt.size, iatt.uid, iatt.gid, iatt.nlink, iatt.blocks), "fstat fields differ");
                }
                Ok(_) => {}
                Err(e) => assert_eq!(e, libc::EINVAL, "fstat failed with errno {e}"),
            }
        }
        Program::Read { data, kind } => {
            let data = &data[..data.len().min(1 << 16)];
            let buffer = match kind {
                BufKind::Bytes => json!({ "b": hex(data) }),
                BufKind::ByteArray => json!({ "ba": hex(data) }),
                BufKind::MemView => json!({ "mv": hex(data) }),
                BufKind::Vector => json!({ "vec": hex(data) }),
                BufKind::ListOfInts => json!({ "l": data.iter().map(|b| json!({ "i": b.to_string() })).collect::<Vec<_>>() }),
            };
            let stat = iatt_json(&IattSpec { size: data.len() as u64, uid: 0, gid: 0, nlink: 1, blocks: 0, wild: None });
            h.send(&program("readv", data.len() as i64, 0, vec![buffer, J::Null, stat, J::Null, J::Null]));
            let got = h.pread().unwrap_or_else(|e| panic!("readv failed with errno {e}"));
            assert_eq!(got, data, "read returned other data");
        }
        Program::Readdir { names } => {
            let names: Vec<_> = names.iter().map(|(n, t)| (n[..n.len().min(MAX_NAME)].to_vec(), *t)).collect();
            let valid = names.iter().all(|(n, _)| !n.contains(&0));
            let entries: Vec<J> = names.iter().enumerate().map(|(i, (n, t))| {
                json!({ "dirent": [{ "s": hex(n) }, (i + 1).to_string(), t.to_string(), J::Null] })
            }).collect();
            h.send(&program("readdir", names.len() as i64, 0, vec![json!({ "l": entries }), J::Null]));
            match h.readdir() {
                Ok(got) if valid => {
                    let want: Vec<Vec<u8>> = names.into_iter().map(|(n, _)| n).collect();
                    assert_eq!(got, want, "readdir returned other names");
                }
                Ok(got) => panic!("names with NUL were accepted: {got:?}"),
                Err(e) => assert!(!valid && e == libc::EINVAL, "readdir failed with errno {e}"),
            }
        }
        Program::Error { fop, op_errno, values } => {
            let values: Vec<J> = values.iter().map(val_json).collect();
            let kind = match fop {
                RawFop::Getxattr => "getxattr",
                RawFop::Fstat => "fstat",
                RawFop::Readv => "readv",
                RawFop::Readdir => "readdir",
            };
            h.send(&program(kind, -1, *op_errno, values));
            let failed = match fop {
                RawFop::Getxattr => h.getxattr().is_err(),
                RawFop::Fstat => h.fstat().is_err(),
                RawFop::Readv => h.pread().is_err(),
                // An error at the first readdir ends the listing; gfapi may
                // then report it or an empty listing.
                RawFop::Readdir => h.readdir().map_or(true, |names| names.is_empty()),
            };
            // GlusterFS's clients return -op_errno: an errno of 0 or below
            // passed up reads as a success (0) or a size (getxattr
            // "returned" 458753 bytes for -458753, found by this target);
            // the host must refuse it.
            assert!(failed, "an error reply (errno {op_errno}) reached the client as a success: {fop:?}");
        }
        Program::Wind { name, xdata } => {
            let mut p = program("getxattr", 0, 0, vec![val_json(name), val_json(xdata)]);
            p["wind"] = json!(true);
            h.send(&p);
            let _ = h.getxattr(); // whatever posix answers; it must answer
        }
    }
    h.check_alive();
}

fuzz_target!(|p: Program| {
    let harness = HARNESS.get_or_init(|| Mutex::new(start()));
    let mut h = harness.lock().unwrap_or_else(|e| e.into_inner());
    run(&mut h, &p);
});
