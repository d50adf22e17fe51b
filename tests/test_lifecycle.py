"""A translator's life (issue 11, items 5 and 6): init, reconfigure, reload,
statedump and fini run Python on a large stack; reconfigure applies
python-thread; a reload frees the replaced instance once its work in flight
is done, and calls its fini() only then; fops a reloaded module dropped go
straight to the child; at the end of a graph (glfs_fini), requests Python
keeps are answered, its coroutines cancelled, and the values it keeps
refuse use instead of touching freed memory (checked under valgrind).

The stack tests run GlusterFS with a 1 MiB stack limit (RLIMIT_STACK, which
GlusterFS's own threads get too): Python code that needs ~3.6 MiB of C stack
must still run, since glupy promises Python at least 8 MiB.
"""

import errno
import os
import re
import resource
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import glusterlib

HERE = Path(__file__).parent
XLATORS = HERE / "xlators"
SMALL_STACK = 1 << 20
PRLIMIT_SMALL_STACK = ["prlimit", f"--stack={SMALL_STACK}"]
SKIP_SLOW = os.environ.get("GLUPY_SKIP_SLOW") == "1"


def glupy(module, path=XLATORS, **options):
    opts = {"module-name": module, "module-path": str(path)}
    opts.update({k.replace("_", "-"): str(v) for k, v in options.items()})
    return ("features/glupy", opts)


def glupy_section(dump, name):
    return glusterlib.statedump_sections(dump)[f"xlator.features.glupy.{name}.priv"]


def records(path):
    return Path(path).read_text().splitlines() if Path(path).exists() else []


# ------------------------------------------------- init and dump on a small stack

def test_init_and_dump_run_python_on_a_large_stack(gluster, workdir):
    record = workdir / "record.txt"
    brick = gluster.brick([glupy("lifecycle", deep="init,dump", record=record)],
                          wrapper=PRLIMIT_SMALL_STACK)
    assert "init 1" in records(record)
    mount = gluster.mount(brick)  # a statedump needs a client first (see glusterlib)
    (mount.mountpoint / "f").write_bytes(b"data")
    section = glupy_section(brick.statedump(), brick.layer_names[0])
    assert section["python.version"] == "1"
    assert glusterlib.pid_alive(brick.pid)


def test_dump_can_neither_forge_statedump_lines_nor_hold_the_signal_thread(gluster, workdir):
    brick = gluster.brick([glupy("lifecycle", dump_forge="yes")])
    gluster.gfapi(brick).stat("/")  # a statedump needs a client first (see glusterlib)
    text = brick.statedump()
    assert "\nfop.forged" not in text, text
    section = glupy_section(text, brick.layer_names[0])
    assert section["python.key\\nfop.forged"] == "value\\nfop.forged=calls=1", section
    assert section["python.a\\"] == "b=c", section  # the key's "=" escaped: "a\=b"
    # Lines past GlusterFS's 4096-byte line buffer (which it overflows) are cut.
    assert section["python.big"].endswith("...(cut)") and len(section["python.big"]) < 4000
    assert any(k.startswith("python.kkkk") and k.endswith("...(cut)") for k in section), section
    assert brick.alive()
    # A dump() that does not return holds neither the statedump (GlusterFS's
    # signal thread) nor, after it, SIGTERM's handling on that thread.
    slow = gluster.brick([glupy("lifecycle", dump_seconds=60)])
    gluster.gfapi(slow).stat("/")
    started = time.monotonic()
    section = glupy_section(slow.statedump(), slow.layer_names[0])
    assert time.monotonic() - started < 20
    assert section["python.dump"].startswith("dump() did not return within 2 s"), section
    # Still running: the next statedump starts no second one.
    section = glupy_section(slow.statedump(), slow.layer_names[0])
    assert section["python.dump"] == "the previous dump() has not returned yet: left out", section
    slow.process.terminate()
    assert glusterlib.wait_until(lambda: slow.process.poll() is not None, 20), "SIGTERM was not handled"


# ------------------------------------------------------------ gfapi init/fini

def build_cycles(workdir):
    program = workdir / "gfapi_cycles"
    subprocess.run(["gcc", "-O1", "-g", "-Wall", "-Werror", "-o", str(program),
                    str(HERE / "gfapi_cycles.c"), "-lgfapi"], check=True)
    return program


