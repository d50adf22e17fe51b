"""Ask each brick of a volume what glupy it runs, through GlusterFS itself.

Every glupy translator answers a getxattr of STATUS_KEY itself, without
Python (src/status.rs): a JSON object with the translator's name, module,
module file, sha256, helpers, load time, pid and hostname. `glupy status`
reads it from every online brick of the pool directly, with GlusterFS's own
client stack and nothing of glupy's own on the network: the volume's client
volfile (`gluster system:: getspec V`) holds one protocol/client block per
brick (remote-host, remote-subvolume, transport, the volume's username and
password); each block alone is a volfile that libgfapi loads to reach that
one brick, and `glfs_getxattr(fs, "/", STATUS_KEY + "." + nonce)` asks it
(a fresh random nonce: a value someone stored under the key on a brick
without glupy cannot answer it).

The same query lists the client registrations on the brick's root
(CLIENT_PREFIX, written by each client process's glupy: src/announce.rs):
what FUSE mounts and gfapi applications on any host run.

Each brick is asked by a child process of its own (this module run with
`-c`), started from a thread per brick and killed at its timeout: a thread
stuck in `glfs_init` (a brick that accepts the connection and never answers)
cannot be cancelled, and `glfs_fini` of GlusterFS 10.3 takes up to 10 s, so
the child prints its answer and leaves with `os._exit` instead. The child's
gfapi log goes to a temporary directory; its last error lines explain a
failure.
"""

import ctypes
import ctypes.util
import errno
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from . import volfilter

STATUS_KEY = "trusted.glupy.status"
# Client processes register under this prefix (src/announce.rs).
CLIENT_PREFIX = "trusted.glupy.client."
BRICK_TIMEOUT = 15.0
GF_LOG_INFO = 7
# A brick that answers these for the key runs no glupy that knows it.
NO_STATUS = (errno.ENODATA, errno.EOPNOTSUPP)


def client_blocks(volfile_text):
    """{(remote-host, remote-subvolume): volfile text of that block alone}
    of the protocol/client blocks of a client volfile."""
    lines = volfile_text.splitlines()
    found = {}
    for block in volfilter.parse_blocks(lines):
        if block.type != "protocol/client":
            continue
        host, path = block.options.get("remote-host"), block.options.get("remote-subvolume")
        if host and path:
            found[(host, path)] = "\n".join(lines[block.start:block.end + 1]) + "\n"
    return found


def ask(bricks, volfile_text, timeout=BRICK_TIMEOUT, forget=False):
    """Start asking every brick [(host, path)] in parallel; returns a function
    that waits (at most about `timeout`) and gives {(host, path): result}:
    {"answer": {...}} (the brick's glupy), {"none": why} (it answered that it
    has no such key: no glupy) or {"error": why} (no answer); each with
    "clients": {name: registration} found on the brick's root. forget: the
    registrations are removed from each brick after they are read (`glupy
    disable`; straight on the brick, so no replica marks them pending)."""
    blocks = client_blocks(volfile_text)
    workdir = Path(tempfile.mkdtemp(prefix="glupy-status-"))
    results, threads = {}, []
    for n, brick in enumerate(bricks):
        block = blocks.get(brick)
        if block is None:
            results[brick] = {"error": "the volume's client volfile has no protocol/client "
                                       "block for it"}
            continue
        volfile = workdir / f"brick{n}.vol"
        volfile.write_text(block)
        thread = threading.Thread(target=_ask_one, daemon=True, name=f"status {brick[0]}",
                                  args=(brick, volfile, workdir / f"brick{n}.log", timeout,
                                        results, forget))
        thread.start()
        threads.append(thread)

    def collect():
        for thread in threads:
            thread.join(timeout + 10)  # the child is killed at `timeout`
        shutil.rmtree(workdir, ignore_errors=True)
        return {b: results.get(b, {"error": "no result"}) for b in bricks}

    return collect


def _ask_one(brick, volfile, log_file, timeout, results, forget):
    package_parent = str(Path(__file__).resolve().parent.parent)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from glupy import brickquery; "
            "brickquery.child(sys.argv[2], sys.argv[3], sys.argv[4] == 'forget')")
    try:
        done = subprocess.run([sys.executable, "-I", "-c", code, package_parent, str(volfile),
                               str(log_file), "forget" if forget else "ask"],
                              capture_output=True, text=True, timeout=timeout)
        reply = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
        clients = _parse_clients(reply.get("clients", {}))
        if "answer" in reply:
            results[brick] = {"answer": json.loads(reply["answer"])}
        elif reply.get("errno") in NO_STATUS:
            results[brick] = {"none": f"the brick answers {errno.errorcode[reply['errno']]} "
                                      f"for {STATUS_KEY}"}
        elif reply:
            results[brick] = {"error": reply["error"] + _log_hint(log_file)}
        else:
            results[brick] = {"error": f"the query ended without an answer (exit status "
                                       f"{done.returncode}) {done.stderr.strip()[-300:]}"
                                       + _log_hint(log_file)}
        results[brick]["clients"] = clients
        if forget:
            done_forget = reply.get("forget")
            if done_forget != "ok":
                results[brick]["forget_error"] = done_forget or results[brick].get(
                    "error", "the query ended without an answer")
            else:
                results[brick]["forget"] = "ok"
    except subprocess.TimeoutExpired:
        results[brick] = {"error": f"no answer in {timeout:.0f} s" + _log_hint(log_file)}
    except (OSError, ValueError) as e:
        results[brick] = {"error": f"{type(e).__name__}: {e}"}
    if forget and "forget" not in results[brick]:
        results[brick].setdefault("forget_error", results[brick].get("error", "no answer"))


