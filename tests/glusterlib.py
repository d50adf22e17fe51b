"""Run real GlusterFS 10.3 processes for tests: bricks, gfapi clients, FUSE mounts.

Everything listens on and connects to 127.0.0.1 only.  Processes run in the
foreground (-N) so that we own their pids and can always stop them.

A layer is ``(xlator_type, options)`` or ``(xlator_type, options, volume_name)``,
for example ``("features/glupy", {"module-name": "m", "module-path": "/tmp/m"})``.
Layer lists are given bottom to top.
"""

import ctypes
import ctypes.util
import errno as errno_codes
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import namedtuple
from pathlib import Path

if platform.machine() != "x86_64":
    raise ImportError("glusterlib's ctypes struct layouts are those of x86_64 Linux")

LOCALHOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
DUMP_TIMEOUT = 10.0
# DEFAULT_VAR_RUN_DIRECTORY: default statedump directory and where per-process
# dump options are read from (glusterfsd --print-statedumpdir).
STATEDUMP_OPTIONS_DIR = "/var/run/gluster"

GLUSTERFSD = shutil.which("glusterfsd") or "/usr/sbin/glusterfsd"
GLUSTERFS = shutil.which("glusterfs") or "/usr/sbin/glusterfs"

# gf_loglevel_t (logging.h): NONE=0 EMERG=1 ALERT=2 CRITICAL=3 ERROR=4
# WARNING=5 NOTICE=6 INFO=7 DEBUG=8 TRACE=9.
LOG_LEVELS = {"NONE": 0, "CRITICAL": 3, "ERROR": 4, "WARNING": 5,
              "INFO": 7, "DEBUG": 8, "TRACE": 9}


class GlusterError(RuntimeError):
    """A gluster process did not start, stop or dump as expected."""


# ---------------------------------------------------------------- utilities