def run_cycles(gluster, workdir, wrapper=(), rounds=2, keep_rounds=1, timeout=240):
    brick = gluster.brick()
    record = workdir / "record.txt"
    volfile = gluster.client_volfile(brick, [glupy("lifecycle", record=record, deep="init,fini",
                                                   keep_values="yes", keep_seconds="0.5")])
    program = build_cycles(workdir)
    done = subprocess.run([*wrapper, str(program), str(volfile), str(workdir / "cycles.log"),
                           str(rounds), str(keep_rounds)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    # Each round's translator registered for glupy status at its CHILD_UP
    # (src/announce.rs) and removed it at glfs_fini's PARENT_DOWN, before
    # the graph went: nothing of the program is left on the volume's root.
    left = [n for n in os.listxattr(str(brick.directory)) if n.startswith("trusted.glupy.client.")]
    assert not left, left
    return done, records(record)


def check_cycles(done, lines, rounds=2):
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr[-3000:]}"
    for n in range(1, rounds + 1):
        assert f"round {n}: init" in out and f"round {n}: fini" in out, out
        assert f"round {n}: wrote 14 read 14 same" in out, out
        assert f"round {n}: kept getxattr 4 " in out, out  # answered once kept 0.5 s
    # Requests Python kept past the end of the graph are answered: EIO.
    assert re.search(r"^ftruncate answered ret=-1 errno=5$", out, re.M), out
    assert re.search(r"^fsync answered ret=-1 errno=5$", out, re.M), out
    assert "done" in out
    assert lines.count("init 1") == rounds and lines.count("fini 1 kept=1") >= 1, lines
    # Values Python kept past the end of the graph refuse use.
    for name in ("inode", "fd", "vector", "xdata"):
        assert any(l.startswith(f"{name}: RuntimeError: the translator ") for l in lines), lines
    assert not any(l.endswith(": usable") for l in lines), lines
    assert "values dropped" in lines


def test_glfs_init_and_fini_twice_with_kept_requests_and_values(gluster, workdir):
    done, lines = run_cycles(gluster, workdir, wrapper=PRLIMIT_SMALL_STACK)
    check_cycles(done, lines)
    log = (workdir / "cycles.log").read_text()
    assert "request(s) still kept by Python when the translator was going down; answered EIO" in log
    assert "coroutine(s) still running at fini were cancelled" in log
    assert "round 1: fini" in done.stdout and "ftruncate answered" in done.stdout


VALGRIND_OPTIONS = ["valgrind", "--tool=memcheck", "--error-exitcode=99", "--num-callers=40",
                    "--leak-check=no", f"--suppressions={HERE.parent / 'stress' / 'valgrind.supp'}"]


@pytest.mark.skipif(SKIP_SLOW, reason="GLUPY_SKIP_SLOW=1")
@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed")
def test_values_kept_past_glfs_fini_touch_no_freed_memory_under_valgrind(gluster, workdir):
    log_dir = workdir / "vg"
    log_dir.mkdir()
    done, lines = run_cycles(gluster, workdir, wrapper=[*VALGRIND_OPTIONS,
                                                         f"--log-file={log_dir}/vg.%p.log"],
                             timeout=600)
    reports = "\n".join(p.read_text() for p in log_dir.glob("vg.*.log"))
    invalid = [block for block in reports.split("\n==") if "Invalid " in block]
    assert not invalid, "memcheck found invalid accesses:\n" + "\n".join(invalid[:3])[:6000]
    check_cycles(done, lines)


# ------------------------------------------------------- managed volumes (glusterd)

@pytest.fixture(scope="module")
def glusterd(tmp_path_factory):
    """An isolated glusterd (test_managed's) whose bricks run with a 1 MiB
    stack limit; each test's volumes go when it ends."""
    from test_managed import Glusterd
    instance = Glusterd(tmp_path_factory.mktemp("glusterd"))
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    resource.setrlimit(resource.RLIMIT_STACK, (SMALL_STACK, hard))
    try:
        instance.start()  # bricks inherit glusterd's limit
    finally:
        resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def managed(glusterd):
    try:
        yield glusterd
    finally:
        errors = glusterd.release_test_state()
        if errors:
            raise errors[0]


def enabled_volume(glusterd, tmp_path, *options):
    """A one-brick volume running tests/xlators/lifecycle.py in its brick,
    with a FUSE mount: (brick pid, mountpoint, module file)."""
    from test_managed import module_dir, unique
    volume = unique("life")
    glusterd.create_volume(volume)
    modules = module_dir(tmp_path, "lifecycle")
    args = [a for option in options for a in ("-o", option)]
    glusterd.glupy("enable", volume, "lifecycle", "--module-path", modules, *args)
    glusterd.gluster("volume", "stop", volume)
    glusterd.gluster("volume", "start", volume)
    [(_path, pid)] = glusterd.wait_bricks_online(volume)
    mount = glusterd.mount(volume, "m")
    return volume, pid, mount.mountpoint, modules / "lifecycle.py"


def getxattr(path, name):
    try:
        return os.getxattr(path, name)
    except OSError as e:
        return e.errno


def wait_for(predicate, timeout=60, what="condition"):
    value = glusterlib.wait_until(predicate, timeout, interval=0.2)
    assert value, f"timed out after {timeout}s waiting for {what}"
    return value


def rss_bytes(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)[1]) * 1024