def _parse_clients(raw):
    """{name: registration} of the client registrations a brick's root
    holds; one that is no JSON object is left out."""
    parsed = {}
    for name, text in raw.items():
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            parsed[name] = value
    return parsed


def _log_hint(log_file):
    """The last error line of a query's gfapi log, as ' (...)'."""
    try:
        lines = Path(log_file).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if "] E [" in line or "] W [" in line]
    return f" ({errors[-1].strip()[-300:]})" if errors else ""


# ------------------------------------------------------------------ child

def child(volfile, log_file, forget=False):
    """In the child process: one gfapi instance on the one-block volfile,
    the getxattrs, one JSON line on stdout; then exit without glfs_fini."""
    try:
        print(json.dumps(_query(volfile, log_file, forget)), flush=True)
    except BaseException as e:  # the parent reads one line whatever happens
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
    os._exit(0)


def _query(volfile, log_file, forget):
    lib = _gfapi()
    fs = lib.glfs_new(b"glupy-status")
    if not fs:
        return {"error": "glfs_new failed"}
    if lib.glfs_set_volfile(fs, os.fsencode(volfile)) != 0:
        return _failed("glfs_set_volfile")
    lib.glfs_set_logging(fs, os.fsencode(log_file), GF_LOG_INFO)
    if lib.glfs_init(fs) != 0:
        return _failed("cannot reach the brick (glfs_init)")
    # A fresh nonce: a value stored under the key (root on a client can
    # store one on a brick without glupy) never answers it.
    key = f"{STATUS_KEY}.{secrets.token_hex(8)}".encode()
    found = _getxattr(lib, fs, key)
    if isinstance(found, dict):
        reply = found
    else:
        reply = {"answer": found.decode(errors="replace")}
    names = _listxattr(lib, fs)
    if isinstance(names, dict):
        if forget:
            reply["forget"] = names["error"]
        return reply
    clients, failures = {}, []
    for name in names:
        if name.startswith(CLIENT_PREFIX.encode()):
            value = _getxattr(lib, fs, name)
            if not isinstance(value, dict):
                clients[name.decode(errors="replace")] = value.decode(errors="replace")
            if forget and lib.glfs_removexattr(fs, b"/", name) != 0 and \
                    ctypes.get_errno() != errno.ENODATA:
                failures.append(_failed(f"removexattr {name.decode(errors='replace')}")["error"])
    if forget:
        reply["forget"] = "; ".join(failures) or "ok"
    return {**reply, "clients": clients}


def _gfapi():
    P, S, INT, SIZE = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_ssize_t
    lib = ctypes.CDLL(ctypes.util.find_library("gfapi") or "libgfapi.so.0", use_errno=True)
    for name, restype, argtypes in (
            ("glfs_new", P, [S]), ("glfs_set_volfile", INT, [P, S]),
            ("glfs_set_logging", INT, [P, S, INT]), ("glfs_init", INT, [P]),
            ("glfs_getxattr", SIZE, [P, S, S, P, ctypes.c_size_t]),
            ("glfs_listxattr", SIZE, [P, S, P, ctypes.c_size_t]),
            ("glfs_removexattr", INT, [P, S, S])):
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


def _getxattr(lib, fs, key):
    """The value of xattr key of the brick's root, or {"error", "errno"}."""
    for _attempt in range(3):
        size = lib.glfs_getxattr(fs, b"/", key, None, 0)
        if size < 0:
            return _failed("getxattr")
        buf = ctypes.create_string_buffer(max(size, 1))
        got = lib.glfs_getxattr(fs, b"/", key, buf, size)
        if got >= 0:
            return buf.raw[:got].rstrip(b"\0")
        if ctypes.get_errno() != errno.ERANGE:
            return _failed("getxattr")
    return _failed("getxattr")


def _listxattr(lib, fs):
    """The xattr names of the brick's root, or {"error", "errno"}."""
    for _attempt in range(3):
        size = lib.glfs_listxattr(fs, b"/", None, 0)
        if size < 0:
            return _failed("listxattr")
        buf = ctypes.create_string_buffer(max(size, 1))
        got = lib.glfs_listxattr(fs, b"/", buf, size)
        if got >= 0:
            return [n for n in buf.raw[:got].split(b"\0") if n]
        if ctypes.get_errno() != errno.ERANGE:
            return _failed("listxattr")
    return _failed("listxattr")


def _failed(what):
    code = ctypes.get_errno() or errno.EIO
    return {"error": f"{what}: {os.strerror(code)}", "errno": code}
