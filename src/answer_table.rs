//! Answers the host gives without Python: `glupy.AnswerTable`.
//!
//! A translator hands the host simple, bounded decisions ("a lookup of
//! this name in this directory fails ENOENT for the next 60 s"), and the
//! host applies them in the fop entry, before and without the GIL. Python
//! keeps them current (add, drop, clear); the host drops them itself when
//! they expire and when the table is full (oldest first); in entry and gfid
//! tables also on an upcall for the directory (or gfid), and in entry
//! tables when a fop that can make a name exist (create, mknod, mkdir,
//! symlink, link, rename, put) passes through this translator. Name tables
//! hold rules ("refuse this name anywhere"): only Python changes them.
//!
//! A table answers one fop, keyed by one of:
//! - `entry`: (parent gfid, name) of the fop's first loc;
//! - `name`: the name of the fop's first loc, in any directory;
//! - `gfid`: the gfid of the fop's first loc or fd.
//!
//! Staleness: every directory (entry tables) or gfid (gfid tables) has a
//! generation, moved on by each invalidation, which also removes the
//! entries it names (one name, or the whole directory). An `add` given a
//! `token` (the generation seen when the fop started) is refused if it
//! moved on since: a lookup that was under way while a create ran can
//! never cache the name as missing. Entries and generations of one
//! directory live in one shard, under one lock, so an invalidation that
//! returned is seen by every later hit and `add`.

use crate::ffi;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
/// Directories (or gfids) whose generation is remembered; older ones fold
/// into a floor (which only makes tokens from before them refused).
const GENERATIONS_KEPT: usize = 65536;
/// Longest name a key holds (NAME_MAX).
const NAME_MAX: usize = 255;
const NULL_GFID: [u8; 16] = [0; 16];
/// The longest an answer is kept (about 136 years, so "for good"): a
/// longer `ttl` is held as this, not turned into a time that overflows.
const LONGEST_TTL: Duration = Duration::from_secs(u32::MAX as u64);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyKind {
    Entry,
    Name,
    Gfid,
}

