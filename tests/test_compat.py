"""Glupy 1 translators (gluster.glupy, GlusterFS 3.5-5.x style) run unchanged
in real bricks, driven by gfapi and FUSE clients."""

import errno
import json
import os
import re
import stat
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

import glusterlib

HERE = Path(__file__).parent
XLATORS = HERE / "xlators"
CHECKOUT_PYTHON = HERE.parent / "python"
COMPAT_SOURCE = CHECKOUT_PYTHON / "gluster" / "glupy" / "__init__.py"
PYTHON = "/usr/bin/python3"  # the interpreter glupy.so embeds

IA_IFREG = 1  # ia_type_t in GlusterFS 10.3 (iatt.h)


def glupy(module, path=XLATORS, name=None, **options):
    opts = {"module-name": module, "module-path": str(path)}
    opts.update({k.replace("_", "-"): str(v) for k, v in options.items()})
    return ("features/glupy", opts, name) if name else ("features/glupy", opts)


def glupy_section(dump, name):
    return glusterlib.statedump_sections(dump)[f"xlator.features.glupy.{name}.priv"]


def run_python(code, pythonpath=CHECKOUT_PYTHON):
    """Runs code in Debian's python3 with the checkout's packages; its stdout."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run([PYTHON, "-c", textwrap.dedent(code)], env=env, cwd="/",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def installed_compat():
    """Bricks import the installed gluster.glupy: it must be this checkout's."""
    where = run_python("import gluster.glupy; print(gluster.glupy.__file__)", None).strip()
    if Path(where).read_bytes() != COMPAT_SOURCE.read_bytes():
        pytest.fail(f"{where} is not {COMPAT_SOURCE}: run 'make install'", pytrace=False)


# ------------------------------------------------------ outside GlusterFS


def test_dl_has_wind_and_unwind_for_every_glupy1_fop():
    found = json.loads(run_python("""
        import json
        import glupy
        from gluster.glupy import dl
        print(json.dumps({
            fop: [callable(getattr(dl, "wind_" + fop, None)),
                  callable(getattr(dl, "unwind_" + fop, None))]
            for fop in glupy.GLUPY_V1_FOPS
        }))
    """))
    assert len(found) == 23
    missing = [fop for fop, (wind, unwind) in found.items() if not (wind and unwind)]
    assert not missing, f"dl lacks wind_/unwind_ for {missing}"


def test_old_helpers_and_names_are_there_for_import_star():
    out = run_python("""
        from gluster.glupy import *
        dl.get_id.restype = c_long          # Glupy 1 code declares these;
        dl.get_id.argtypes = [POINTER(call_frame_t)]   # they must not fail
        print(sizeof(loc_t), sizeof(iatt_t), IA_IFREG, callable(dl.get_rootunique))
        try:
            dl.set_lookup_fop
        except AttributeError as e:
            print("error:", e)
    """)
    lines = out.splitlines()
    assert lines[0] == f"64 152 {IA_IFREG} True"
    assert lines[1].startswith("error: gluster.glupy.dl has no 'set_lookup_fop'")


def test_wrapped_methods_keep_their_arity_for_the_hosts_check():
    out = run_python("""
        from glupy import _host
        from gluster.glupy import *

        class xlator(Translator):
            def __init__(self, c_this):
                Translator.__init__(self, c_this)
            def lookup_fop(self, frame, this, loc, xdata):
                return 0
            def create_cbk(self, frame, cookie, this, op_ret, op_errno, fd, inode):
                return 0   # four arguments short

        def stat_fop(self, frame, this, loc, xdata):
            return 0
        xlator.stat_fop = stat_fop   # assigned late: Glupy 1 registered these too

        found, problems = _host.check_class(xlator)
        print(sorted(found))
        print(problems)
        print(getattr(xlator.stat_fop, "_glupy1_wrapped", False))
    """)
    found, problems, late_wrapped = out.splitlines()
    assert found == "['lookup', 'stat']"
    assert "create_cbk(self, frame, cookie, this, op_ret, op_errno, fd, inode) takes 8" in problems
    assert late_wrapped == "True"


# ------------------------------------------------------------ real bricks


