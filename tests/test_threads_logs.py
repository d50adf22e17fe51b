"""Where Python runs and where its lines go (issue 11, items 6 and 8): log
lines reach the log of the graph a translator belongs to, on every thread;
faults on the host's threads reach GlusterFS's crash report; events reach a
translator in order."""

import errno
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import glusterlib

HERE = Path(__file__).parent
XLATORS = HERE / "xlators"


def glupy(module, name=None, **options):
    opts = {"module-name": module, "module-path": str(XLATORS)}
    opts.update({k.replace("_", "-"): str(v) for k, v in options.items()})
    return ("features/glupy", opts, name) if name else ("features/glupy", opts)


def build_c(workdir, source):
    """Compiles tests/<source>.c against libgfapi into workdir."""
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the gfapi test program")
    binary = Path(workdir) / source
    subprocess.run(["gcc", "-Wall", "-O1", "-o", str(binary), str(HERE / f"{source}.c"), "-lgfapi"],
                   check=True, capture_output=True, timeout=120)
    return binary


def run_gfapi_logs(binary, instances, paths, settle=1.0, timeout=60):
    """Runs the gfapi program with [(volfile, log)] instances; returns its
    {(instance, path): result} lines."""
    args = [str(binary), "--settle", str(settle)]
    for volfile, log in instances:
        args += [str(volfile), str(log)]
    done = subprocess.run(args + ["--", *paths], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"gfapi_logs failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    results = {}
    for line in done.stdout.splitlines():
        _, n, path, result = line.split()
        results[(int(n), path)] = result
    return results


def traceback_of(log, message):
    """The traceback lines written for the exception `message`: 'Traceback',
    at least one 'File ..., line N, in ...', and the exception line."""
    lines = log.splitlines()
    ends = [i for i, line in enumerate(lines) if line.strip() == f"RuntimeError: {message}"]
    assert ends, f"no 'RuntimeError: {message}' line in the log:\n{glusterlib.tail(log)}"
    end = ends[0]
    start = max(i for i in range(end + 1) if "Traceback (most recent call last):" in lines[i])
    frames = [line for line in lines[start:end] if re.match(r'\s+File ".*", line \d+, in ', line)]
    assert frames, f"no File lines in the traceback:\n{chr(10).join(lines[start:end + 1])}"
    return lines[start:end + 1]


# Where the translator logs its own lines: init (GlusterFS's thread), notify
# (a host job), a fop, a coroutine (the asyncio thread), a thread it starts.
OWN_LINES = ("at init", "at notify", "in lookup", "in a coroutine", "on a Python thread")


@pytest.mark.parametrize("policy", ["pool", "auto"])
def test_each_glfs_instance_gets_its_own_translators_lines(gluster, workdir, policy):
    """Two glfs instances in one gfapi process, each with its own log file and
    a glupy layer of the same name: every line of a translator (its own lines
    from every thread the host runs Python on, the load line, the traceback of
    an exception) reaches the log of its own instance, and only that."""
    binary = build_c(workdir, "gfapi_logs")
    instances = []
    for tag in ("alpha", "beta"):
        brick = gluster.brick(name=f"brick-{tag}")
        layer = glupy("logs_tagged", name="tagged", tag=tag, python_thread=policy)
        volfile = brick.client_volfile(workdir / f"{tag}.vol", [layer], f"client-{tag}")
        instances.append((volfile, workdir / f"{tag}.log"))
    results = run_gfapi_logs(binary, instances, ["/boom", "/async-boom", "/thread-log"])
    for n in (0, 1):
        assert results[(n, "/boom")] == "EIO"
        assert results[(n, "/async-boom")] == "EIO"
        assert results[(n, "/thread-log")] == "ENOENT"
    for (_, log_path), tag, other in ((instances[0], "alpha", "beta"), (instances[1], "beta", "alpha")):
        log = log_path.read_text(errors="replace")
        wanted = ["loaded Python module logs_tagged", "lookup_fop raised; the request is answered EIO",
                  "lookup_fop raised; the request is answered EIO.\nTraceback"]
        wanted += [f"own line {where} from {tag}" for where in OWN_LINES]
        wanted += [f"RuntimeError: boom from {tag}", f"RuntimeError: async boom from {tag}"]
        missing = [line for line in wanted if line not in log]
        assert not missing, f"missing from {log_path.name}: {missing}\n{glusterlib.tail(log)}"
        traceback_of(log, f"boom from {tag}")
        traceback_of(log, f"async boom from {tag}")
        assert f"from {other}" not in log, f"{other}'s lines reached {tag}'s log"


@pytest.mark.parametrize("where", ["here", "coroutine", "thread"])
def test_a_fault_in_python_gets_glusterfs_crash_report(gluster, where):
    """A translator that crashes the brick on one of the host's Python
    threads (python-thread pool), on the asyncio thread, or on a thread it
    started: the brick dies with GlusterFS's crash report in its log
    (gf_print_trace), not silently."""
    brick = gluster.brick([glupy("fault_signal", python_thread="pool")])
    client = gluster.gfapi(brick)
    with pytest.raises(OSError):
        client.stat(f"/segv-{where}")
    assert glusterlib.wait_until(lambda: not brick.alive(), 10), "the brick did not crash"
    log = brick.log_text()
    assert "signal received: 11" in log, glusterlib.tail(log)
    assert "time of crash:" in log
    # gf_print_trace's backtrace (backtrace_symbols_fd lines) follows, then its end mark.
    after = log[log.index("signal received: 11"):]
    # (GlusterFS 11 puts a space before the address: "... (+0x28d44) [0x7f...]".)
    assert re.search(r"^/\S+\(\+0x[0-9a-f]+\) ?\[0x[0-9a-f]+\]$", after, re.M), after[-3000:]
    assert "---------" in after


@pytest.mark.parametrize("lang", [None, "C.UTF-8"])
def test_python_starts_in_utf8_mode_without_touching_the_locale_or_environment(gluster, monkeypatch, lang):
    """Starting Python changes neither the process's environment nor its
    locale (no PEP 538 coercion: setenv/setlocale from a GlusterFS thread race
    every other thread), and Python does not depend on the locale: UTF-8
    mode, UTF-8 file names, whatever LANG the brick was started with."""
    for name in ("LANG", "LC_ALL", "LC_CTYPE", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    if lang:
        monkeypatch.setenv("LANG", lang)
    brick = gluster.brick([glupy("interp_probe")])
    seen = json.loads(gluster.gfapi(brick).getxattr("/", "user.glupy.interp"))
    assert seen["utf8_mode"] == 1
    assert seen["filesystem_encoding"] == "utf-8"
    assert seen["LC_CTYPE"] is None, "Python set LC_CTYPE in the brick's environment"
    assert seen["LC_ALL"] is None
    assert seen["process_ctype_locale"] == glusterfs_locale(lang), "Python changed the process's locale"


def glusterfs_locale(lang):
    """The LC_CTYPE GlusterFS itself sets at start (gf_log_globals_init:
    en_US.UTF-8 if installed, else the environment's)."""
    probe = ("import locale\n"
             "try:\n    print(locale.setlocale(locale.LC_ALL, 'en_US.UTF-8'))\n"
             "except locale.Error:\n    print(locale.setlocale(locale.LC_ALL, ''))\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONCOERCECLOCALE": "0", **({"LANG": lang} if lang else {})}
    return subprocess.run(["/usr/bin/python3", "-c", probe], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_forgets_reach_python_in_the_order_glusterfs_sends_them(gluster):
    """The brick keeps one unused inode (inode-lru-limit 1), so each mkdir
    makes it forget the directory made before: forgets come in the order
    the directories were made. The translator's first forget is slow; the
    others must wait for it, not overtake it on another thread."""
    brick = gluster.brick([glupy("events_order")], server_options={"inode-lru-limit": 1})
    client = gluster.gfapi(brick)
    names = [f"d{n:03}" for n in range(24)]
    for name in names:
        client.mkdir(f"/{name}")
        # The brick drops its last reference to a directory just after
        # answering; the pause keeps the brick's own forget order that of the
        # mkdirs (all but the first forget still come while it sleeps).
        time.sleep(0.03)

    def forgotten():
        return json.loads(client.getxattr("/", "user.glupy.forgotten"))

    # Every directory but the last one is forgotten (it is the one kept).
    assert glusterlib.wait_until(lambda: len(forgotten()) >= len(names) - 1, 20), forgotten()
    assert forgotten()[:len(names) - 1] == names[:-1]


def test_python_called_on_a_small_fibre_stack_gets_a_stack_of_its_own(gluster, workdir):
    """An application calls gfapi from a ucontext fibre with a 64 KiB stack;
    the client-side translator recurses deeply in Python. Python must run
    on a stack of its own: RecursionError, answered EIO, and the process
    lives (on the fibre's stack it would crash)."""
    binary = build_c(workdir, "gfapi_fiber")
    brick = gluster.brick()
    volfile = brick.client_volfile(workdir / "fiber.vol", [glupy("behaviour")], "fiber")
    log = workdir / "fiber.log"
    done = subprocess.run([str(binary), str(volfile), str(log), "/", "user.glupy.deep"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (f"the application died ({done.returncode}):\n{done.stderr}\n"
                                  f"{glusterlib.tail(log.read_text(errors='replace'))}")
    assert done.stdout.split() == ["getxattr", "-1", "EIO"], done.stdout
    assert "RecursionError" in log.read_text(errors="replace")


def test_log_lines_with_names_that_are_not_utf8_reach_the_log(gluster):
    # Python gets a name's undecodable bytes as lone surrogates; a log line
    # (self.log, another logger, print) or a traceback that carries one was
    # dropped whole, as the host could not take it as text. The bytes now
    # show as \udcXX escapes.
    brick = gluster.brick([glupy("log_names")])
    client = gluster.gfapi(brick)
    odd = "\udcff\udcfe"  # the bytes 0xff 0xfe, as Python decodes a name
    with pytest.raises(FileNotFoundError):
        client.stat(f"/log-{odd}")
    with pytest.raises(OSError) as raised:
        client.stat(f"/log-raise-{odd}")
    assert raised.value.errno == errno.EIO
    client.write_file(f"/log-file-{odd}", b"x")
    with pytest.raises(OSError) as raised:
        client.getxattr(f"/log-file-{odd}", "user.log")
    assert raised.value.errno == errno.EIO
    escaped = "\\udcff\\udcfe"
    expected = [f"self.log says log-{escaped}", f"a logger says log-{escaped}",
                f"print says log-{escaped}", f"ValueError: sync raised log-raise-{escaped}",
                f"ValueError: async raised /log-file-{escaped}"]
    assert glusterlib.wait_until(lambda: all(e in brick.log_text() for e in expected), 10), [
        e for e in expected if e not in brick.log_text()]
    # Each exception with its traceback.
    assert brick.log_text().count("Traceback (most recent call last)") >= 2