impl KeyKind {
    fn parse(s: &str) -> PyResult<Self> {
        match s {
            "entry" => Ok(KeyKind::Entry),
            "name" => Ok(KeyKind::Name),
            "gfid" => Ok(KeyKind::Gfid),
            other => Err(PyValueError::new_err(format!(
                "key must be \"entry\" (parent gfid, name), \"name\" or \"gfid\", not {other:?}"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            KeyKind::Entry => "entry",
            KeyKind::Name => "name",
            KeyKind::Gfid => "gfid",
        }
    }
}

struct Entry {
    expires: Instant,
    errno: i32,
    /// When it was added, in `Table::order`.
    seq: u64,
}

type Shard = HashMap<Box<[u8]>, Entry>;

#[derive(Default)]
struct Generations {
    of: HashMap<[u8; 16], u64>,
    floor: u64,
    next: u64,
}

impl Generations {
    fn get(&self, scope: &[u8; 16]) -> u64 {
        self.of.get(scope).copied().unwrap_or(self.floor)
    }

    /// Moves scope's generation on: tokens handed out for it are refused.
    fn bump(&mut self, scope: [u8; 16]) {
        self.next = self.next.max(self.floor) + 1;
        if self.of.len() >= GENERATIONS_KEPT && !self.of.contains_key(&scope) {
            // Forget them all at once: every one is below `next`, so a
            // token from before is refused for every scope.
            self.of.clear();
            self.floor = self.next;
        }
        self.of.insert(scope, self.next);
    }

    fn bump_all(&mut self) {
        self.next = self.next.max(self.floor) + 1;
        self.of.clear();
        self.floor = self.next;
    }
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    added: AtomicU64,
    refused: AtomicU64,
    expired: AtomicU64,
    evicted: AtomicU64,
    invalidated: AtomicU64,
}

/// One table of decided answers for one fop of one translator. Entries
/// are spread over shards by key (hits take one shard's lock); the
/// generations and the order of adding are one structure each, taken by
/// adds and invalidations only. Lock order: a shard, then `generations`;
/// `order`, then a shard.
pub struct Table {
    pub fop: usize,
    kind: KeyKind,
    limit: AtomicUsize,
    shards: Vec<Mutex<Shard>>,
    generations: Mutex<Generations>,
    order: Mutex<VecDeque<(Box<[u8]>, u64)>>,
    next_seq: AtomicU64,
    entries: AtomicUsize,
    counters: Counters,
}

/// A key built on the stack in the fop entry (no allocation for a hit).
pub struct KeyBuf {
    bytes: [u8; 16 + NAME_MAX],
    len: usize,
    scope: [u8; 16],
}

impl KeyBuf {
    fn new(scope: [u8; 16], name: &[u8]) -> Option<KeyBuf> {
        if name.len() > NAME_MAX {
            return None;
        }
        let mut k = KeyBuf {
            bytes: [0; 16 + NAME_MAX],
            len: 16 + name.len(),
            scope,
        };
        k.bytes[..16].copy_from_slice(&scope);
        k.bytes[16..k.len].copy_from_slice(name);
        Some(k)
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Table {
    pub fn new(fop: usize, kind: KeyKind, limit: usize) -> Table {
        Table {
            fop,
            kind,
            limit: AtomicUsize::new(limit),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            generations: Mutex::new(Generations::default()),
            order: Mutex::new(VecDeque::new()),
            next_seq: AtomicU64::new(0),
            entries: AtomicUsize::new(0),
            counters: Counters::default(),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        self.kind.as_str()
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// A new bound; entries beyond it go, oldest first.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
        self.evict();
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// The key of (scope, name) for this table's kind.
    fn key(&self, scope: [u8; 16], name: &[u8]) -> Option<KeyBuf> {
        match self.kind {
            KeyKind::Entry if scope != NULL_GFID && !name.is_empty() => KeyBuf::new(scope, name),
            KeyKind::Name if !name.is_empty() => KeyBuf::new(NULL_GFID, name),
            KeyKind::Gfid if scope != NULL_GFID => KeyBuf::new(scope, b""),
            _ => None,
        }
    }

    fn removed(&self, n: usize, counter: &AtomicU64) {
        if n > 0 {
            self.entries.fetch_sub(n, Ordering::Relaxed);
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// The errno to answer the fop with, if decided and current.
    pub fn answer(&self, scope: [u8; 16], name: &[u8]) -> Option<i32> {
        let found = self.key(scope, name).and_then(|key| {
            let mut shard = lock(self.shard(key.as_slice()));
            let e = shard.get(key.as_slice())?;
            if e.expires > Instant::now() {
                return Some(e.errno);
            }
            shard.remove(key.as_slice());
            drop(shard);
            self.removed(1, &self.counters.expired);
            None
        });
        let counter = if found.is_some() {
            &self.counters.hits
        } else {
            &self.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The generation of a scope now: pass it to `add` to refuse an entry
    /// whose scope changed meanwhile.
    pub fn token(&self, scope: [u8; 16]) -> u64 {
        // A name table has one scope: any directory.
        let scope = if self.kind == KeyKind::Name {
            NULL_GFID
        } else {
            scope
        };
        lock(&self.generations).get(&scope)
    }

    /// Records an answer; false if refused (the scope changed since
    /// `token`, or the key is not one this table can hold).
    pub fn add(
        &self,
        scope: [u8; 16],
        name: &[u8],
        errno: i32,
        ttl: Duration,
        token: Option<u64>,
    ) -> bool {
        let Some(key) = self.key(scope, name) else {
            return false;
        };
        if ttl.is_zero() || self.limit() == 0 {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let boxed: Box<[u8]> = key.as_slice().into();
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        {
            let mut shard = lock(self.shard(&boxed));
            // Checked under the key's shard lock, which an invalidation of
            // this key also takes: no add from before it can land after it.
            let current = lock(&self.generations).get(&key.scope);
            if token.is_some_and(|t| t != current) {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            // LONGEST_TTL from any instant of a running system fits.
            let Some(expires) = Instant::now().checked_add(ttl.min(LONGEST_TTL)) else {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            };
            let entry = Entry {
                expires,
                errno,
                seq,
            };
            if shard.insert(boxed.clone(), entry).is_none() {
                self.entries.fetch_add(1, Ordering::Relaxed);
            }
        }
        lock(&self.order).push_back((boxed, seq));
        self.counters.added.fetch_add(1, Ordering::Relaxed);
        self.evict();
        true
    }

    /// Keeps the table within its limit: oldest added first.
    fn evict(&self) {
        let limit = self.limit();
        let mut order = lock(&self.order);
        while self.entries.load(Ordering::Relaxed) > limit {
            let Some((key, seq)) = order.pop_front() else {
                break;
            };
            let mut shard = lock(self.shard(&key));
            // A key added again since has a later place in `order`; one
            // removed since has none.
            if shard.get(&key).is_some_and(|e| e.seq == seq) {
                shard.remove(&key);
                drop(shard);
                self.removed(1, &self.counters.evicted);
            }
        }
        // Places of keys removed or added again since pile up (a lookup
        // cached, then its name created, over and over): drop them, keeping
        // every live entry in its place.
        if order.len() > 2 * self.entries.load(Ordering::Relaxed) + 64 {
            order.retain(|(key, seq)| {
                lock(self.shard(key))
                    .get(key)
                    .is_some_and(|e| e.seq == *seq)
            });
        }
    }

    /// Forgets (scope, name), or everything under scope when `name` is
    /// None (a directory's names, or a gfid), and refuses `add`s whose
    /// token predates this.
    pub fn invalidate(&self, scope: [u8; 16], name: Option<&[u8]>) {
        if let Some(key) = name.and_then(|n| self.key(scope, n)) {
            let mut shard = lock(self.shard(key.as_slice()));
            lock(&self.generations).bump(key.scope);
            let gone = shard.remove(key.as_slice()).is_some() as usize;
            drop(shard);
            self.removed(gone, &self.counters.invalidated);
            return;
        }
        if name.is_some() || scope == NULL_GFID {
            return; // no key this table can hold
        }
        lock(&self.generations).bump(scope);
        for shard in &self.shards {
            let mut shard = lock(shard);
            let before = shard.len();
            shard.retain(|k, _| k[..16] != scope);
            let gone = before - shard.len();
            drop(shard);
            self.removed(gone, &self.counters.invalidated);
        }
    }

    /// Forgets everything; tokens handed out so far are refused.
    pub fn clear(&self) {
        lock(&self.generations).bump_all();
        for shard in &self.shards {
            let mut shard = lock(shard);
            let gone = shard.len();
            shard.clear();
            drop(shard);
            self.removed(gone, &self.counters.invalidated);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// Counters, for the statedump and `stats()`.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("entries", self.len() as u64),
            ("limit", self.limit() as u64),
            ("hits", n(&c.hits)),
            ("misses", n(&c.misses)),
            ("added", n(&c.added)),
            ("refused", n(&c.refused)),
            ("expired", n(&c.expired)),
            ("evicted", n(&c.evicted)),
            ("invalidated", n(&c.invalidated)),
        ]
    }
}

/// A translator's tables: by fop (for the fop entry), and the entry-keyed
/// ones (which name-making fops and upcalls invalidate).
pub struct AnswerTables {
    pub by_fop: Vec<Option<Arc<Table>>>,
    pub entry: Vec<Arc<Table>>,
    pub all: Vec<Arc<Table>>,
}

impl AnswerTables {
    pub fn new(all: Vec<Arc<Table>>) -> AnswerTables {
        let mut by_fop: Vec<Option<Arc<Table>>> =
            (0..crate::fops::FOPS.len()).map(|_| None).collect();
        for t in &all {
            by_fop[t.fop] = Some(Arc::clone(t));
        }
        AnswerTables {
            by_fop,
            entry: all
                .iter()
                .filter(|t| t.kind == KeyKind::Entry)
                .cloned()
                .collect(),
            all,
        }
    }

    /// In the fop entry: the errno a table decided for this request.
    ///
    /// # Safety
    /// `args` must hold the fop's arguments, live for the call.
    pub unsafe fn decided(&self, fop: usize, args: *const ffi::glupy_slot_t) -> Option<i32> {
        let table = self.by_fop[fop].as_ref()?;
        // SAFETY: by contract.
        let (scope, name) = unsafe { key_args(fop, args, table.kind, ArgPick::First)? };
        table.answer(scope, name)
    }

    /// In the fop entry of a fop that can make a name exist: its target
    /// is no longer known missing, and lookups under way are fenced. The
    /// target is returned, to be forgotten again when the reply comes back
    /// (`made_name`): a lookup that started while the fop was on its way
    /// down may have been answered ENOENT before the name existed.
    ///
    /// # Safety
    /// As for `decided`.
    pub unsafe fn making_name(
        &self,
        fop: usize,
        args: *const ffi::glupy_slot_t,
    ) -> Option<MadeName> {
        // SAFETY: by contract.
        let made = unsafe { self.made_by(fop, args) }?;
        self.made_name(&made);
        Some(made)
    }

    /// The name a fop with these arguments makes, if any entry table may
    /// hold it (nothing is forgotten yet).
    ///
    /// # Safety
    /// As for `decided`.
    pub unsafe fn made_by(&self, fop: usize, args: *const ffi::glupy_slot_t) -> Option<MadeName> {
        if self.entry.is_empty() || !makes_names(fop) {
            return None;
        }
        // SAFETY: by contract.
        let (scope, name) = unsafe { key_args(fop, args, KeyKind::Entry, ArgPick::Last) }?;
        Some(MadeName {
            scope,
            name: name.into(),
        })
    }

    /// Forgets a name a fop makes (on its way down, and with its reply).
    pub fn made_name(&self, made: &MadeName) {
        for t in &self.entry {
            t.invalidate(made.scope, Some(&made.name));
        }
    }

    /// An upcall says `gfid` (a directory or a file) changed.
    pub fn changed(&self, gfid: [u8; 16]) {
        for t in &self.all {
            if t.kind != KeyKind::Name {
                t.invalidate(gfid, None);
            }
        }
    }
}

/// The target of a fop that can make a name exist.
#[derive(PartialEq, Eq)]
pub struct MadeName {
    scope: [u8; 16],
    name: Box<[u8]>,
}

/// Fops that can make a name exist in a directory.
pub fn makes_names(fop: usize) -> bool {
    matches!(
        crate::fops::FOPS[fop].name.as_str(),
        "create" | "mknod" | "mkdir" | "symlink" | "link" | "rename" | "put"
    )
}

#[derive(Clone, Copy)]
enum ArgPick {
    First,
    /// The last loc: the target of link and rename.
    Last,
}

/// (scope, name) from the fop's first (or last) loc, or its first fd.
///
/// # Safety
/// `args` must hold the fop's arguments, live for the call.
unsafe fn key_args(
    fop: usize,
    args: *const ffi::glupy_slot_t,
    kind: KeyKind,
    pick: ArgPick,
) -> Option<([u8; 16], &'static [u8])> {
    use crate::fop_spec::Ty;
    let specs = &crate::fops::FOPS[fop].args;
    let locs = specs
        .iter()
        .enumerate()
        .filter(|(_, a)| a.ty == Ty::Loc)
        .map(|(i, _)| i);
    let loc_at = match pick {
        ArgPick::First => locs.clone().next(),
        ArgPick::Last => locs.clone().next_back(),
    };
    let fd_at = specs.iter().position(|a| a.ty == Ty::Fd);
    // SAFETY: by contract; build.rs packs pointers in the p member.
    unsafe {
        let slot = |i: usize| (*args.add(i)).p;
        let loc = loc_at.map_or(std::ptr::null(), |i| slot(i) as *const ffi::loc_t);
        let fd = fd_at.map_or(std::ptr::null(), |i| slot(i) as *const ffi::fd_t);
        scope_of(kind, loc, fd)
    }
}

/// The key material of a fop's arguments: (scope, name) from its first
/// loc (or, for gfid tables, fd).
///
/// # Safety
/// `loc` and `fd` must be NULL or live for the call.
unsafe fn scope_of(
    kind: KeyKind,
    loc: *const ffi::loc_t,
    fd: *const ffi::fd_t,
) -> Option<([u8; 16], &'static [u8])> {
    // SAFETY: by contract; the returned name borrows the loc's string,
    // which lives for the call (the 'static is the caller's promise not
    // to keep it).
    unsafe {
        if !loc.is_null() {
            let l = &*loc;
            let name: &'static [u8] = if l.name.is_null() {
                b""
            } else {
                std::ffi::CStr::from_ptr(l.name).to_bytes()
            };
            let scope = match kind {
                KeyKind::Entry | KeyKind::Name => {
                    if l.pargfid != NULL_GFID || l.parent.is_null() {
                        l.pargfid
                    } else {
                        (*l.parent).gfid
                    }
                }
                KeyKind::Gfid => {
                    if l.gfid != NULL_GFID || l.inode.is_null() {
                        l.gfid
                    } else {
                        (*l.inode).gfid
                    }
                }
            };
            return Some((scope, name));
        }
        if kind == KeyKind::Gfid && !fd.is_null() && !(*fd).inode.is_null() {
            return Some(((*(*fd).inode).gfid, b""));
        }
        None
    }
}

/// `glupy.AnswerTable`: made with `Translator.answer_table(fop, key, limit)`
/// while the translator is created (in `__init__`).
#[pyclass(frozen, module = "glupy", name = "AnswerTable")]
pub struct AnswerTable {
    pub(crate) table: Arc<Table>,
}

fn gfid_of(v: &[u8], what: &str) -> PyResult<[u8; 16]> {
    v.try_into().map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a 16-byte gfid, got {} bytes",
            v.len()
        ))
    })
}

fn name_bytes(name: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = name.extract::<Vec<u8>>() {
        return Ok(b);
    }
    use std::os::unix::ffi::OsStringExt;
    Ok(name.extract::<std::ffi::OsString>()?.into_vec())
}

impl AnswerTable {
    /// (scope, name) from Python's key arguments for this table's kind.
    fn parse_key(&self, key: &[Bound<'_, PyAny>], what: &str) -> PyResult<([u8; 16], Vec<u8>)> {
        let t = &self.table;
        match (t.kind, key) {
            (KeyKind::Entry, [parent, name]) => Ok((
                gfid_of(&parent.extract::<Vec<u8>>()?, "parent")?,
                name_bytes(name)?,
            )),
            (KeyKind::Name, [name]) => Ok((NULL_GFID, name_bytes(name)?)),
            (KeyKind::Gfid, [gfid]) => {
                Ok((gfid_of(&gfid.extract::<Vec<u8>>()?, "gfid")?, Vec::new()))
            }
            (kind, _) => Err(PyValueError::new_err(format!(
                "{what}: a {} table is keyed by {}",
                kind.as_str(),
                match kind {
                    KeyKind::Entry => "(parent gfid, name)",
                    KeyKind::Name => "(name,)",
                    KeyKind::Gfid => "(gfid,)",
                }
            ))),
        }
    }
}

/// A checked `ttl` (finite, 0 or more) as a Duration, at most LONGEST_TTL
/// (`from_secs_f64` panics past u64::MAX seconds).
fn ttl_of(seconds: f64) -> Duration {
    if seconds >= LONGEST_TTL.as_secs_f64() {
        return LONGEST_TTL;
    }
    Duration::from_secs_f64(seconds)
}

#[pymethods]
impl AnswerTable {
    /// Answer the fop for this key with op_ret -1 and `errno` for `ttl`
    /// seconds. With `token` (from `token()` when the fop started), refused
    /// if the key's directory (or gfid) changed since. True if added.
    #[pyo3(signature = (*key, errno, ttl, token=None))]
    fn add(
        &self,
        key: Vec<Bound<'_, PyAny>>,
        errno: i32,
        ttl: f64,
        token: Option<u64>,
    ) -> PyResult<bool> {
        if errno <= 0 {
            return Err(PyValueError::new_err(
                "an answer needs a positive errno, such as errno.ENOENT",
            ));
        }
        if !(ttl.is_finite() && ttl >= 0.0) {
            return Err(PyValueError::new_err(
                "ttl is a number of seconds, 0 or more",
            ));
        }
        let (scope, name) = self.parse_key(&key, "add")?;
        Ok(self.table.add(scope, &name, errno, ttl_of(ttl), token))
    }

    /// The generation of a directory (entry tables) or gfid now.
    fn token(&self, scope: &[u8]) -> PyResult<u64> {
        Ok(self.table.token(gfid_of(scope, "token's argument")?))
    }

    /// Forgets one key; for an entry table, `drop(parent)` forgets the
    /// whole directory. Later `add`s with an older token are refused.
    #[pyo3(signature = (*key))]
    fn drop(&self, key: Vec<Bound<'_, PyAny>>) -> PyResult<()> {
        if self.table.kind == KeyKind::Entry && key.len() == 1 {
            let parent = gfid_of(&key[0].extract::<Vec<u8>>()?, "parent")?;
            self.table.invalidate(parent, None);
            return Ok(());
        }
        let (scope, name) = self.parse_key(&key, "drop")?;
        self.table.invalidate(scope, Some(&name));
        Ok(())
    }

    /// Forgets everything.
    fn clear(&self) {
        self.table.clear();
    }

    /// The errno answered for this key now, or None (counts as a hit or a miss).
    #[pyo3(signature = (*key))]
    fn get(&self, key: Vec<Bound<'_, PyAny>>) -> PyResult<Option<i32>> {
        let (scope, name) = self.parse_key(&key, "get")?;
        Ok(self.table.answer(scope, &name))
    }

    fn __len__(&self) -> usize {
        self.table.len()
    }

    /// The counters (entries, hits, misses, added, refused, expired,
    /// evicted, invalidated).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.table.counters() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// The most entries held (oldest added go first); settable.
    #[getter]
    fn get_limit(&self) -> usize {
        self.table.limit()
    }

    #[setter]
    fn set_limit(&self, limit: usize) {
        self.table.set_limit(limit);
    }

    #[getter]
    fn fop(&self) -> &'static str {
        crate::fops::FOPS[self.table.fop].name.as_str()
    }

    #[getter]
    fn key(&self) -> &'static str {
        self.table.kind.as_str()
    }

    fn __repr__(&self) -> String {
        format!(
            "<glupy.AnswerTable {} by {} ({} entries)>",
            self.fop(),
            self.key(),
            self.table.len()
        )
    }
}

/// Tables made while a translator is being created, collected by the host
/// when it installs the instance.
#[derive(Default)]
pub struct Pending {
    tables: Mutex<Option<Vec<Arc<Table>>>>,
}

impl Pending {
    pub fn open() -> Pending {
        Pending {
            tables: Mutex::new(Some(Vec::new())),
        }
    }

    pub fn create(&self, fop: &str, key: &str, limit: usize) -> PyResult<AnswerTable> {
        let idx = crate::fops::index_of(fop)
            .ok_or_else(|| PyValueError::new_err(format!("no fop named {fop:?}")))?;
        let kind = KeyKind::parse(key)?;
        let spec = &crate::fops::FOPS[idx];
        let has_loc = spec.args.iter().any(|a| a.ty == crate::fop_spec::Ty::Loc);
        let has_fd = spec.args.iter().any(|a| a.ty == crate::fop_spec::Ty::Fd);
        if !(has_loc || (kind == KeyKind::Gfid && has_fd)) {
            return Err(PyValueError::new_err(format!(
                "{fop} has no loc{} to key a table by",
                if kind == KeyKind::Gfid { " or fd" } else { "" }
            )));
        }
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tables) = tables.as_mut() else {
            return Err(PyRuntimeError::new_err(
                "answer tables are made while the translator is created (in __init__)",
            ));
        };
        if tables.iter().any(|t| t.fop == idx) {
            return Err(PyValueError::new_err(format!(
                "{fop} has an answer table already"
            )));
        }
        let table = Arc::new(Table::new(idx, kind, limit));
        tables.push(Arc::clone(&table));
        Ok(AnswerTable { table })
    }

    /// The tables made so far; no more can be made after this.
    pub fn close(&self) -> Vec<Arc<Table>> {
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: [u8; 16] = [7; 16];
    const E: [u8; 16] = [9; 16];
    const TTL: Duration = Duration::from_secs(60);

    fn entry_table(limit: usize) -> Table {
        Table::new(0, KeyKind::Entry, limit)
    }

    #[test]
    fn a_ttl_too_long_to_add_to_a_time_is_held_for_good() {
        let t = entry_table(100);
        assert!(t.add(D, b"x", 2, Duration::MAX, None));
        assert_eq!(t.answer(D, b"x"), Some(2));
        for seconds in [1e19, 1e30, f64::MAX] {
            assert_eq!(ttl_of(seconds), LONGEST_TTL);
        }
        assert_eq!(ttl_of(1.5), Duration::from_millis(1500));
    }

    #[test]
    fn an_added_answer_is_given_until_it_expires() {
        let t = entry_table(100);
        assert_eq!(t.answer(D, b"x"), None);
        assert!(t.add(D, b"x", 2, Duration::from_millis(30), None));
        assert_eq!(t.answer(D, b"x"), Some(2));
        assert_eq!(t.answer(E, b"x"), None, "another directory");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(t.answer(D, b"x"), None, "expired");
        assert_eq!(t.len(), 0, "an expired entry is removed when met");
    }

    #[test]
    fn invalidating_a_directory_drops_its_names_and_fences_older_tokens() {
        let t = entry_table(100);
        let token = t.token(D);
        assert!(t.add(D, b"a", 2, TTL, Some(token)));
        assert!(t.add(D, b"b", 2, TTL, Some(token)));
        assert!(t.add(E, b"a", 2, TTL, None));
        t.invalidate(D, Some(b"a"));
        assert_eq!(t.answer(D, b"a"), None);
        assert_eq!(t.answer(D, b"b"), Some(2), "other names stay");
        assert!(
            !t.add(D, b"a", 2, TTL, Some(token)),
            "a token from before is refused"
        );
        assert!(t.add(D, b"a", 2, TTL, Some(t.token(D))));
        assert_eq!(t.answer(D, b"a"), Some(2));
        t.invalidate(D, None);
        assert_eq!(
            (t.answer(D, b"a"), t.answer(D, b"b")),
            (None, None),
            "the whole directory"
        );
        assert_eq!(t.answer(E, b"a"), Some(2), "other directories keep theirs");
    }

    #[test]
    fn the_table_holds_at_most_its_limit_oldest_going_first() {
        let t = entry_table(5);
        for i in 0..20u32 {
            t.add(D, format!("n{i}").as_bytes(), 2, TTL, None);
        }
        assert_eq!(t.len(), 5);
        for i in 15..20u32 {
            assert_eq!(
                t.answer(D, format!("n{i}").as_bytes()),
                Some(2),
                "the newest stay"
            );
        }
        assert_eq!(t.answer(D, b"n14"), None);
        let evicted = t
            .counters()
            .iter()
            .find(|(k, _)| *k == "evicted")
            .unwrap()
            .1;
        assert_eq!(evicted, 15);
        t.add(D, b"n15", 2, TTL, None); // added again: now the newest
        t.add(D, b"x", 2, TTL, None);
        assert_eq!(t.answer(D, b"n15"), Some(2));
        assert_eq!(t.answer(D, b"n16"), None, "the oldest went");
        t.set_limit(2);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn churned_keys_never_push_live_entries_out_below_the_limit() {
        let t = entry_table(1000);
        for i in 0..100u32 {
            t.add(D, format!("live{i}").as_bytes(), 2, TTL, None);
        }
        // A lookup cached, then its name created, many times over.
        for i in 0..500u32 {
            let name = format!("churn{i}");
            t.add(E, name.as_bytes(), 2, TTL, None);
            t.invalidate(E, Some(name.as_bytes()));
        }
        t.add(E, b"last", 2, TTL, None);
        assert_eq!(t.len(), 101);
        assert!((0..100u32).all(|i| t.answer(D, format!("live{i}").as_bytes()) == Some(2)));
        assert!(lock(&t.order).len() <= 2 * 101 + 64);
    }

    #[test]
    fn clear_forgets_everything_and_every_token() {
        let t = entry_table(100);
        let token = t.token(D);
        t.add(D, b"a", 2, TTL, None);
        t.clear();
        assert_eq!(t.answer(D, b"a"), None);
        assert!(!t.add(D, b"a", 2, TTL, Some(token)));
    }

    #[test]
    fn name_and_gfid_tables_key_as_they_say() {
        let names = Table::new(0, KeyKind::Name, 10);
        assert!(names.add(NULL_GFID, b".secret", 13, TTL, None));
        assert_eq!(names.answer(D, b".secret"), Some(13));
        assert_eq!(names.answer(E, b".secret"), Some(13));
        let gfids = Table::new(0, KeyKind::Gfid, 10);
        assert!(gfids.add(D, b"", 5, TTL, None));
        assert_eq!(gfids.answer(D, b"whatever"), Some(5));
        gfids.invalidate(D, None);
        assert_eq!(gfids.answer(D, b""), None);
        assert!(!gfids.add(NULL_GFID, b"", 5, TTL, None), "no gfid, no key");
    }

    /// Lookups that started before a create (tokens taken then) keep
    /// trying to add the name while other threads hit it: once the
    /// create's invalidation returned, no thread is ever answered from it.
    #[test]
    fn no_stale_answer_after_an_invalidation_returns_under_concurrency() {
        let t = Arc::new(entry_table(10_000));
        let stale_token = t.token(D);
        t.add(D, b"x", 2, TTL, Some(stale_token));
        let invalidated = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..6)
            .map(|i| {
                let (t, stop, invalidated) =
                    (Arc::clone(&t), Arc::clone(&stop), Arc::clone(&invalidated));
                std::thread::spawn(move || {
                    let mut stale_hits = 0;
                    while !stop.load(Ordering::Relaxed) {
                        if i % 2 == 0 {
                            t.add(D, b"x", 2, TTL, Some(stale_token));
                        } else {
                            let seen_invalidated = invalidated.load(Ordering::SeqCst);
                            if t.answer(D, b"x").is_some() && seen_invalidated {
                                stale_hits += 1;
                            }
                        }
                    }
                    stale_hits
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        t.invalidate(D, Some(b"x"));
        invalidated.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        let stale: i32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(stale, 0, "answers given after the invalidation returned");
        assert_eq!(t.answer(D, b"x"), None);
    }
}