def test_hello_world_prints_to_the_log_and_passes_data_through(gluster, installed_compat,
                                                                assert_log_clean):
    brick = gluster.brick([glupy("glupy1_hello")])
    client = gluster.gfapi(brick)
    data = os.urandom(2 * 1024 * 1024 + 5)
    client.write_file("/hello.bin", data)
    assert client.read_file("/hello.bin") == data
    mount = gluster.mount(brick)
    assert (mount.mountpoint / "hello.bin").read_bytes() == data
    (mount.mountpoint / "fuse.bin").write_bytes(data[::-1])
    assert client.read_file("/fuse.bin") == data[::-1]
    with pytest.raises(FileNotFoundError):
        client.stat("/not-here")

    log = brick.log_text()
    hellos = re.findall(r"Python xlator: Hello! path=(\S+) id=(\d+) unique=(\d+)", log)
    again = re.findall(r"Python xlator: Hello again! op_ret=(-?\d+) op_errno=(\d+) "
                       r"size=(-?\d+) id=(\d+)", log)
    assert {"/hello.bin", "/fuse.bin", "/not-here"} <= {path for path, _, _ in hellos}
    # The iatt read through ctypes is the file's; a miss is ENOENT.
    assert ("0", "0", str(len(data))) in {(r, e, s) for r, e, s, _ in again}
    assert ("-1", str(errno.ENOENT)) in {(r, e) for r, e, _, _ in again}
    # get_id is the same in a request's fop and its callback, and differs
    # between requests in flight at once: the callbacks of four lookups
    # held together each name the path of their own fop.
    sizes = {f"/sized-{n}": 1000 + n for n in range(4)}
    for path, size in sizes.items():
        client.write_file(path, b"s" * size)
    with pytest.raises(FileNotFoundError):
        client.stat("/hold-next")
    fresh = gluster.gfapi(brick)  # no cached inodes: every stat is a lookup
    stats = {}
    askers = [threading.Thread(target=lambda p=path: stats.update({p: fresh.stat(p).st_size}))
              for path in sizes]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(20)
    assert stats == sizes
    paired = re.findall(r"Hello again! op_ret=0 op_errno=0 size=(\d+) id=\d+ path=(\S+)",
                        brick.log_text())
    held = [(path, int(size)) for size, path in paired if path in sizes]
    assert {path for path, _ in held} == set(sizes), paired
    assert all(size == sizes[path] for path, size in held), held
    assert len({int(u) for _, _, u in hellos}) > 1, "get_rootunique gave one number"
    section = glupy_section(brick.statedump(), brick.layer_names[0])
    assert sorted(section["registered"].split()) == [
        "lookup(fop,cbk)", "readv(fop,cbk)", "writev(fop,cbk)"]
    assert_log_clean(log)


def test_negative_cache_answers_enoent_without_reaching_the_brick(gluster, installed_compat,
                                                                   assert_log_clean):
    # passall below counts the lookups of each name that get past the cache.
    brick = gluster.brick([glupy("passall", name="below"),
                           glupy("glupy1_negative", name="negcache")])
    client = gluster.gfapi(brick)
    client.mkdir("/d")
    for _ in range(4):
        with pytest.raises(FileNotFoundError):
            client.stat("/d/ghost")
    below = glupy_section(brick.statedump(), "below")
    assert int(below["python.lookup:ghost"]) == 1
    assert int(glupy_section(brick.statedump(), "negcache")["python.hits"]) >= 3

    # Made through another client (FUSE) after it was cached: seen at once.
    mount = gluster.mount(brick)
    data = os.urandom(100_000)
    (mount.mountpoint / "d" / "ghost").write_bytes(data)
    assert client.stat("/d/ghost").st_size == len(data)
    assert client.read_file("/d/ghost") == data
    # And through the same client, with mkdir.
    with pytest.raises(FileNotFoundError):
        client.stat("/d/later")
    client.mkdir("/d/later")
    assert stat.S_ISDIR(client.stat("/d/later").st_mode)
    assert_log_clean(brick.log_text())