def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05):
    """Poll predicate until it is truthy (return its value) or timeout (return None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


def read_text(path, offset=0):
    """The text of path from byte offset on; "" if it does not exist (any more)."""
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            return stream.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def pid_alive(pid):
    """True while pid runs (a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def listening_ports(pid):
    """TCP ports on which process pid has a listening IPv4 socket."""
    inodes = _socket_inodes(pid)
    ports = set()
    # The process's own network namespace (a brick may run in its own).
    for line in read_text(f"/proc/{pid}/net/tcp").splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and inode in inodes:  # 0A is TCP_LISTEN
            ports.add(int(local.split(":")[1], 16))
    return ports


def _socket_inodes(pid):
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except (FileNotFoundError, PermissionError):
        return inodes
    for name in names:
        try:
            target = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def processes_mentioning(text):
    """(pid, cmdline) of live processes whose command line contains text."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        cmdline = read_text(f"/proc/{entry}/cmdline").replace("\0", " ")
        if str(text) in cmdline and pid_alive(int(entry)):
            found.append((int(entry), cmdline.strip()))
    return found


def mounts_under(path):
    """(mountpoint, fstype) of every mount at or below path."""
    prefix = os.path.realpath(path)
    found = []
    for line in read_text("/proc/self/mounts").splitlines():
        fields = line.split()
        mountpoint = fields[1].replace("\\040", " ")
        if mountpoint == prefix or mountpoint.startswith(prefix + "/"):
            found.append((mountpoint, fields[2]))
    return found


def spawn(command, output_file, cwd):
    """Start a gluster program with its stdout/stderr in output_file.

    glusterfs(d) raise their core limit to unlimited and core_pattern is often
    a relative "core": cwd decides where a crash's core file lands.
    """
    with open(output_file, "ab") as output:
        return subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=output, stderr=subprocess.STDOUT)


def terminate(process, timeout=STOP_TIMEOUT):
    """SIGTERM, wait, SIGKILL, reap.  Safe to call on an exited process."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait(timeout)


# --------------------------------------------------------- AddressSanitizer

# Under `make test-asan` (Makefile): the directory where every process the
# tests start writes its AddressSanitizer report (ASAN_OPTIONS log_path, one
# file per pid); None otherwise.
ASAN_REPORTS = os.environ.get("GLUPY_ASAN_REPORTS")
# A report, as opposed to a warning the runtime may also write there.
ASAN_ERROR = re.compile(r"^==\d+==ERROR: AddressSanitizer", re.M)


def asan_reports():
    """{path: text} of the AddressSanitizer reports in ASAN_REPORTS."""
    if not ASAN_REPORTS:
        return {}
    found = {}
    for path in sorted(Path(ASAN_REPORTS).glob("*")):
        text = read_text(path)
        if ASAN_ERROR.search(text):
            found[path] = text
    return found


# ------------------------------------------------------------------ logging

# A line of a gluster log: "[date] E [MSGID: n] [file.c:12:func] 0-domain: text".
LOG_LINE = re.compile(r"^\[[^\]]+\] (?P<level>[TDINWECAM]) ")
SEVERE_LEVELS = "ECAM"  # error, critical, alert, emergency
# A crash dump has no level: gf_print_trace writes "signal received: 11".
CRASH_LINE = re.compile(r"^signal received: \d+")


def severe_log_lines(text, allowed=()):
    """Lines at level E/C/A/M, or crash reports, not matching an allowed regex."""
    allowed = [re.compile(pattern) for pattern in allowed]
    severe = []
    for line in text.splitlines():
        match = LOG_LINE.match(line)
        is_severe = (match and match["level"] in SEVERE_LEVELS) or CRASH_LINE.match(line)
        if is_severe and not any(pattern.search(line) for pattern in allowed):
            severe.append(line)
    return severe


def assert_log_clean(text, allowed=(), what="log"):
    """Fail listing every error/critical line of a gluster log not in allowed."""
    severe = severe_log_lines(text, allowed)
    assert not severe, f"{what} has {len(severe)} error line(s):\n" + "\n".join(severe)


# ----------------------------------------------------------------- volfiles

def normalize_layers(layers, prefix):
    """[(type, options, name)] with a unique volume name for every layer."""
    normalized, used = [], set()
    for layer in layers:
        xlator_type, options = layer[0], dict(layer[1])
        name = layer[2] if len(layer) > 2 else _default_layer_name(prefix, xlator_type, used)
        used.add(name)
        normalized.append((xlator_type, options, name))
    return normalized


def _default_layer_name(prefix, xlator_type, used):
    base = f"{prefix}-{xlator_type.rsplit('/', 1)[-1]}"
    name, index = base, 1
    while name in used:
        index += 1
        name = f"{base}{index}"
    return name


def volume_block(name, xlator_type, options, subvolumes=()):
    lines = [f"volume {name}", f"    type {xlator_type}"]
    for key, value in options.items():
        lines.append(f"    option {key} {_option_value(key, value)}")
    if subvolumes:
        lines.append(f"    subvolumes {' '.join(subvolumes)}")
    lines.append("end-volume")
    return "\n".join(lines) + "\n"


def _option_value(key, value):
    if isinstance(value, bool):
        value = "on" if value else "off"
    value = str(value)
    # The volfile lexer splits on whitespace: such a value would be silently cut.
    if not value or re.search(r"\s", value) or re.search(r"\s", str(key)):
        raise ValueError(f"option {key!r}: value {value!r} is empty or has whitespace")
    return value


def stack_blocks(bottom_name, layers):
    """Volfile text stacking layers above bottom_name; returns (text, top_name)."""
    text, below = "", bottom_name
    for xlator_type, options, name in layers:
        text += "\n" + volume_block(name, xlator_type, options, [below])
        below = name
    return text, below


def client_volfile_text(port, remote_subvolume, layers=(), name="client"):
    """protocol/client to 127.0.0.1:port with optional layers above it."""
    client = volume_block(f"{name}-protocol", "protocol/client", {
        "transport-type": "tcp",
        "remote-host": LOCALHOST,
        "remote-port": port,
        "remote-subvolume": remote_subvolume,
        "transport.address-family": "inet",
    })
    above, _top = stack_blocks(f"{name}-protocol", normalize_layers(layers, name))
    return client + above


def write_client_volfile(path, port, remote_subvolume, layers=(), name="client"):
    path = Path(path)
    path.write_text(client_volfile_text(port, remote_subvolume, layers, name))
    return path


# -------------------------------------------------------------------- brick

class Brick:
    """One glusterfsd: posix -> locks -> layers -> protocol/server on 127.0.0.1.

    All files live in workdir: brick/ (the exported directory), brick.vol,
    brick.log, brick.out (stdout/stderr) and dumps/ (statedumps).
    """

    def __init__(self, workdir, layers=(), name="brick", port=None,
                 log_level="INFO", server_options=None, wrapper=(), posix_options=None):
        self.workdir = Path(workdir)
        # A command glusterfsd runs under (it must exec it, keeping the pid).
        self.wrapper = list(wrapper)
        self.name = name
        self.layers = normalize_layers(layers, name)
        self.port = port
        self._fixed_port = port is not None
        self.log_level = log_level
        self.server_options = dict(server_options or {})
        self.posix_options = dict(posix_options or {})
        self.directory = self.workdir / "brick"
        self.volfile = self.workdir / "brick.vol"
        self.log_file = self.workdir / "brick.log"
        self.output_file = self.workdir / "brick.out"
        self.dump_dir = self.workdir / "dumps"
        self.process = None
        self._log_offset = 0

    # -- names

    @property
    def top(self):
        """The volume right under protocol/server: clients' remote-subvolume."""
        return self.layers[-1][2] if self.layers else f"{self.name}-locks"

    @property
    def layer_names(self):
        return [name for _type, _options, name in self.layers]

    @property
    def pid(self):
        return self.process.pid if self.process else None

    # -- volfiles

    def volfile_text(self):
        posix, locks = f"{self.name}-posix", f"{self.name}-locks"
        text = volume_block(posix, "storage/posix", {"directory": self.directory, **self.posix_options})
        text += "\n" + volume_block(locks, "features/locks", {}, [posix])
        above, top = stack_blocks(locks, self.layers)
        return text + above + "\n" + volume_block(
            f"{self.name}-server", "protocol/server", self._server_options(top), [top])

    def _server_options(self, top):
        options = {
            "transport-type": "tcp",
            "transport.socket.listen-port": self.port,
            "transport.socket.bind-address": LOCALHOST,
            "transport.address-family": "inet",
            f"auth.addr.{top}.allow": "*",
            "auth-path": top,
            # Keeps statedumps of this brick in its own directory.
            "statedump-path": self.dump_dir,
        }
        options.update(self.server_options)
        return options

    def client_volfile(self, path=None, layers=(), name=None):
        """Write a client volfile for this brick (layers above protocol/client)."""
        name = name or f"{self.name}-client"
        path = Path(path) if path else self.workdir / f"{name}.vol"
        return write_client_volfile(path, self.port, self.top, layers, name)

    # -- lifecycle

    def start(self, timeout=START_TIMEOUT):
        """Start glusterfsd and wait until its graph is up and it listens."""
        for _attempt in range(3):
            self._spawn()
            if self._wait_ready(timeout):
                return self
            if self._lost_port_race():
                self.stop()
                # Keep the failed run's log apart: its errors are not the test's.
                self.log_file.rename(self.log_file.with_suffix(f".port-{self.port}.log"))
                self.port = None
                continue
            break
        log = self.describe()
        self.stop()
        raise GlusterError(f"brick {self.name} did not start within {timeout}s\n{log}")

    def start_expect_failure(self, timeout=START_TIMEOUT):
        """Start glusterfsd expecting init to fail; return the log once it exits."""
        self._spawn()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log = self.describe()
            self.stop()
            raise GlusterError(f"brick {self.name} still runs after {timeout}s\n{log}")
        return self.log_text()

    def stop(self, timeout=STOP_TIMEOUT):
        if self.process:
            terminate(self.process, timeout)

    def alive(self):
        return bool(self.process) and self.process.poll() is None

    def _spawn(self):
        if self.alive():
            raise GlusterError(f"brick {self.name} is already running")
        if not self._fixed_port and self.port is None:
            self.port = free_port()
        for directory in (self.workdir, self.directory, self.dump_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.volfile.write_text(self.volfile_text())
        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        command = [*self.wrapper, GLUSTERFSD, "-N", "-f", str(self.volfile), "-l", str(self.log_file),
                   "-L", self.log_level, "--brick-name", str(self.directory),
                   # Without it the server warns that volfile-id is mandatory.
                   "--volfile-id", self.name]
        self.process = spawn(command, self.output_file, cwd=self.workdir)

    def _wait_ready(self, timeout):
        # glusterfsd listens before its graph is initialised; "Final graph" is
        # logged only after init and PARENT_UP succeeded.
        def ready_or_dead():
            if not self.alive():
                return "dead"
            graph_done = GRAPH_LOGGED.search(self._current_log())
            return graph_done and self.port in listening_ports(self.pid) and "ready"
        return wait_until(ready_or_dead, timeout) == "ready"

    def _lost_port_race(self):
        return not self._fixed_port and "Address already in use" in self._current_log()

    # -- observation

    def log_text(self):
        return read_text(self.log_file)

    def _current_log(self):
        """The log written by the current run of the process."""
        return read_text(self.log_file, self._log_offset)

    def describe(self):
        state = "running" if self.alive() else f"exit status {self.process.returncode}"
        return (f"glusterfsd pid {self.pid} ({state})\n--- {self.log_file} (tail)\n"
                f"{tail(self.log_text())}\n--- {self.output_file}\n"
                f"{tail(read_text(self.output_file), 10)}")

    def statedump(self, timeout=DUMP_TIMEOUT):
        """SIGUSR1 the brick and return the text of the new dump.

        GlusterFS 10.3 divides by zero (SIGFPE, the brick dies) when dumping a
        process that has never freed a dict: connect a client first.
        """
        return take_statedump(self.process, self.dump_dir, timeout, self.describe)


GRAPH_LOGGED = re.compile(r"^Final graph:\n\+-+\+\n.*?^\+-+\+$", re.M | re.S)


def take_statedump(process, dump_dir, timeout, describe):
    """Signal process and wait for the dump it renames into dump_dir."""
    # The dump is written to dump_dir/dumpXXXXXX and renamed to
    # <brick-name>.<pid>.dump.<seconds> when complete: a same-second dump
    # replaces the older file, so compare inodes, not just names.
    pattern = f"*.{process.pid}.dump.*"
    before = {path: path.stat().st_ino for path in dump_dir.glob(pattern)}
    process.send_signal(signal.SIGUSR1)

    def new_dump():
        if process.poll() is not None:
            return "dead"
        for path in dump_dir.glob(pattern):
            try:
                if before.get(path) != path.stat().st_ino:
                    return path
            except FileNotFoundError:
                continue
        return None

    found = wait_until(new_dump, timeout)
    if found == "dead":
        raise GlusterError(f"statedump: pid {process.pid} died{_sigfpe_hint(process)}\n"
                           f"{describe()}")
    if found is None:
        raise GlusterError(f"statedump: pid {process.pid} wrote no dump in {dump_dir} "
                           f"within {timeout}s\n{describe()}")
    text = found.read_text(errors="replace")
    if "DUMP-END-TIME" not in text:
        raise GlusterError(f"statedump {found} is incomplete")
    return text


def statedump_sections(text):
    """{section: {key: value}} of a statedump ("[section]" then "key=value" lines);
    a repeated section name merges into one dict."""
    sections, current = {}, None
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            current[key] = value
    return sections


def _sigfpe_hint(process):
    if process.returncode != -signal.SIGFPE:
        return ""
    return (" of SIGFPE: glusterfs 10.3 divides by zero in gf_proc_dump_dict_info"
            " when no dict was ever freed; connect a client before dumping")


# --------------------------------------------------------------- FUSE mount

class FuseMount:
    """`glusterfs -N -f VOLFILE MOUNTPOINT`: a FUSE client owned by pid."""

    def __init__(self, volfile, mountpoint, log_file=None, log_level="INFO",
                 extra_args=()):
        self.volfile = Path(volfile)
        self.mountpoint = Path(mountpoint)
        # Resolved now: resolving a hung FUSE mountpoint later could block.
        self._real_mountpoint = os.path.join(os.path.realpath(self.mountpoint.parent),
                                             self.mountpoint.name)
        self.log_file = Path(log_file) if log_file else self.mountpoint.with_suffix(".log")
        self.output_file = self.log_file.with_suffix(".out")
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.process = None

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def mount(self, timeout=START_TIMEOUT):
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        command = [GLUSTERFS, "-N", "-f", str(self.volfile), "-l", str(self.log_file),
                   "-L", self.log_level, *self.extra_args, str(self.mountpoint)]
        self.process = spawn(command, self.output_file, cwd=self.log_file.parent)
        if wait_until(self._usable_or_dead, timeout) != "usable":
            log = self.describe()
            self.unmount()
            raise GlusterError(f"FUSE mount {self.mountpoint} not usable in {timeout}s\n{log}")
        return self

    def _usable_or_dead(self):
        if not self.alive():
            return "dead"
        if not self.mounted():
            return None
        # A client whose graph fails unmounts on its way out: a stat that
        # lands after that sees the bare directory. Only an answer from the
        # FUSE file system (another device than the parent's) counts.
        answer = stat_with_timeout(self.mountpoint, 2.0)
        parent = os.stat(self.mountpoint.parent)
        return answer and answer.st_dev != parent.st_dev and self.alive() and "usable"

    def mounted(self):
        return (self._real_mountpoint, "fuse.glusterfs") in mounts_under(self.mountpoint.parent)

    def alive(self):
        return bool(self.process) and self.process.poll() is None

    def unmount(self, timeout=STOP_TIMEOUT):
        """Unmount (lazily if busy) and make sure the glusterfs process is gone."""
        if self.mounted():
            if not _run_quietly(["umount", str(self.mountpoint)], timeout):
                _run_quietly(["umount", "-l", str(self.mountpoint)], timeout)
        if self.process:
            # glusterfs exits by itself once unmounted; the signal is a fallback.
            try:
                self.process.wait(timeout / 2)
            except subprocess.TimeoutExpired:
                pass
            terminate(self.process, timeout)
        if self.mounted():
            raise GlusterError(f"{self.mountpoint} is still mounted")

    def log_text(self):
        return read_text(self.log_file)

    def describe(self):
        state = "running" if self.alive() else f"exit status {self.process.returncode}"
        return (f"glusterfs pid {self.pid} ({state})\n--- {self.log_file} (tail)\n"
                f"{tail(self.log_text())}\n--- {self.output_file}\n"
                f"{tail(read_text(self.output_file), 10)}")

    @property
    def dump_dir(self):
        return self.log_file.parent / f"{self.mountpoint.name}-dumps"

    def statedump(self, timeout=DUMP_TIMEOUT):
        """SIGUSR1 the client and return the text of the new dump (in dump_dir)."""
        # Only protocol/server has a statedump-path option; other processes
        # read a path from /var/run/gluster/glusterdump.<pid>.options.
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        options = Path(STATEDUMP_OPTIONS_DIR, f"glusterdump.{self.pid}.options")
        options.parent.mkdir(parents=True, exist_ok=True)
        options.write_text(f"path={self.dump_dir}\nall=yes\n")
        try:
            return take_statedump(self.process, self.dump_dir, timeout, self.describe)
        finally:
            options.unlink(missing_ok=True)


def stat_with_timeout(path, timeout):
    """os.stat in a thread: a hung FUSE mount must not hang the test process."""
    result = []

    def do_stat():
        try:
            result.append(os.stat(path))
        except OSError:
            pass

    thread = threading.Thread(target=do_stat, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else None


def _run_quietly(command, timeout):
    try:
        return subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# -------------------------------------------------------------------- gfapi

SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 1, 2, 3, 4
F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7  # x86_64: the 64-bit variants have these values
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
XATTR_CREATE, XATTR_REPLACE = 1, 2


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_long)]


class Stat(ctypes.Structure):
    _fields_ = [("st_dev", ctypes.c_uint64), ("st_ino", ctypes.c_uint64),
                ("st_nlink", ctypes.c_uint64), ("st_mode", ctypes.c_uint32),
                ("st_uid", ctypes.c_uint32), ("st_gid", ctypes.c_uint32),
                ("_pad0", ctypes.c_int), ("st_rdev", ctypes.c_uint64),
                ("st_size", ctypes.c_int64), ("st_blksize", ctypes.c_int64),
                ("st_blocks", ctypes.c_int64), ("st_atim", Timespec),
                ("st_mtim", Timespec), ("st_ctim", Timespec),
                ("_reserved", ctypes.c_int64 * 3)]


class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


class Statvfs(ctypes.Structure):
    _fields_ = [("f_bsize", ctypes.c_ulong), ("f_frsize", ctypes.c_ulong),
                ("f_blocks", ctypes.c_uint64), ("f_bfree", ctypes.c_uint64),
                ("f_bavail", ctypes.c_uint64), ("f_files", ctypes.c_uint64),
                ("f_ffree", ctypes.c_uint64), ("f_favail", ctypes.c_uint64),
                ("f_fsid", ctypes.c_ulong), ("f_flag", ctypes.c_ulong),
                ("f_namemax", ctypes.c_ulong), ("_spare", ctypes.c_int * 6)]


class Flock(ctypes.Structure):
    _fields_ = [("l_type", ctypes.c_short), ("l_whence", ctypes.c_short),
                ("l_start", ctypes.c_int64), ("l_len", ctypes.c_int64),
                ("l_pid", ctypes.c_int32)]


for _struct, _size in ((Stat, 144), (Dirent, 280), (Statvfs, 112), (Flock, 32)):
    assert ctypes.sizeof(_struct) == _size, f"{_struct.__name__} layout is wrong"

LockInfo = namedtuple("LockInfo", "type whence start length pid")


def to_stat_result(st):
    def seconds(ts):
        return ts.tv_sec + ts.tv_nsec / 1e9

    def nanoseconds(ts):
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec

    fields = (st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid,
              st.st_size, st.st_atim.tv_sec, st.st_mtim.tv_sec, st.st_ctim.tv_sec)
    extra = {"st_atime": seconds(st.st_atim), "st_mtime": seconds(st.st_mtim),
             "st_ctime": seconds(st.st_ctim), "st_atime_ns": nanoseconds(st.st_atim),
             "st_mtime_ns": nanoseconds(st.st_mtim), "st_ctime_ns": nanoseconds(st.st_ctim),
             "st_blksize": st.st_blksize, "st_blocks": st.st_blocks, "st_rdev": st.st_rdev}
    return os.stat_result(fields, extra)


def to_statvfs_result(sv):
    return os.statvfs_result((sv.f_bsize, sv.f_frsize, sv.f_blocks, sv.f_bfree,
                              sv.f_bavail, sv.f_files, sv.f_ffree, sv.f_favail,
                              sv.f_flag, sv.f_namemax), {"f_fsid": sv.f_fsid})


_P = ctypes.c_void_p
_S = ctypes.c_char_p
_INT = ctypes.c_int
_SSIZE = ctypes.c_ssize_t
_SIZE = ctypes.c_size_t
_OFF = ctypes.c_int64
_U32 = ctypes.c_uint32

# Every function used, as name: (restype, argtypes).  Checked against
# /usr/include/glusterfs/api/glfs.h of 10.3; dlsym returns the default symbol
# version, e.g. the 6.0 pread/pwrite/ftruncate/fsync with pre/poststat.
GFAPI_SIGNATURES = {
    "glfs_new": (_P, [_S]),
    "glfs_set_volfile": (_INT, [_P, _S]),
    "glfs_set_volfile_server": (_INT, [_P, _S, _S, _INT]),
    "glfs_set_logging": (_INT, [_P, _S, _INT]),
    "glfs_init": (_INT, [_P]),
    "glfs_fini": (_INT, [_P]),
    "glfs_open": (_P, [_P, _S, _INT]),
    "glfs_creat": (_P, [_P, _S, _INT, _U32]),
    "glfs_close": (_INT, [_P]),
    "glfs_read": (_SSIZE, [_P, _P, _SIZE, _INT]),
    "glfs_write": (_SSIZE, [_P, _P, _SIZE, _INT]),
    "glfs_pread": (_SSIZE, [_P, _P, _SIZE, _OFF, _INT, _P]),
    "glfs_pwrite": (_SSIZE, [_P, _P, _SIZE, _OFF, _INT, _P, _P]),
    "glfs_lseek": (_OFF, [_P, _OFF, _INT]),
    "glfs_truncate": (_INT, [_P, _S, _OFF]),
    "glfs_ftruncate": (_INT, [_P, _OFF, _P, _P]),
    "glfs_stat": (_INT, [_P, _S, ctypes.POINTER(Stat)]),
    "glfs_lstat": (_INT, [_P, _S, ctypes.POINTER(Stat)]),
    "glfs_fstat": (_INT, [_P, ctypes.POINTER(Stat)]),
    "glfs_fsync": (_INT, [_P, _P, _P]),
    "glfs_fdatasync": (_INT, [_P, _P, _P]),
    "glfs_access": (_INT, [_P, _S, _INT]),
    "glfs_symlink": (_INT, [_P, _S, _S]),
    "glfs_readlink": (_SSIZE, [_P, _S, _P, _SIZE]),
    "glfs_mknod": (_INT, [_P, _S, _U32, ctypes.c_uint64]),
    "glfs_mkdir": (_INT, [_P, _S, _U32]),
    "glfs_unlink": (_INT, [_P, _S]),
    "glfs_rmdir": (_INT, [_P, _S]),
    "glfs_rename": (_INT, [_P, _S, _S]),
    "glfs_link": (_INT, [_P, _S, _S]),
    "glfs_opendir": (_P, [_P, _S]),
    "glfs_readdir": (ctypes.POINTER(Dirent), [_P]),
    "glfs_readdirplus": (ctypes.POINTER(Dirent), [_P, ctypes.POINTER(Stat)]),
    "glfs_closedir": (_INT, [_P]),
    "glfs_statvfs": (_INT, [_P, _S, ctypes.POINTER(Statvfs)]),
    "glfs_chmod": (_INT, [_P, _S, _U32]),
    "glfs_fchmod": (_INT, [_P, _U32]),
    "glfs_chown": (_INT, [_P, _S, _U32, _U32]),
    "glfs_lchown": (_INT, [_P, _S, _U32, _U32]),
    "glfs_fchown": (_INT, [_P, _U32, _U32]),
    "glfs_utimens": (_INT, [_P, _S, ctypes.POINTER(Timespec)]),
    "glfs_lutimens": (_INT, [_P, _S, ctypes.POINTER(Timespec)]),
    "glfs_futimens": (_INT, [_P, ctypes.POINTER(Timespec)]),
    "glfs_getxattr": (_SSIZE, [_P, _S, _S, _P, _SIZE]),
    "glfs_lgetxattr": (_SSIZE, [_P, _S, _S, _P, _SIZE]),
    "glfs_fgetxattr": (_SSIZE, [_P, _S, _P, _SIZE]),
    "glfs_listxattr": (_SSIZE, [_P, _S, _P, _SIZE]),
    "glfs_llistxattr": (_SSIZE, [_P, _S, _P, _SIZE]),
    "glfs_flistxattr": (_SSIZE, [_P, _P, _SIZE]),
    "glfs_setxattr": (_INT, [_P, _S, _S, _P, _SIZE, _INT]),
    "glfs_lsetxattr": (_INT, [_P, _S, _S, _P, _SIZE, _INT]),
    "glfs_fsetxattr": (_INT, [_P, _S, _P, _SIZE, _INT]),
    "glfs_removexattr": (_INT, [_P, _S, _S]),
    "glfs_lremovexattr": (_INT, [_P, _S, _S]),
    "glfs_fremovexattr": (_INT, [_P, _S]),
    "glfs_fallocate": (_INT, [_P, _INT, _OFF, _SIZE]),
    "glfs_discard": (_INT, [_P, _OFF, _SIZE]),
    "glfs_zerofill": (_INT, [_P, _OFF, _OFF]),
    "glfs_posix_lock": (_INT, [_P, _INT, ctypes.POINTER(Flock)]),
    "glfs_fd_set_lkowner": (_INT, [_P, _P, _INT]),
}


def load_gfapi():
    """libgfapi.so.0 with every function of GFAPI_SIGNATURES declared."""
    library = ctypes.CDLL(ctypes.util.find_library("gfapi") or "libgfapi.so.0",
                          use_errno=True)
    for name, (restype, argtypes) in GFAPI_SIGNATURES.items():
        function = getattr(library, name)
        function.restype = restype
        function.argtypes = argtypes
    return library


_gfapi = None
_closing = []  # glfs_fini threads started by close(wait=False)


def finish_closing(timeout=2 * STOP_TIMEOUT):
    """Wait for background glfs_fini calls; return how many still run."""
    deadline = time.monotonic() + timeout
    while _closing:
        _closing.pop().join(max(0.0, deadline - time.monotonic()))
    return sum(worker.is_alive() for worker in threading.enumerate()
               if worker.name == "glfs_fini")


def gfapi_library():
    global _gfapi
    if _gfapi is None:
        _gfapi = load_gfapi()
    return _gfapi


def _fs_path(path):
    return os.fsencode(path)


def _check(result, path=None):
    """Raise OSError(errno) when a gfapi call returned -1 (or NULL)."""
    if result is None or (isinstance(result, int) and result < 0):
        code = ctypes.get_errno() or errno_codes.EIO
        raise OSError(code, os.strerror(code), *([os.fsdecode(path)] if path else []))
    return result


def _times(atime_ns, mtime_ns):
    pair = (Timespec * 2)()
    for slot, value in zip(pair, (atime_ns, mtime_ns)):
        slot.tv_sec, slot.tv_nsec = divmod(value, 1_000_000_000)
    return pair


class Gfapi:
    """A libgfapi virtual mount of a client volfile, used through ctypes.

    Methods are named after the glfs_ function they call and raise OSError on
    failure.  open/creat/opendir return GlfsFile/GlfsDir objects.
    """

    def __init__(self, volfile, log_file, log_level="INFO", volname="gfapi"):
        self.lib = gfapi_library()
        self.volfile = Path(volfile)
        self.log_file = Path(log_file)
        self.fs = self.lib.glfs_new(volname.encode())
        if not self.fs:
            raise GlusterError("glfs_new failed")
        try:
            self._configure(log_level)
            self._init()
        except BaseException:
            self._fini()
            raise

    def _configure(self, log_level):
        _check(self.lib.glfs_set_volfile(self.fs, _fs_path(self.volfile)), self.volfile)
        _check(self.lib.glfs_set_logging(self.fs, _fs_path(self.log_file),
                                         LOG_LEVELS[log_level]), self.log_file)

    def _init(self):
        """glfs_init: returns once the graph is up or failed (about 4 s when
        nothing listens)."""
        if self.lib.glfs_init(self.fs) != 0:
            code = ctypes.get_errno() or errno_codes.EIO
            raise OSError(code, f"glfs_init: {os.strerror(code)}; {self.log_file} says:\n"
                                f"{tail(self.log_text(), 15)}", str(self.volfile))

    def close(self, wait=True, timeout=STOP_TIMEOUT):
        """glfs_fini.  It takes up to 10 s in 10.3 (protocol/client's fini waits
        for its 10 s call_bail timer, which cannot be cancelled once cleanup
        started), so wait=False runs it in the background: see finish_closing()."""
        if not self.fs:
            return
        worker = threading.Thread(target=self._fini, daemon=True, name="glfs_fini")
        worker.start()
        if not wait:
            _closing.append(worker)
            return
        worker.join(timeout)
        if worker.is_alive():
            raise GlusterError(f"glfs_fini did not return within {timeout}s")

    def _fini(self):
        fs, self.fs = self.fs, None
        if fs:
            self.lib.glfs_fini(fs)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def log_text(self):
        return read_text(self.log_file)

    # -- files

    def open(self, path, flags=os.O_RDONLY):
        return GlfsFile(self, _check(self.lib.glfs_open(self.fs, _fs_path(path), flags), path))

    def creat(self, path, flags=os.O_RDWR, mode=0o644):
        """Open path, creating it if missing (glfs_creat implies O_CREAT)."""
        handle = self.lib.glfs_creat(self.fs, _fs_path(path), flags, mode)
        return GlfsFile(self, _check(handle, path))

    def write_file(self, path, data, mode=0o644):
        """Create or replace path with data."""
        with self.creat(path, os.O_WRONLY | os.O_TRUNC, mode) as handle:
            handle.write_all(data)

    def read_file(self, path):
        with self.open(path) as handle:
            return handle.read_all()

    # -- paths

    def stat(self, path):
        buf = Stat()
        _check(self.lib.glfs_stat(self.fs, _fs_path(path), ctypes.byref(buf)), path)
        return to_stat_result(buf)

    def lstat(self, path):
        buf = Stat()
        _check(self.lib.glfs_lstat(self.fs, _fs_path(path), ctypes.byref(buf)), path)
        return to_stat_result(buf)

    def exists(self, path):
        try:
            self.lstat(path)
        except FileNotFoundError:
            return False
        return True

    def access(self, path, mode):
        _check(self.lib.glfs_access(self.fs, _fs_path(path), mode), path)

    def statvfs(self, path="/"):
        buf = Statvfs()
        _check(self.lib.glfs_statvfs(self.fs, _fs_path(path), ctypes.byref(buf)), path)
        return to_statvfs_result(buf)

    def mkdir(self, path, mode=0o755):
        _check(self.lib.glfs_mkdir(self.fs, _fs_path(path), mode), path)

    def rmdir(self, path):
        _check(self.lib.glfs_rmdir(self.fs, _fs_path(path)), path)

    def mknod(self, path, mode, device=0):
        _check(self.lib.glfs_mknod(self.fs, _fs_path(path), mode, device), path)

    def unlink(self, path):
        _check(self.lib.glfs_unlink(self.fs, _fs_path(path)), path)

    def rename(self, old, new):
        _check(self.lib.glfs_rename(self.fs, _fs_path(old), _fs_path(new)), old)

    def link(self, old, new):
        _check(self.lib.glfs_link(self.fs, _fs_path(old), _fs_path(new)), old)

    def symlink(self, target, path):
        _check(self.lib.glfs_symlink(self.fs, _fs_path(target), _fs_path(path)), path)

    def readlink(self, path):
        buf = ctypes.create_string_buffer(4096)
        size = _check(self.lib.glfs_readlink(self.fs, _fs_path(path), buf, len(buf)), path)
        return buf.raw[:size].decode()

    def truncate(self, path, length):
        _check(self.lib.glfs_truncate(self.fs, _fs_path(path), length), path)

    def chmod(self, path, mode):
        _check(self.lib.glfs_chmod(self.fs, _fs_path(path), mode), path)

    def chown(self, path, uid, gid):
        _check(self.lib.glfs_chown(self.fs, _fs_path(path), uid, gid), path)

    def lchown(self, path, uid, gid):
        _check(self.lib.glfs_lchown(self.fs, _fs_path(path), uid, gid), path)

    def utimens(self, path, atime_ns, mtime_ns):
        times = _times(atime_ns, mtime_ns)
        _check(self.lib.glfs_utimens(self.fs, _fs_path(path), times), path)

    def lutimens(self, path, atime_ns, mtime_ns):
        times = _times(atime_ns, mtime_ns)
        _check(self.lib.glfs_lutimens(self.fs, _fs_path(path), times), path)

    # -- extended attributes (values are bytes, names str)

    def setxattr(self, path, name, value, flags=0):
        _check(self.lib.glfs_setxattr(self.fs, _fs_path(path), name.encode(), value,
                                      len(value), flags), path)

    def lsetxattr(self, path, name, value, flags=0):
        _check(self.lib.glfs_lsetxattr(self.fs, _fs_path(path), name.encode(), value,
                                       len(value), flags), path)

    def getxattr(self, path, name):
        return _sized_read(lambda buf, size: self.lib.glfs_getxattr(
            self.fs, _fs_path(path), name.encode(), buf, size), path)

    def lgetxattr(self, path, name):
        return _sized_read(lambda buf, size: self.lib.glfs_lgetxattr(
            self.fs, _fs_path(path), name.encode(), buf, size), path)

    def listxattr(self, path):
        return _split_names(_sized_read(lambda buf, size: self.lib.glfs_listxattr(
            self.fs, _fs_path(path), buf, size), path))

    def llistxattr(self, path):
        return _split_names(_sized_read(lambda buf, size: self.lib.glfs_llistxattr(
            self.fs, _fs_path(path), buf, size), path))

    def removexattr(self, path, name):
        _check(self.lib.glfs_removexattr(self.fs, _fs_path(path), name.encode()), path)

    def lremovexattr(self, path, name):
        _check(self.lib.glfs_lremovexattr(self.fs, _fs_path(path), name.encode()), path)

    # -- directories

    def opendir(self, path):
        return GlfsDir(self, _check(self.lib.glfs_opendir(self.fs, _fs_path(path)), path))

    def readdir(self, path="/", include_dots=False):
        """Names in directory path (readdir fop)."""
        with self.opendir(path) as directory:
            return [name for name, _ in directory.entries(plus=False)
                    if include_dots or name not in (".", "..")]

    def readdirplus(self, path="/", include_dots=False):
        """[(name, os.stat_result)] of directory path (readdirp fop)."""
        with self.opendir(path) as directory:
            return [(name, st) for name, st in directory.entries(plus=True)
                    if include_dots or name not in (".", "..")]



class ServerGfapi(Gfapi):
    """A gfapi client of a volume whose volfile comes from glusterd at
    host:port (glfs_set_volfile_server), as applications get theirs."""

    def __init__(self, volume, host, port, log_file, log_level="INFO"):
        self.server = (host, int(port))
        super().__init__(f"{host}:{port}/{volume}", log_file, log_level, volname=volume)

    def _configure(self, log_level):
        host, port = self.server
        _check(self.lib.glfs_set_volfile_server(self.fs, b"tcp", host.encode(), port), host)
        _check(self.lib.glfs_set_logging(self.fs, _fs_path(self.log_file),
                                         LOG_LEVELS[log_level]), self.log_file)

def _sized_read(call, path, attempts=5):
    """Ask a getxattr-like call for the size, then read into a buffer of it;
    asked again if the value grew in between (ERANGE), as getfattr does."""
    for attempt in range(attempts):
        size = _check(call(None, 0), path)
        buf = ctypes.create_string_buffer(max(size, 1))
        try:
            size = _check(call(buf, size), path)
        except OSError as error:
            if error.errno == errno_codes.ERANGE and attempt < attempts - 1:
                continue
            raise
        return buf.raw[:size]


def _split_names(raw):
    return [name.decode() for name in raw.split(b"\0") if name]


class GlfsFile:
    """An open glfs_fd_t.  Methods are named after the glfs_ function."""

    def __init__(self, owner, handle):
        self.owner, self.lib, self.fd = owner, owner.lib, handle

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """glfs_close: sends flush, then release."""
        fd, self.fd = self.fd, None
        if fd:
            _check(self.lib.glfs_close(fd))

    def write(self, data, flags=0):
        return _check(self.lib.glfs_write(self.fd, data, len(data), flags))

    def write_all(self, data):
        view, done = memoryview(data), 0
        while done < len(view):
            done += self.write(bytes(view[done:]))

    def pwrite(self, data, offset, flags=0):
        return _check(self.lib.glfs_pwrite(self.fd, data, len(data), offset, flags,
                                           None, None))

    def read(self, size, flags=0):
        buf = ctypes.create_string_buffer(size)
        count = _check(self.lib.glfs_read(self.fd, buf, size, flags))
        return buf.raw[:count]

    def read_all(self, chunk=1 << 20):
        parts = []
        while True:
            part = self.read(chunk)
            if not part:
                return b"".join(parts)
            parts.append(part)

    def pread(self, size, offset, flags=0):
        buf = ctypes.create_string_buffer(size)
        count = _check(self.lib.glfs_pread(self.fd, buf, size, offset, flags, None))
        return buf.raw[:count]

    def lseek(self, offset, whence=SEEK_SET):
        """SEEK_DATA/SEEK_HOLE go to the seek fop; ENXIO past the last data."""
        return _check(self.lib.glfs_lseek(self.fd, offset, whence))

    def fstat(self):
        buf = Stat()
        _check(self.lib.glfs_fstat(self.fd, ctypes.byref(buf)))
        return to_stat_result(buf)

    def fsync(self):
        _check(self.lib.glfs_fsync(self.fd, None, None))

    def fdatasync(self):
        _check(self.lib.glfs_fdatasync(self.fd, None, None))

    def ftruncate(self, length):
        _check(self.lib.glfs_ftruncate(self.fd, length, None, None))

    def fallocate(self, offset, length, keep_size=False):
        _check(self.lib.glfs_fallocate(self.fd, int(keep_size), offset, length))

    def discard(self, offset, length):
        _check(self.lib.glfs_discard(self.fd, offset, length))

    def zerofill(self, offset, length):
        _check(self.lib.glfs_zerofill(self.fd, offset, length))

    def fchmod(self, mode):
        _check(self.lib.glfs_fchmod(self.fd, mode))

    def fchown(self, uid, gid):
        _check(self.lib.glfs_fchown(self.fd, uid, gid))

    def futimens(self, atime_ns, mtime_ns):
        _check(self.lib.glfs_futimens(self.fd, _times(atime_ns, mtime_ns)))

    def fsetxattr(self, name, value, flags=0):
        _check(self.lib.glfs_fsetxattr(self.fd, name.encode(), value, len(value), flags))

    def fgetxattr(self, name):
        return _sized_read(lambda buf, size: self.lib.glfs_fgetxattr(
            self.fd, name.encode(), buf, size), None)

    def flistxattr(self):
        return _split_names(_sized_read(lambda buf, size: self.lib.glfs_flistxattr(
            self.fd, buf, size), None))

    def fremovexattr(self, name):
        _check(self.lib.glfs_fremovexattr(self.fd, name.encode()))

    def set_lkowner(self, owner):
        """Lock owner (bytes) for posix_lock; fds of one Gfapi share one by default."""
        _check(self.lib.glfs_fd_set_lkowner(self.fd, owner, len(owner)))

    def posix_lock(self, cmd, lock_type, start=0, length=0, whence=SEEK_SET):
        """fcntl-style lock (lk fop); returns the resulting LockInfo (for F_GETLK:
        the conflicting lock, or type F_UNLCK)."""
        lock = Flock(l_type=lock_type, l_whence=whence, l_start=start, l_len=length)
        _check(self.lib.glfs_posix_lock(self.fd, cmd, ctypes.byref(lock)))
        return LockInfo(lock.l_type, lock.l_whence, lock.l_start, lock.l_len, lock.l_pid)


class GlfsDir:
    """An open directory (glfs_opendir)."""

    def __init__(self, owner, handle):
        self.lib, self.fd = owner.lib, handle

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        fd, self.fd = self.fd, None
        if fd:
            _check(self.lib.glfs_closedir(fd))

    def fgetxattr(self, name):
        """fgetxattr on the directory's fd."""
        return _sized_read(lambda buf, size: self.lib.glfs_fgetxattr(
            self.fd, name.encode(), buf, size), None)

    def entries(self, plus=False):
        """[(name, os.stat_result or None)] until the end of the directory."""
        found = []
        while True:
            ctypes.set_errno(0)
            buf = Stat()
            entry = (self.lib.glfs_readdirplus(self.fd, ctypes.byref(buf)) if plus
                     else self.lib.glfs_readdir(self.fd))
            if not entry:
                if ctypes.get_errno():
                    _check(-1)
                return found
            name = os.fsdecode(entry.contents.d_name)
            found.append((name, to_stat_result(buf) if plus else None))


# ------------------------------------------------------------------ cluster

class Cluster:
    """Starts bricks, gfapi clients and FUSE mounts under one directory and
    stops every one of them in cleanup(), whatever state they are in."""

    def __init__(self, workdir, log_level="INFO"):
        self.workdir = Path(workdir)
        self.log_level = log_level
        self.bricks, self.clients, self.mounts = [], [], []
        self._counter = 0

    def _unique(self, prefix):
        self._counter += 1
        return f"{prefix}{self._counter}"

    def brick(self, layers=(), name=None, start=True, **options):
        """A Brick in workdir/<name>; started unless start=False."""
        name = name or self._unique("b")
        brick = Brick(self.workdir / name, layers, name=name,
                      log_level=options.pop("log_level", self.log_level), **options)
        self.bricks.append(brick)
        return brick.start() if start else brick

    def client_volfile(self, brick, layers=(), name=None):
        """workdir/<name>.vol: protocol/client to brick, then layers."""
        name = name or self._unique("c")
        return brick.client_volfile(self.workdir / f"{name}.vol", layers, name)

    def gfapi(self, brick, layers=(), name=None):
        """A Gfapi client of brick through protocol/client (+ layers).

        It runs in this (Python) process: a client-side features/glupy layer
        would share this interpreter; prefer mount() for those.
        """
        name = name or self._unique("g")
        volfile = self.client_volfile(brick, layers, name)
        client = Gfapi(volfile, self.workdir / f"{name}.log", self.log_level)
        self.clients.append(client)
        return client

    def mount(self, brick, layers=(), name=None, extra_args=()):
        """A FUSE mount of brick at workdir/<name>, mounted and usable."""
        name = name or self._unique("m")
        volfile = self.client_volfile(brick, layers, name)
        fuse = FuseMount(volfile, self.workdir / name, self.workdir / f"{name}.log",
                         self.log_level, extra_args)
        self.mounts.append(fuse)
        return fuse.mount()

    def cleanup(self):
        """Close clients, unmount, stop bricks; raise the first error afterwards."""
        errors = []
        # glfs_fini runs in the background (it can take 10 s); a brick stopped
        # under a closing client only makes it see a disconnect.
        closes = [lambda client=client: client.close(wait=False) for client in self.clients]
        for action in (closes
                       + [fuse.unmount for fuse in self.mounts]
                       + [brick.stop for brick in self.bricks]):
            try:
                action()
            except Exception as error:  # keep going: every process must be stopped
                errors.append(error)
        if errors:
            raise errors[0]