def fops_table(glusterd, pid, volume):
    sections = glusterlib.statedump_sections(glusterd.statedump(pid))
    [ours] = [s for name, s in sections.items() if name.endswith(f"glupy.{volume}-glupy.priv")]
    return ours["fops-table"].split()


def test_reload_retires_the_old_instance_after_its_requests_and_frees_it(managed, tmp_path):
    record = tmp_path / "record.txt"
    cache_mb = 64
    volume, pid, mnt, module = enabled_volume(
        managed, tmp_path, f"record={record}", f"cache-mb={cache_mb}", "keep-seconds=2")
    source = module.read_text()

    def load_version(version):
        # Same size and, kept on purpose, same mtime: what a cached .pyc is checked by.
        before = module.stat()
        module.write_text(source.replace('VERSION = "1"', f'VERSION = "{version}"'))
        os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))
        managed.glupy("reload", volume)
        wait_for(lambda: getxattr(mnt, "user.lc.version") == str(version).encode(),
                 what=f"version {version} loaded")

    assert getxattr(mnt, "user.lc.version") == b"1"
    assert "statfs" in fops_table(managed, pid, volume)
    os.statvfs(mnt)

    # A request kept by the old instance across the reload is answered by
    # it, and its fini() runs only after that.
    kept = {}
    waiter = threading.Thread(target=lambda: kept.update(value=getxattr(mnt, "user.lc.keep")))
    waiter.start()
    time.sleep(0.5)
    load_version(2)
    waiter.join(30)
    assert kept.get("value") == b"kept"
    wait_for(lambda: any(line.startswith("fini 1 ") for line in records(record)), what="fini 1")
    assert "fini 1 kept=0" in records(record), records(record)

    # The new module does not define statfs: it goes straight to the child.
    table = fops_table(managed, pid, volume)
    assert "statfs" not in table and "getxattr" in table, table
    os.statvfs(mnt)

    # Replaced instances (and their caches) are freed, not kept until the brick stops.
    before = rss_bytes(pid)
    for version in range(3, 7):
        load_version(version)
        wait_for(lambda: f"fini {version - 1} kept=0" in records(record), what=f"fini {version - 1}")
    time.sleep(1)
    grown = rss_bytes(pid) - before
    assert grown < cache_mb * 1.5 * 2**20, f"RSS grew {grown >> 20} MiB over 4 reloads"
    assert glusterlib.pid_alive(pid)


def test_reconfigure_applies_python_thread(managed, tmp_path):
    volume, pid, mnt, _module = enabled_volume(managed, tmp_path, "python-thread=pool")
    assert getxattr(mnt, "user.lc.thread").startswith(b"glupy-py")
    managed.gluster("volume", "set", volume, "user.xlator.glupy.python-thread", "caller")
    on_caller = wait_for(lambda: (lambda name: name if not name.startswith(b"glupy-py") else None)(
        getxattr(mnt, "user.lc.thread")), what="Python on the calling thread")
    assert on_caller.startswith(b"glfs_"), on_caller
    managed.gluster("volume", "set", volume, "user.xlator.glupy.python-thread", "pool")
    wait_for(lambda: getxattr(mnt, "user.lc.thread").startswith(b"glupy-py"), what="back on the pool")


def test_reconfigure_runs_python_on_a_large_stack(managed, tmp_path):
    record = tmp_path / "record.txt"
    volume, pid, mnt, _module = enabled_volume(managed, tmp_path, f"record={record}")
    managed.gluster("volume", "set", volume, "user.xlator.glupy.deep", "reconfigure")
    wait_for(lambda: "reconfigure" in records(record) or not glusterlib.pid_alive(pid),
             what="reconfigure")
    assert glusterlib.pid_alive(pid), "the brick died in reconfigure"
    assert "reconfigure" in records(record)
    assert getxattr(mnt, "user.lc.version") == b"1"



# ------------------------------------------------ values of another graph