def test_flow_logger_writes_a_json_line_per_fop_naming_its_path(gluster, installed_compat,
                                                                 workdir, assert_log_clean):
    flow_log = workdir / "flow.jsonl"
    brick = gluster.brick([glupy("glupy1_flow", flow_log=flow_log)])
    client = gluster.gfapi(brick)
    started = time.time()
    client.mkdir("/flow")
    data = os.urandom(300_000)
    client.write_file("/flow/a.txt", data)
    assert client.read_file("/flow/a.txt") == data
    client.setxattr("/flow/a.txt", "user.k", b"v")
    assert client.getxattr("/flow/a.txt", "user.k") == b"v"
    client.removexattr("/flow/a.txt", "user.k")
    # No attribute caching: the kernel's second getattr becomes a stat fop
    # (before the hard link, which would give the inode a second path).
    mount = gluster.mount(brick, extra_args=("--attribute-timeout=0",))
    for _ in range(2):
        assert os.stat(mount.mountpoint / "flow" / "a.txt").st_size == len(data)
    client.symlink("a.txt", "/flow/soft")
    assert client.readlink("/flow/soft") == "a.txt"
    client.link("/flow/a.txt", "/flow/hard")
    client.statvfs("/flow")
    assert sorted(client.readdir("/flow")) == ["a.txt", "hard", "soft"]
    for name in ("soft", "hard", "a.txt"):
        client.unlink("/flow/" + name)
    client.rmdir("/flow")

    records = [json.loads(line) for line in flow_log.read_text().splitlines()]
    seen = {(r["operation"], r["path"]) for r in records}
    expected = {("mkdir", "/flow"), ("create", "/flow/a.txt"), ("open", "/flow/a.txt"),
                ("setxattr", "/flow/a.txt"), ("getxattr", "/flow/a.txt"),
                ("removexattr", "/flow/a.txt"), ("symlink", "/flow/soft"),
                ("readlink", "/flow/soft"), ("link", "/flow/hard"), ("statfs", "/flow"),
                ("opendir", "/flow"), ("stat", "/flow/a.txt"), ("lookup", "/flow/a.txt"),
                ("unlink", "/flow/soft"), ("unlink", "/flow/hard"),
                ("unlink", "/flow/a.txt"), ("rmdir", "/flow")}
    assert expected <= seen, f"not logged: {sorted(expected - seen)}"
    assert {r["operation"] for r in records} <= {
        "lookup", "create", "open", "opendir", "stat", "statfs", "setxattr", "getxattr",
        "removexattr", "link", "symlink", "unlink", "readlink", "mkdir", "rmdir"}
    link = next(r for r in records if r["operation"] == "link")
    assert link["source"] == "/flow/a.txt"
    for r in records:
        assert r["host"] and started - 1 <= r["start"] <= time.time()
        assert type(r["id"]) is int and r["id"] > 0
        assert type(r["unique"]) is int
    assert len({r["unique"] for r in records}) > 10
    assert_log_clean(brick.log_text())


def test_passing_on_a_pointer_the_request_never_got_is_a_clear_error(gluster, workdir,
                                                                     installed_compat):
    modules = workdir / "modules"
    modules.mkdir()
    (modules / "glupy1_bad.py").write_text(textwrap.dedent("""
        from gluster.glupy import *

        class xlator(Translator):
            def lookup_fop(self, frame, this, loc, xdata):
                if loc.contents.name == b"forged":
                    dl.wind_lookup(frame, POINTER(xlator_t)(), pointer(loc_t()), xdata)
                else:
                    dl.wind_lookup(frame, POINTER(xlator_t)(), loc, xdata)
                return 0
    """))
    brick = gluster.brick([glupy("glupy1_bad", path=modules)])
    client = gluster.gfapi(brick)
    with pytest.raises(OSError) as e:
        client.stat("/forged")
    assert e.value.errno == errno.EIO
    assert "argument 'loc'" in brick.log_text()
    assert "is not a value this request was given" in brick.log_text()
    client.write_file("/fine", b"ok")
    assert client.read_file("/fine") == b"ok"


def glupy1_passthrough_source():
    """A Glupy 1 translator with every one of its 23 fops and callbacks spelt
    out as its users wrote them; it notes the ctypes types it was given."""
    fops = json.loads(run_python("""
        import json, glupy
        print(json.dumps({f: glupy.FOPS[f][:2] for f in glupy.GLUPY_V1_FOPS}))
    """))
    methods = ""
    for fop, (args, cbk_args) in fops.items():
        a, c = ", ".join(args), ", ".join(cbk_args)
        methods += f"""
    def {fop}_fop(self, frame, this, {a}):
        self.note("{fop}_fop", ({a},))
        dl.wind_{fop}(frame, POINTER(xlator_t)(), {a})
        return 0

    def {fop}_cbk(self, frame, cookie, this, op_ret, op_errno, {c}):
        self.note("{fop}_cbk", ({c},))
        dl.unwind_{fop}(frame, cookie, this, op_ret, op_errno, {c})
        return 0
"""
    return textwrap.dedent("""
        import collections
        import threading

        from gluster.glupy import *


        class xlator(Translator):
            def __init__(self, c_this):
                Translator.__init__(self, c_this)
                self.lock = threading.Lock()
                self.seen = collections.Counter()
                self.types = {}

            def note(self, method, args):
                with self.lock:
                    self.seen[method] += 1
                    self.types[method] = " ".join(type(a).__name__ for a in args)

            def dump(self):
                with self.lock:
                    return {**self.seen, **{"types." + k: v for k, v in self.types.items()}}
    """) + methods, len(fops)


def test_all_23_glupy1_fops_round_trip_through_ctypes_values(gluster, workdir, installed_compat,
                                                             assert_log_clean):
    source, count = glupy1_passthrough_source()
    assert count == 23
    modules = workdir / "modules"
    modules.mkdir()
    (modules / "glupy1_all.py").write_text(source)
    brick = gluster.brick([glupy("glupy1_all", path=modules)])
    c = gluster.gfapi(brick)

    c.mkdir("/d")
    data = os.urandom(200_000)
    f = c.creat("/d/f")
    f.write_all(data)
    f.fsetxattr("user.f", b"fv")
    assert f.fgetxattr("user.f") == b"fv"
    f.fremovexattr("user.f")
    assert f.fstat().st_size == len(data)
    f.close()
    assert c.read_file("/d/f") == data
    c.setxattr("/d/f", "user.p", b"pv")
    assert c.getxattr("/d/f", "user.p") == b"pv"
    c.removexattr("/d/f", "user.p")
    c.symlink("f", "/d/soft")
    assert c.readlink("/d/soft") == "f"
    c.link("/d/f", "/d/hard")
    assert c.statvfs("/").f_bsize > 0
    assert sorted(c.readdir("/d")) == ["f", "hard", "soft"]
    assert sorted(n for n, _ in c.readdirplus("/d")) == ["f", "hard", "soft"]
    mount = gluster.mount(brick, extra_args=("--attribute-timeout=0",))
    for _ in range(2):  # the second getattr is a stat fop
        assert (mount.mountpoint / "d" / "f").stat().st_size == len(data)
    for name in ("soft", "hard", "f"):
        c.unlink("/d/" + name)
    c.rmdir("/d")

    section = glupy_section(brick.statedump(), brick.layer_names[0])
    fops = [m[len("python.types."):-4] for m in section if m.startswith("python.types.")
            and m.endswith("_fop")]
    unreached = [f"{fop}_{side}" for fop in fops for side in ("fop", "cbk")
                 if int(section.get(f"python.{fop}_{side}", 0)) == 0]
    assert len(fops) == 23 and not unreached, f"reached {sorted(fops)}; not {unreached}"
    types = {k[len("python.types."):]: v.split() for k, v in section.items()
             if k.startswith("python.types.")}
    assert types["lookup_fop"] == ["LP_loc_t", "LP_dict_t"]
    assert types["lookup_cbk"][:2] == ["LP_inode_t", "LP_iatt_t"]
    assert types["getxattr_fop"][1] == "bytes"
    assert types["statfs_cbk"][0] == "LP_statvfs_t"
    assert types["readv_cbk"][:2] == ["LP_iovec_t", "int"]
    assert types["create_fop"][-2:] == ["LP_fd_t", "LP_dict_t"]
    assert_log_clean(brick.log_text())