def ask_two_graphs(gluster, workdir, asks):
    """Runs gfapi_two_graphs: two volumes of one brick in one gfapi process,
    each with a client-side glupy layer of tests/xlators/cross_graph.py;
    returns {"a NAME": answer} for the getxattrs asked ("a:NAME" or
    "b:NAME"), each read by one glfs_getxattr into a large buffer."""
    brick = gluster.brick()
    volfiles = [gluster.client_volfile(brick, [glupy("cross_graph")], name=name)
                for name in ("xa", "xb")]
    program = workdir / "gfapi_two_graphs"
    subprocess.run(["gcc", "-O1", "-g", "-Wall", "-Werror", "-o", str(program),
                    str(HERE / "gfapi_two_graphs.c"), "-lgfapi"], check=True)
    done = subprocess.run([str(program), *map(str, volfiles), str(workdir / "two.log"), *asks],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines[-1:] == ["done"], (done.returncode, lines, done.stderr)
    answers = {}
    for line in lines[:-1]:
        side, name, size, *value = line.split(" ", 3)
        answers[f"{side} {name}"] = (int(size), value[0] if value else "")
    return answers


def test_a_client_side_getxattr_answer_reaches_a_gfapi_application(gluster, workdir):
    # A translator answers getxattr op_ret = len(value), as posix does on a
    # brick. On a client, protocol/client sends success up as 0, and gfapi's
    # glfs_getxattr takes anything else for a failure: it returned the size
    # and copied nothing into the application's buffer. The host sends it
    # up as 0 there (the status key too, which the host answers itself).
    answers = ask_two_graphs(gluster, workdir, ["a:user.cross.keep", "b:trusted.glupy.status"])
    assert answers["a user.cross.keep"] == (4, "kept"), answers
    size, status = answers["b trusted.glupy.status"]
    assert size == len(status) + 1 and "cross_graph" in status, answers  # its NUL counted


def test_a_value_of_one_graph_is_refused_by_another_in_the_same_process(gluster, workdir):
    # The module keeps a loc, its inode and a Dict of graph a where graph
    # b's instance finds them. Graph b must refuse them (its own inodes are
    # of another table; a's fini frees a's while b would still hold them);
    # graph a itself may use what it kept.
    asks = ["a:user.cross.keep", "b:user.cross.use", "b:user.cross.dict", "a:user.cross.use",
            "a:user.cross.dict"]
    answers = {k: value for k, (_, value) in ask_two_graphs(gluster, workdir, asks).items()}
    assert answers["a user.cross.keep"] == "kept", answers
    assert answers["b user.cross.use"] == "copy:refused:graph,wind:refused:graph", answers
    assert answers["b user.cross.dict"] == "dict:refused:graph", answers
    # The same values in the graph they came from.
    assert answers["a user.cross.use"] == "copy:allowed,wind:allowed", answers
    assert answers["a user.cross.dict"] == "foreign", answers


# ------------------------------------------- the end of a graph and the GIL

def test_the_end_of_a_graph_does_not_wait_for_the_gil_on_glusterfs_thread(gluster, workdir):
    # A Python thread holds the GIL until the brick has seen the client go
    # (it stands for a thread that waits, GIL held, on this graph's end).
    # glfs_fini's PARENT_DOWN must still reach protocol/client: it used to
    # wait for the GIL on GlusterFS's thread, so the client never left and
    # the holder never let go (a deadlock; here the test breaks it).
    brick = gluster.brick()
    fifo, marker = workdir / "gil.fifo", workdir / "gil.held"
    os.mkfifo(fifo)
    volfile = gluster.client_volfile(brick, [glupy("gil_holder", fifo=fifo, marker=marker,
                                                   python_thread="pool")])
    program = workdir / "gfapi_down"
    subprocess.run(["gcc", "-O1", "-g", "-Wall", "-Werror", "-o", str(program),
                    str(HERE / "gfapi_down.c"), "-lgfapi"], check=True)
    log = workdir / "down.log"
    process = subprocess.Popen([str(program), str(volfile), str(log)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    left = False
    try:
        assert glusterlib.wait_until(lambda: lines, 60), "no getxattr answer"
        assert lines[0].startswith("getxattr 4 "), lines  # 4: "held"
        assert glusterlib.wait_until(marker.exists, 60), "the holder did not take the GIL"
        process.stdin.write("go\n")  # glfs_fini
        process.stdin.flush()
        left = glusterlib.wait_until(lambda: "disconnecting connection" in brick.log_text(), 60)
    finally:
        # The holder lets go of the GIL (O_NONBLOCK: never wait for a reader).
        writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        os.write(writer, b"x")
        os.close(writer)
        try:
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    reader.join(10)
    assert left, "PARENT_DOWN waited for the GIL: the client never disconnected"
    assert process.returncode == 0 and any(l.startswith("fini returned") for l in lines), lines
    assert "not waiting for it" in log.read_text()
