"""glupy in glusterd-managed volumes (issue 5): bricks through `gluster volume
set user.xlator.glupy`, clients through the glusterd volfile filter, and the
`glupy` command that drives both.

The managed tests run a glusterd of their own: working, run and log
directories in the test's temp dir, listening on port 24007 (glusterd gives
bricks no other port to fetch their volfile from) of a loopback address no
one else uses (127.a.b.c), with bricks on ports 24100-24999 of that address.
Every brick, self-heal daemon and mount it started is stopped afterwards.
The client-side tests need the filter installed where glusterd runs filters
(`make install`); they check that the installed copy is this checkout's.
"""

import errno
import filecmp
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import glusterlib

HERE = Path(__file__).parent
REPO = HERE.parent
XLATORS = HERE / "xlators"
PYTHON = "/usr/bin/python3"
GLUPY_CMD = [PYTHON, str(REPO / "bin" / "glupy")]
GLUPY_ENV = {**os.environ, "PYTHONPATH": str(REPO / "python")}
GLUSTERD_PORT = 24007
BRICK_PORTS = (24100, 24999)
FILTER_SOURCE = REPO / "filter" / "glupy-filter"
VOLFILTER_SOURCE = REPO / "python" / "glupy" / "volfilter.py"
SKIP_SLOW = os.environ.get("GLUPY_SKIP_SLOW") == "1"
RUN_GLUSTER = Path("/var/run/gluster")  # glusterd's bricks put their -S sockets here
# glfsheal (run by `gluster volume heal V granular-entry-heal enable`, which
# glupy disable needs on replicated volumes) ignores --glusterd-sock and
# always connects to /var/run/glusterd.socket (/var/run is /run): the glupy
# command runs in a mount namespace of its own where that is our glusterd's.
DEFAULT_GLUSTERD_SOCK_DIR = Path("/run")

sys.path.insert(0, str(REPO / "python"))
from glupy import cli, volfilter  # noqa: E402  (the checkout's, not the installed copy)


def assert_each_replaced_instance_finished_once(log, volume):
    """Every load after the first replaced an instance, whose fini() ran
    once (a pool-wide change is two `volume set`s, which a process may see
    as two reloads)."""
    loads = log.count("loaded Python module behaviour")
    finis = log.count(f"fini of behaviour in {volume}-glupy")
    assert loads >= 2 and finis == loads - 1, (loads, finis)


def run_glupy(*args, check=True, prefix=()):
    done = subprocess.run([*prefix, *GLUPY_CMD, *map(str, args)], capture_output=True, text=True,
                          env=GLUPY_ENV, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"glupy {' '.join(map(str, args))} failed ({done.returncode}):\n"
                             f"{done.stdout}{done.stderr}")
    return done


# ------------------------------------------------------------ the filter alone

FUSE_VOLFILE = """\
volume vv-client-0
    type protocol/client
    option remote-subvolume /bricks/b0
    option remote-host 127.0.0.9
end-volume

volume vv-client-1
    type protocol/client
    option remote-subvolume /bricks/b1
    option remote-host 127.0.0.9
end-volume

volume vv-dht
    type cluster/distribute
    subvolumes vv-client-0 vv-client-1
end-volume

volume vv-write-behind
    type performance/write-behind
    subvolumes vv-dht
end-volume

volume vv-md-cache
    type performance/md-cache
    subvolumes vv-write-behind
end-volume

volume vv
    type debug/io-stats
    option log-level INFO
    subvolumes vv-md-cache
end-volume
"""


def entry(module="negative", position="top", **options):
    return volfilter.ClientEntry(module, position, {k.replace("_", "-"): v for k, v in options.items()})


def blocks_by_name(text):
    return {b.name: b for b in volfilter.parse_blocks(text.splitlines())}


def test_filter_puts_glupy_below_the_top_translator():
    text = volfilter.filter_text(FUSE_VOLFILE, "vv", entry(cache_timeout="30"))
    blocks = blocks_by_name(text)
    glupy = blocks["vv-glupy"]
    assert glupy.type == "features/glupy"
    assert glupy.options == {"module-name": "negative", "cache-timeout": "30"}
    assert glupy.subvolumes == ["vv-md-cache"]
    assert blocks["vv"].subvolumes == ["vv-glupy"]
    # Defined after its child and before its parent, as volfiles require.
    assert text.index("volume vv-md-cache") < text.index("volume vv-glupy") < text.index("volume vv\n")


def test_filter_is_idempotent_and_exactly_reversible():
    once = volfilter.filter_text(FUSE_VOLFILE, "vv", entry())
    assert volfilter.filter_text(once, "vv", entry()) == once
    assert volfilter.filter_text(once, "vv", None) == FUSE_VOLFILE
    assert volfilter.filter_text(FUSE_VOLFILE, "vv", None) == FUSE_VOLFILE
    # A changed configuration replaces the block instead of adding one.
    moved = volfilter.filter_text(once, "vv", entry("other", "dht"))
    assert [b.name for b in volfilter.parse_blocks(moved.splitlines())].count("vv-glupy") == 1
    assert volfilter.filter_text(moved, "vv", None) == FUSE_VOLFILE


@pytest.mark.parametrize("position", ["write-behind", "performance/write-behind", "vv-write-behind"])
def test_filter_position_by_type_or_name(position):
    blocks = blocks_by_name(volfilter.filter_text(FUSE_VOLFILE, "vv", entry(position=position)))
    assert blocks["vv-glupy"].subvolumes == ["vv-write-behind"]
    assert blocks["vv-md-cache"].subvolumes == ["vv-glupy"]


@pytest.mark.parametrize("position, message", [
    ("client", "matches 2 translators"),
    ("nl-cache", "matches no translator"),
    ("io-stats", "must stay on top"),
])
def test_filter_refuses_positions_it_cannot_place(position, message):
    with pytest.raises(volfilter.VolfileError, match=message):
        volfilter.filter_text(FUSE_VOLFILE, "vv", entry(position=position))


@pytest.mark.parametrize("raw, message", [
    ({"position": "top"}, "module"),
    ({"module": "m", "options": {"greeting": "two words"}}, "without spaces"),
    ({"module": "m", "options": {"module-name": "x"}}, "not as option module-name"),
    ({"module": "m", "colour": "blue"}, "unknown keys"),
    ({"module": "no-such/module"}, "not a Python module name"),
])
def test_filter_config_is_checked(raw, message):
    with pytest.raises(volfilter.ConfigError, match=message):
        volfilter.parse_config(json.dumps({"volumes": {"vv": raw}}))


def fake_glusterd_dir(root, config):
    """<root>/vols/vv with a fuse volfile, its trusted twin and a brick volfile."""
    vols = root / "vols" / "vv"
    vols.mkdir(parents=True)
    for name in ("vv.tcp-fuse.vol", "trusted-vv.tcp-fuse.vol", "vv.127.0.0.9.bricks-b0.vol"):
        (vols / name).write_text(FUSE_VOLFILE)
        (vols / name).chmod(0o600)
    (root / "glupy-filter.conf").write_text(json.dumps(config))
    return vols


def run_installed_filter(volfile):
    return subprocess.run([str(installed_filter_path()), str(volfile)], capture_output=True,
                          text=True, timeout=60)


def installed_filter_path():
    xlatordir = subprocess.run(["glusterfs", "--print-xlatordir"], capture_output=True,
                               text=True, check=True).stdout.strip()
    return Path(xlatordir).parent / "filter" / "glupy-filter"


@pytest.fixture(scope="session")
def installed_filter():
    """The filter glusterd runs, checked to be this checkout's."""
    path = installed_filter_path()
    spec = subprocess.run([PYTHON, "-I", "-c", "import glupy, os; print(os.path.dirname(glupy.__file__))"],
                          capture_output=True, text=True)
    package = Path(spec.stdout.strip())
    stale = [what for what, installed, source in (
        ("filter", path, FILTER_SOURCE),
        ("glupy/volfilter.py", package / "volfilter.py", VOLFILTER_SOURCE))
        if not installed.exists() or not filecmp.cmp(installed, source, shallow=False)]
    if stale or not os.access(path, os.X_OK):
        pytest.fail(f"installed {', '.join(stale) or 'filter'} missing or not this checkout's: "
                    f"run make install", pytrace=False)
    return path


def test_installed_filter_edits_only_the_fuse_volfiles_of_configured_volumes(tmp_path, installed_filter):
    vols = fake_glusterd_dir(tmp_path, {"volumes": {"vv": {"module": "negative"}}})
    for name in ("vv.tcp-fuse.vol", "trusted-vv.tcp-fuse.vol"):
        assert run_installed_filter(vols / name).returncode == 0
        once = (vols / name).read_text()
        assert "vv-glupy" in blocks_by_name(once)
        assert (vols / name).stat().st_mode & 0o777 == 0o600
        assert run_installed_filter(vols / name).returncode == 0
        assert (vols / name).read_text() == once, "running the filter twice changed the file"
    brick = vols / "vv.127.0.0.9.bricks-b0.vol"
    assert run_installed_filter(brick).returncode == 0
    assert brick.read_text() == FUSE_VOLFILE
    (tmp_path / "glupy-filter.conf").write_text("{}")
    assert run_installed_filter(vols / "vv.tcp-fuse.vol").returncode == 0
    assert (vols / "vv.tcp-fuse.vol").read_text() == FUSE_VOLFILE


def test_installed_filter_fails_cleanly_on_a_bad_config(tmp_path, installed_filter):
    vols = fake_glusterd_dir(tmp_path, {"volumes": {"vv": {"module": "m", "position": "nowhere"}}})
    done = run_installed_filter(vols / "vv.tcp-fuse.vol")
    assert done.returncode == 1
    assert "position 'nowhere' matches no translator" in done.stderr
    assert (vols / "vv.tcp-fuse.vol").read_text() == FUSE_VOLFILE
    (tmp_path / "glupy-filter.conf").write_text("{not json")
    done = run_installed_filter(vols / "vv.tcp-fuse.vol")
    assert done.returncode == 1 and "not valid JSON" in done.stderr


# ------------------------------------------------------------- glupy check

def write_module(directory, name, source):
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_check_accepts_a_good_module_and_lists_what_it_handles():
    done = run_glupy("check", XLATORS / "behaviour.py", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "getxattr (fop+cbk)" in done.stdout and "lookup (fop+cbk)" in done.stdout
    assert "hooks: reconfigure" in done.stdout
    assert "ok: init would accept it" in done.stdout


@pytest.mark.parametrize("source, message", [
    ("import glupy\nclass Xlator(glupy.Translator):\n    pass\n", "defines no class named xlator"),
    ("import glupy\nclass xlator:\n    pass\n", "must be a class deriving from glupy.Translator"),
    ("import glupy\nclass xlator(glupy.Translator):\n"
     "    def lookup_fop(self, frame, loc, xdata):\n        frame.wind(loc, xdata)\n",
     "takes 4 arguments, but GlusterFS calls it with 5"),
    ("import glupy\nclass xlator(glupy.Translator):\n"
     "    def lokup_fop(self, frame, this, loc, xdata):\n        pass\n",
     "no fop 'lokup' (did you mean lookup_fop?)"),
    ("import glupy\nclass xlator(glupy.Translator):\n"
     "    def lookup_callback(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, pp):\n"
     "        pass\n",
     "method lookup_callback is never called: did you mean lookup_cbk?"),
    ("import glupy\nclass xlator(glupy.Translator):\n"
     "    def reconfig(self, options):\n        pass\n",
     "method reconfig is never called: did you mean reconfigure?"),
    ("import glupy\nclass xlator(glupy.Translator):\n    def lookup_fop(self\n",
     "syntax error"),
])
def test_check_reports_what_init_would_refuse(tmp_path, source, message):
    path = write_module(tmp_path / "modules", "candidate", source)
    done = run_glupy("check", path, check=False)
    assert done.returncode == 1, done.stdout
    assert message in done.stdout


def test_check_refuses_a_directory_others_can_write(tmp_path):
    path = write_module(tmp_path / "open", "fine", "import glupy\nclass xlator(glupy.Translator):\n    pass\n")
    path.parent.chmod(0o777)
    done = run_glupy("check", path, check=False)
    assert done.returncode == 1 and f"run 'chmod g-w,o-w {path.parent}'" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--position", "io-stats"], "never come online"),
    (["--position", "server"], "not a brick position"),
    (["-o", "cache.timeout=3"], "without dots"),
    (["-o", "greeting"], "expected KEY=VALUE"),
    (["-o", "module-name=other"], "set by glupy itself"),
])
def test_enable_refuses_what_glusterd_or_the_bricks_would_break_on(args, message):
    # Refused before glusterd is asked anything: no glusterd runs here.
    done = run_glupy("--glusterd-sock=/nonexistent", "enable", "vv", "behaviour", "--no-check",
                     *args, check=False)
    assert done.returncode == 1
    assert message in done.stderr


# ------------------------------------------------------------ a real glusterd

def unused_loopback_address():
    """127.a.b.c where port 24007 is free (and so, most likely, all of it)."""
    for _attempt in range(50):
        address = f"127.{random.randint(64, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        with socket.socket() as probe:
            try:
                probe.bind((address, GLUSTERD_PORT))
            except OSError:
                continue
        return address
    raise glusterlib.GlusterError("no loopback address with port 24007 free")


class PidProcess:
    """The bits of Popen that glusterlib.take_statedump uses, for a pid we did not spawn."""

    def __init__(self, pid):
        self.pid, self.returncode = pid, None

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def poll(self):
        return None if glusterlib.pid_alive(self.pid) else 1


class ManagedMount(glusterlib.FuseMount):
    """A FUSE client that fetches its volfile from glusterd."""

    def __init__(self, server, volume, mountpoint, log_file, hostname=None):
        super().__init__(os.devnull, mountpoint, log_file)
        self.server, self.volume, self.hostname = server, volume, hostname

    def mount(self, timeout=glusterlib.START_TIMEOUT):
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        command = [glusterlib.GLUSTERFS, "-N", f"--volfile-server={self.server}",
                   f"--volfile-id={self.volume}", "-l", str(self.log_file), "-L", "INFO",
                   str(self.mountpoint)]
        if self.hostname:
            # As if on another host: a UTS namespace of its own, with its own
            # host name (the same pid: unshare and sh exec).
            command = ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"',
                       self.hostname, *command]
        self.process = glusterlib.spawn(command, self.output_file, cwd=self.log_file.parent)
        if glusterlib.wait_until(self._usable_or_dead, timeout) != "usable":
            log = self.describe()
            self.unmount()
            raise glusterlib.GlusterError(f"mount of {self.volume} not usable\n{log}")
        return self


class Glusterd:
    """An isolated glusterd (see the module docstring) and what it starts."""

    def __init__(self, root, address=None):
        self.root = Path(root)
        self.address = address or unused_loopback_address()
        self.workdir, self.rundir, self.logdir = (self.root / d for d in ("wd", "run", "log"))
        self.sock = self.rundir / "glusterd.socket"
        self.dump_dir = self.root / "dumps"
        self.process = None
        self.mounts, self.volumes = [], []
        self.sockets_before = set()
        self.launcher = []  # a command prefix glusterd runs under (test_brickmux's)

    def start(self):
        self.sockets_before = set(RUN_GLUSTER.glob("*.socket"))
        for directory in (self.workdir, self.rundir, self.logdir, self.dump_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # The client filter reads this one, not /etc/glusterfs/glupy-filter.conf.
        (self.workdir / volfilter.LOCAL_CONFIG_NAME).write_text("{}\n")
        volfile = self.root / "glusterd.vol"
        volfile.write_text(textwrap.dedent(f"""\
            volume management
                type mgmt/glusterd
                option working-directory {self.workdir}
                option run-directory {self.rundir}
                option logging-directory {self.logdir}
                option glusterd-sockfile {self.sock}
                option transport-type socket
                option transport.socket.listen-port {GLUSTERD_PORT}
                option transport.socket.bind-address {self.address}
                option transport.address-family inet
                option base-port {BRICK_PORTS[0]}
                option max-port {BRICK_PORTS[1]}
                option ping-timeout 0
                option event-threads 1
                # Without keepalive settings glusterd 10.3 fails every peer
                # probe ("connect returned -2": the last missing option's
                # error is returned), as Debian's glusterd.vol sets them.
                option transport.socket.keepalive-time 10
                option transport.socket.keepalive-interval 2
            end-volume
            """))
        self.process = glusterlib.spawn(
            [*self.launcher, "glusterd", "-N", "-f", str(volfile), "-l", str(self.logdir / "glusterd.log")],
            self.root / "glusterd.out", cwd=self.root)
        if not glusterlib.wait_until(self._answers, glusterlib.START_TIMEOUT, interval=0.2):
            raise glusterlib.GlusterError(f"glusterd did not start\n{self.log_tail()}")
        return self

    def own_default_sock(self):
        """A command prefix: run in a private mount namespace whose /run holds
        only glusterd.socket (this glusterd's) and gluster/ (the machine's
        /run/gluster, where processes write their statedumps), whoever owns
        the machine's /run/glusterd.socket."""
        view = self.root / "run-view"
        (view / "gluster").mkdir(parents=True, exist_ok=True)
        if not (view / "glusterd.socket").is_symlink():
            (view / "glusterd.socket").symlink_to(self.sock)
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                '{ [ ! -d "$1/gluster" ] || mount --bind "$1/gluster" "$0/gluster"; } && '
                'mount --rbind "$0" "$1" && shift && exec "$@"', str(view),
                str(DEFAULT_GLUSTERD_SOCK_DIR)]

    def _answers(self):
        if self.process.poll() is not None:
            raise glusterlib.GlusterError(f"glusterd exited\n{self.log_tail()}")
        return self.sock.exists() and self.gluster("volume", "list", check=False).returncode == 0

    def log_tail(self):
        return (glusterlib.tail(glusterlib.read_text(self.logdir / "glusterd.log"))
                + glusterlib.read_text(self.root / "glusterd.out"))

    def gluster(self, *args, check=True):
        done = subprocess.run(["gluster", "--mode=script", f"--glusterd-sock={self.sock}",
                               *map(str, args)], capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise glusterlib.GlusterError(f"gluster {' '.join(map(str, args))}: "
                                          f"{done.stdout}{done.stderr}")
        return done

    def glupy(self, *args, check=True):
        return run_glupy(f"--glusterd-sock={self.sock}", *args, check=check,
                         prefix=self.own_default_sock())

    # -- volumes

    def create_volume(self, name, bricks=1, replica=None):
        directories = [self.root / "bricks" / name / f"b{n}" for n in range(bricks)]
        for directory in directories:
            directory.mkdir(parents=True)
        layout = ["replica", replica] if replica else []
        self.volumes.append(name)
        self.gluster("volume", "create", name, *layout,
                     *[f"{self.address}:{d}" for d in directories], "force")
        self.gluster("volume", "set", name, "server.statedump-path", self.dump_dir)
        self.gluster("volume", "start", name)
        self.wait_bricks_online(name)
        return directories

    def volume_dir(self, name):
        return self.workdir / "vols" / name

    def volfiles(self, name):
        """{file name: bytes} of every volfile glusterd keeps for the volume."""
        return {p.name: p.read_bytes() for p in sorted(self.volume_dir(name).glob("*.vol"))}

    def bricks(self, name):
        """[(brick path, pid or None)] from volume status."""
        done = self.gluster("volume", "status", name, "--xml", check=False)
        try:
            root = ElementTree.fromstring(done.stdout)
        except ElementTree.ParseError:
            return []
        return [(node.findtext("path"), int(node.findtext("pid")) if node.findtext("status") == "1" else None)
                for node in root.iter("node") if node.findtext("path", "").startswith("/")]

    def wait_bricks_online(self, name, timeout=30, exclude=()):
        def online():
            found = self.bricks(name)
            return found and all(pid and pid not in exclude for _path, pid in found) and found
        found = glusterlib.wait_until(online, timeout, interval=0.2)
        if not found:
            raise glusterlib.GlusterError(f"bricks of {name} not online: {self.bricks(name)}\n"
                                          f"{self.log_tail()}")
        return found

    def brick_log(self, brick_path):
        return self.logdir / "bricks" / (str(brick_path).strip("/").replace("/", "-") + ".log")

    def statedump(self, pid):
        return glusterlib.take_statedump(PidProcess(pid), self.dump_dir, glusterlib.DUMP_TIMEOUT,
                                         lambda: f"brick pid {pid}")

    def mount(self, volume, name, hostname=None):
        fuse = ManagedMount(self.address, volume, self.root / name, self.root / f"{name}.log",
                            hostname)
        self.mounts.append(fuse)
        return fuse.mount()

    def filter_config(self):
        return json.loads((self.workdir / volfilter.LOCAL_CONFIG_NAME).read_text())

    # -- cleanup

    def our_processes(self):
        """(pid, cmdline) of gluster processes this glusterd started."""
        found = dict(glusterlib.processes_mentioning(self.rundir))
        found.update(glusterlib.processes_mentioning(f"-s {self.address} "))
        return found

    def remove_stale_sockets(self):
        """Sockets in /var/run/gluster that our bricks and daemons left (a
        process killed with SIGKILL leaves its -S socket behind)."""
        in_use = " ".join(cmdline for _pid, cmdline in glusterlib.processes_mentioning("-S "))
        for path in set(RUN_GLUSTER.glob("*.socket")) - self.sockets_before:
            if str(path) not in in_use:
                path.unlink(missing_ok=True)

    def release_test_state(self):
        """Unmount and delete this test's volumes (glusterd keeps running)."""
        errors = []
        for fuse in self.mounts:
            try:
                fuse.unmount()
            except Exception as error:  # every mount and volume must still go
                errors.append(error)
        self.mounts = []
        for name in self.volumes:
            if self.process and self.process.poll() is None:
                self.gluster("volume", "stop", name, "force", check=False)
                self.gluster("volume", "delete", name, check=False)
        self.volumes = []
        self.remove_stale_sockets()
        return errors

    def stop(self):
        errors = self.release_test_state()
        if self.process:
            glusterlib.terminate(self.process)
        for pid in self.our_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        leftovers = glusterlib.wait_until(lambda: not self.our_processes(), 10) is None
        self.remove_stale_sockets()
        if leftovers:
            errors.append(glusterlib.GlusterError(f"still running: {self.our_processes()}"))
        if errors:
            raise errors[0]


@pytest.fixture(scope="module")
def glusterd_instance(tmp_path_factory, installed_filter):
    instance = Glusterd(tmp_path_factory.mktemp("glusterd"))
    try:
        yield instance.start()
    finally:
        instance.stop()


@pytest.fixture
def glusterd(glusterd_instance):
    """The module's glusterd; the test's volumes and mounts go when it ends."""
    try:
        yield glusterd_instance
    finally:
        errors = glusterd_instance.release_test_state()
        if errors:
            raise errors[0]


def unique(prefix):
    return f"{prefix}{random.randint(0, 1 << 30):x}"


def module_dir(root, *names):
    """A directory (not writable by others) with copies of test translators."""
    directory = root / "modules"
    directory.mkdir(mode=0o755, exist_ok=True)
    for name in names:
        shutil.copy(XLATORS / f"{name}.py", directory)
    return directory


def getxattr(path, name):
    """The value (bytes), or the errno (int) the getxattr failed with."""
    try:
        return os.getxattr(path, name)
    except OSError as e:
        return e.errno


def reconfigured_count(path):
    """How many times the translator's reconfigure ran (a value it answers,
    never an errno)."""
    value = getxattr(path, "user.glupy.reconfigured")
    assert isinstance(value, bytes), f"getxattr user.glupy.reconfigured failed: {errno.errorcode[value]}"
    return int(value)


def wait_for(predicate, timeout=30, what="condition"):
    value = glusterlib.wait_until(predicate, timeout, interval=0.2)
    assert value, f"timed out after {timeout}s waiting for {what}"
    return value


def readable(path, data):
    """True once path reads back as data (a client may be reconnecting)."""
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def glupy_above(volfile_text):
    """{glupy block: the translator right below it} in a volfile."""
    return {b.name: b.subvolumes[0] for b in volfilter.parse_blocks(volfile_text.splitlines())
            if b.type in ("user/glupy", "features/glupy")}


def brick_volfiles(glusterd, volume):
    return {n: t for n, t in glusterd.volfiles(volume).items() if ".tcp-" not in n and n.startswith(volume + ".")
            and "gfproxyd" not in n}


def pool_options(glusterd, volume):
    """The volume options glusterd stores (and syncs to its peers)."""
    root = ElementTree.fromstring(glusterd.gluster("volume", "info", volume, "--xml").stdout)
    return {o.findtext("name"): o.findtext("value") for o in root.iter("option")}


def status_processes(glusterd, volume):
    status = json.loads(glusterd.glupy("status", volume, "--json").stdout)
    return status["volumes"][volume]["processes"]


BROKEN_SOURCE = "import glupy\nthis is not Python (\n"
VERSION_2 = """

_previous = xlator


class xlator(_previous):
    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.glupy.version":
            self._answer(frame, name, b"2")
        else:
            super().getxattr_fop(frame, this, loc, name, xdata)
"""


def test_bricks_run_glupy_through_volume_set(glusterd, tmp_path):
    volume = unique("single")
    [brick_dir] = glusterd.create_volume(volume)
    before = glusterd.volfiles(volume)
    modules = module_dir(tmp_path, "behaviour")
    source = (modules / "behaviour.py").read_text()

    done = glusterd.glupy("enable", volume, "behaviour", "--module-path", modules,
                          "-o", "greeting=hello")
    assert f"gluster volume stop {volume} && gluster volume start {volume}" in done.stdout
    [proc] = [p for p in status_processes(glusterd, volume) if p["kind"] == "brick"]
    assert proc["glupy"] == [] and proc["in_sync"] is False, "the running brick has no glupy yet"
    glusterd.gluster("volume", "stop", volume)
    glusterd.gluster("volume", "start", volume)
    glusterd.wait_bricks_online(volume)
    [brick_volfile] = brick_volfiles(glusterd, volume).values()
    recommended = f"{volume}-{cli.RECOMMENDED_BRICK_POSITION}"
    assert glupy_above(brick_volfile.decode()) == {f"{volume}-glupy": recommended}
    [(_path, pid)] = glusterd.bricks(volume)

    mount = glusterd.mount(volume, "m1")
    data = os.urandom(3 * 1024 * 1024 + 5)
    (mount.mountpoint / "data.bin").write_bytes(data)
    assert (mount.mountpoint / "data.bin").read_bytes() == data
    assert (brick_dir / "data.bin").read_bytes() == data
    assert getxattr(mount.mountpoint / "data.bin", "user.glupy.option") == b"hello"
    assert getxattr(mount.mountpoint, "user.glupy.instance") == f"{volume}-glupy".encode()
    log = glusterd.brick_log(brick_dir)
    assert "loaded Python module behaviour" in log.read_text()
    sections = glusterlib.statedump_sections(glusterd.statedump(pid))
    ours = [s for name, s in sections.items() if name.endswith(f"glupy.{volume}-glupy.priv")]
    assert ours and ours[0].get("module") == "behaviour", sorted(sections)
    [proc] = [p for p in status_processes(glusterd, volume) if p["kind"] == "brick"]
    assert proc["pid"] == pid and proc["in_sync"]
    assert proc["glupy"] == [{"name": f"{volume}-glupy", "module": "behaviour"}]

    # Deep Python code on the brick is a RecursionError (EIO), not a dead brick.
    assert getxattr(mount.mountpoint, "user.glupy.deep") == errno.EIO
    assert "RecursionError" in log.read_text() and glusterlib.pid_alive(pid)

    # An option set on the volume reaches the running translator's reconfigure.
    reconfigured = reconfigured_count(mount.mountpoint)
    glusterd.gluster("volume", "set", volume, "user.xlator.glupy.greeting", "bonjour")
    wait_for(lambda: getxattr(mount.mountpoint, "user.glupy.option") == b"bonjour", what="reconfigure")
    assert reconfigured_count(mount.mountpoint) > reconfigured

    # A broken module is refused before anything changes; forced through
    # (--no-check), the bricks keep the running translator ...
    (modules / "behaviour.py").write_text(BROKEN_SOURCE)
    refused = glusterd.glupy("reload", volume, check=False)
    assert refused.returncode == 1 and "nothing was changed" in refused.stderr
    forced = glusterd.glupy("reload", volume, "--no-check", "--wait", "5", check=False)
    assert forced.returncode == 1 and "runs an older bundle" in forced.stderr, forced.stdout
    wait_for(lambda: "reload of behaviour failed; the running translator is kept" in log.read_text(),
             what="the failed reload in the brick log")
    assert getxattr(mount.mountpoint, "user.glupy.option") == b"bonjour"
    # ... and a reload of a good one runs the new source.
    assert "fini of behaviour" not in log.read_text()
    (modules / "behaviour.py").write_text(source + VERSION_2)
    glusterd.glupy("reload", volume)
    wait_for(lambda: getxattr(mount.mountpoint, "user.glupy.version") == b"2", what="reloaded module")
    # The replaced instance's fini ran (once: the failed reload kept it), on
    # its own thread once its requests were done.
    wait_for(lambda: log.read_text().count(f"fini of behaviour in {volume}-glupy") >= 1,
             what="the replaced instance's fini")
    assert_each_replaced_instance_finished_once(log.read_text(), volume)

    # A brick killed and started again by glusterd comes back with glupy.
    os.kill(pid, signal.SIGKILL)
    # glusterd takes a brick whose /proc/PID still exists (a zombie not yet
    # reaped) for a running one, and would not start it.
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what=f"killed brick {pid} to be reaped")
    glusterd.gluster("volume", "start", volume, "force")
    [(_path, new_pid)] = glusterd.wait_bricks_online(volume, exclude=(pid,))
    wait_for(lambda: readable(mount.mountpoint / "data.bin", data), what="data after the restart")
    wait_for(lambda: getxattr(mount.mountpoint, "user.glupy.version") == b"2", what="glupy after the restart")
    [proc] = [p for p in status_processes(glusterd, volume) if p["kind"] == "brick"]
    assert proc["pid"] == new_pid and proc["glupy"][0]["module"] == "behaviour"

    # Disabled: the volfiles are what they were before enable.
    glusterd.glupy("disable", volume, "--restart")
    assert glusterd.volfiles(volume) == before
    wait_for(lambda: readable(mount.mountpoint / "data.bin", data), what="data after disable")
    assert getxattr(mount.mountpoint, "user.glupy.option") == errno.ENODATA
    [proc] = [p for p in status_processes(glusterd, volume) if p["kind"] == "brick"]
    assert proc["glupy"] == []


HELPER_USER = """\
    import glupy
    import helper


    class xlator(glupy.Translator):
        def getxattr_fop(self, frame, this, loc, name, xdata):
            if name != "user.glupy.helper":
                frame.wind(loc, name, xdata)
                return
            value = helper.VERSION.encode()
            frame.unwind(len(value), 0, glupy.Dict({name: value}), None)
"""


def test_reload_picks_up_a_changed_helper_module(glusterd, tmp_path):
    volume = unique("helper")
    glusterd.create_volume(volume)
    modules = tmp_path / "modules"
    write_module(modules, "uses_helper", HELPER_USER)
    write_module(modules, "helper", "VERSION = 'one'\n")
    glusterd.glupy("enable", volume, "uses_helper", "--module-path", modules, "--restart")
    mount = glusterd.mount(volume, "m1")
    wait_for(lambda: getxattr(mount.mountpoint, "user.glupy.helper") == b"one", what="the helper")
    write_module(modules, "helper", "VERSION = 'two'\n")
    glusterd.glupy("reload", volume)
    wait_for(lambda: getxattr(mount.mountpoint, "user.glupy.helper") == b"two", what="the changed helper")


def test_replica_3_bricks_each_run_glupy(glusterd, tmp_path):
    volume = unique("replica")
    brick_dirs = glusterd.create_volume(volume, bricks=3, replica=3)
    before = glusterd.volfiles(volume)
    modules = module_dir(tmp_path, "behaviour")
    glusterd.glupy("enable", volume, "behaviour", "--module-path", modules, "--position",
                   "io-threads", "-o", "greeting=replicated", "--restart")
    volfiles = brick_volfiles(glusterd, volume)
    assert len(volfiles) == 3
    for text in volfiles.values():
        assert glupy_above(text.decode()) == {f"{volume}-glupy": f"{volume}-io-threads"}

    mount = glusterd.mount(volume, "m1")
    data = os.urandom(2 * 1024 * 1024 + 3)
    (mount.mountpoint / "copy.bin").write_bytes(data)
    assert (mount.mountpoint / "copy.bin").read_bytes() == data
    assert getxattr(mount.mountpoint / "copy.bin", "user.glupy.option") == b"replicated"
    for brick_dir in brick_dirs:
        assert (brick_dir / "copy.bin").read_bytes() == data
        assert "loaded Python module behaviour" in glusterd.brick_log(brick_dir).read_text()
    bricks = [p for p in status_processes(glusterd, volume) if p["kind"] == "brick"]
    assert len(bricks) == 3 and all(p["glupy"][0]["module"] == "behaviour" for p in bricks)

    glusterd.glupy("disable", volume, "--restart")
    # The reset drops granular-entry-heal, which `volume heal V granular-entry-heal
    # enable` restores; glusterd then spells the value "enable" where create wrote "on".
    respelled = {name: text.replace(b"option granular-entry-heal on\n", b"option granular-entry-heal enable\n")
                 for name, text in before.items()}
    assert glusterd.volfiles(volume) == respelled
    wait_for(lambda: readable(mount.mountpoint / "copy.bin", data), what="data after disable")


# An application's gfapi client: a C program, as qemu or samba are (a Python
# one would hold two CPythons once glupy loads: its own and glupy's).
GFAPI_APP = r"""
#include <glusterfs/api/glfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void show(glfs_t *fs, const char *name) {
    char value[256] = {0};
    ssize_t n = glfs_getxattr(fs, "/", name, value, sizeof value - 1);
    if (n < 0) { perror(name); exit(3); }
    printf("%s=%s\n", name, value);
}

int main(int argc, char **argv) {
    glfs_t *fs = glfs_new(argv[1]);
    if (!fs || glfs_set_volfile_server(fs, "tcp", argv[2], atoi(argv[3])) ||
        glfs_set_logging(fs, argv[4], 7) || glfs_init(fs)) { perror("glfs"); return 2; }
    show(fs, "user.glupy.option");
    show(fs, "user.glupy.instance");
    glfs_fd_t *fd = glfs_open(fs, "/c.bin", 0);
    unsigned char data[16];
    if (!fd || glfs_read(fd, data, sizeof data, 0) != sizeof data) { perror("read"); return 4; }
    printf("read=");
    for (int i = 0; i < (int)sizeof data; i++) printf("%02x", data[i]);
    printf("\n");
    fflush(stdout);
    _exit(0); /* glfs_fini waits ~10 s for a timer; nothing to flush */
}
"""


def run_gfapi_app(glusterd, volume, workdir):
    """Builds and runs GFAPI_APP against the volume; {key: value} it printed."""
    source, program = workdir / "app.c", workdir / "app"
    source.write_text(GFAPI_APP)
    subprocess.run(["cc", "-D_FILE_OFFSET_BITS=64", "-o", str(program), str(source), "-lgfapi"],
                   check=True, capture_output=True)
    log = workdir / "app.log"
    done = subprocess.run([str(program), volume, glusterd.address, str(GLUSTERD_PORT), str(log)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr + glusterlib.tail(glusterlib.read_text(log))
    return dict(line.split("=", 1) for line in done.stdout.splitlines()), log


def test_clients_get_glupy_through_the_filter(glusterd, tmp_path):
    volume = unique("client")
    glusterd.create_volume(volume)
    before = glusterd.volfiles(volume)
    modules = module_dir(tmp_path, "behaviour")
    source = (modules / "behaviour.py").read_text()
    early = glusterd.mount(volume, "early")  # mounted before: must switch graphs live
    data = os.urandom(1024 * 1024 + 7)
    (early.mountpoint / "c.bin").write_bytes(data)
    assert getxattr(early.mountpoint, "user.glupy.instance") == errno.ENODATA

    glusterd.glupy("enable", volume, "behaviour", "--side", "client", "--module-path", modules,
                   "-o", "greeting=hi")
    assert json.loads(pool_options(glusterd, volume)["user.glupy.client"])["module"] == "behaviour"
    after = glusterd.volfiles(volume)
    fuse_files = {f"{volume}.tcp-fuse.vol", f"trusted-{volume}.tcp-fuse.vol"}
    for name in fuse_files:
        assert glupy_above(after[name].decode()) == {f"{volume}-glupy": f"{volume}-io-threads"}
        assert run_installed_filter(glusterd.volume_dir(volume) / name).returncode == 0
        assert glusterd.volume_dir(volume).joinpath(name).read_bytes() == after[name], "not idempotent"
    assert {n: t for n, t in after.items() if n not in fuse_files} == \
        {n: t for n, t in before.items() if n not in fuse_files}, "the filter touched other volfiles"
    # gfapi clients fetch the same volfile.
    spec = glusterd.gluster("system::", "getspec", volume).stdout
    assert glupy_above(spec) == {f"{volume}-glupy": f"{volume}-io-threads"}

    wait_for(lambda: getxattr(early.mountpoint, "user.glupy.instance") == f"{volume}-glupy".encode(),
             what="the running mount to switch to the graph with glupy")
    assert (early.mountpoint / "c.bin").read_bytes() == data
    late = glusterd.mount(volume, "late")
    assert getxattr(late.mountpoint, "user.glupy.option") == b"hi"
    # An application's gfapi client gets the same graph from glusterd.
    app, app_log = run_gfapi_app(glusterd, volume, tmp_path)
    assert app == {"user.glupy.option": "hi", "user.glupy.instance": f"{volume}-glupy",
                   "read": data[:16].hex()}
    assert "loaded Python module behaviour" in app_log.read_text()
    (late.mountpoint / "d.bin").write_bytes(data[::-1])
    assert (early.mountpoint / "d.bin").read_bytes() == data[::-1]
    clients = [p for p in status_processes(glusterd, volume) if p["kind"] == "client"]
    assert sorted(p["pid"] for p in clients) == sorted([early.pid, late.pid])
    assert all(p["glupy"] == [{"name": f"{volume}-glupy", "module": "behaviour"}] for p in clients)
    # Both mounts registered on the volume's root for glupy status (the
    # switched graph of `early` too). The application may have registered
    # before it ended (without glfs_fini): that one stays behind, until a
    # writer of this host removes it. Read from the brick's own directory.
    [(brick_dir, _pid)] = glusterd.bricks(volume)
    both = {registration_name(early.pid, volume), registration_name(late.pid, volume)}
    wait_for(lambda: both <= registrations_on(brick_dir), what="the mounts' registrations")
    for left in registrations_on(brick_dir) - both:
        try:
            value = os.getxattr(brick_dir, left)
        except OSError as e:  # removed meanwhile by a writer of this host
            assert e.errno == errno.ENODATA, e
            continue
        assert json.loads(value.rstrip(b"\0"))["process_name"] == "gfapi.app"

    # New options reach the running clients' reconfigure; status-interval 0
    # removes the registrations at once, another value writes them again.
    reconfigured = reconfigured_count(early.mountpoint)
    glusterd.glupy("enable", volume, "behaviour", "--side", "client", "--module-path", modules,
                   "-o", "greeting=bye", "-o", "status-interval=0")
    wait_for(lambda: getxattr(early.mountpoint, "user.glupy.option") == b"bye", what="reconfigure")
    assert reconfigured_count(early.mountpoint) > reconfigured
    wait_for(lambda: not registrations_on(brick_dir) & both, what="status-interval 0 to remove them")
    # Written again (and an ended application's removed by them: this host,
    # its process gone).
    glusterd.glupy("enable", volume, "behaviour", "--side", "client", "--module-path", modules,
                   "-o", "greeting=bye", "-o", "status-interval=30")  # (a client entry's
    # options are replaced as a whole)
    wait_for(lambda: registrations_on(brick_dir) == both, what="status-interval 30 to write them")
    assert all(json.loads(os.getxattr(brick_dir, n).rstrip(b"\0"))["interval"] == 30 for n in both)

    # A failed reload keeps the running translator; a good one loads the new source.
    (modules / "behaviour.py").write_text(BROKEN_SOURCE)
    forced = glusterd.glupy("reload", volume, "--no-check", "--wait", "5", check=False)
    assert forced.returncode == 1 and "runs an older bundle" in forced.stderr, forced.stdout
    wait_for(lambda: "reload of behaviour failed; the running translator is kept" in early.log_text(),
             what="the failed reload in the client log")
    assert getxattr(early.mountpoint, "user.glupy.option") == b"bye"
    assert "fini of behaviour" not in late.log_text()
    (modules / "behaviour.py").write_text(source + VERSION_2)
    glusterd.glupy("reload", volume, "--side", "client")
    wait_for(lambda: getxattr(late.mountpoint, "user.glupy.version") == b"2", what="reloaded module")
    # The replaced instance's fini() runs once its requests are done (on a
    # thread of its own): once, and not before the new one answers.
    wait_for(lambda: late.log_text().count(f"fini of behaviour in {volume}-glupy") >= 1,
             what="the replaced instance's fini")
    assert_each_replaced_instance_finished_once(late.log_text(), volume)

    glusterd.glupy("disable", volume)
    assert glusterd.volfiles(volume) == before
    assert pool_options(glusterd, volume)["user.glupy.client"] == "-"
    wait_for(lambda: getxattr(early.mountpoint, "user.glupy.instance") == errno.ENODATA,
             what="the mount to switch back to the graph without glupy")
    assert (early.mountpoint / "d.bin").read_bytes() == data[::-1]
    os.listdir(late.mountpoint)  # switches at its next request too
    # disable removed them; the graphs that ended would have too.
    wait_for(lambda: registrations_on(brick_dir) == set(), what="no registration left")


def registration_name(pid, volume):
    """The name a client's glupy registers under (src/announce.rs)."""
    host_id = (Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8] + "-"
               + str(os.stat("/proc/self/ns/uts").st_ino))
    return f"trusted.glupy.client.{host_id}.{pid}.{volume}-glupy"


def registrations_on(directory):
    return {n for n in os.listxattr(directory) if n.startswith("trusted.glupy.client.")}


def test_client_position_the_filter_cannot_place_is_refused_before_anything_changes(glusterd, tmp_path):
    volume = unique("badpos")
    glusterd.create_volume(volume)
    before = glusterd.volfiles(volume)
    modules = module_dir(tmp_path, "behaviour")
    done = glusterd.glupy("enable", volume, "behaviour", "--side", "client", "--module-path",
                          modules, "--position", "nl-cache", check=False)
    assert done.returncode == 1 and "matches no translator" in done.stderr
    assert not [k for k in pool_options(glusterd, volume) if k.startswith("user.glupy")]
    assert glusterd.volfiles(volume) == before


# Positions whose translator is not in a plain brick graph: glusterd then puts
# glupy where the next translator down would have been.
STAND_INS = {"arbiter": "posix", "cdc": "quota", "namespace": "quota", "sdfs": "quota"}
WORKING_BRICK_POSITIONS = [p for p in cli.BRICK_POSITIONS
                           if p != cli.RECOMMENDED_BRICK_POSITION and p not in STAND_INS]


@pytest.mark.skipif(SKIP_SLOW, reason="GLUPY_SKIP_SLOW=1: every brick position (about a minute)")
def test_every_brick_position_glusterd_accepts_works_except_io_stats(glusterd, tmp_path):
    volume = unique("positions")
    [brick_dir] = glusterd.create_volume(volume)
    modules = module_dir(tmp_path, "behaviour")
    # glusterd's traps: no reset of a user.xlator key, no position outside its table.
    glusterd.gluster("volume", "set", volume, "user.xlator.glupy", "posix")
    assert glusterd.gluster("volume", "reset", volume, "user.xlator.glupy", check=False).returncode != 0
    assert glusterd.gluster("volume", "set", volume, "user.xlator.glupy", "server",
                            check=False).returncode != 0
    failures = []
    for number, position in enumerate(WORKING_BRICK_POSITIONS):
        glusterd.glupy("enable", volume, "behaviour", "--module-path", modules, "--position",
                       position, "--restart")
        [text] = brick_volfiles(glusterd, volume).values()
        below = glupy_above(text.decode())[f"{volume}-glupy"]
        mount = glusterd.mount(volume, f"m{number}")
        payload = os.urandom(65536)
        (mount.mountpoint / f"{position}.bin").write_bytes(payload)
        works = ((mount.mountpoint / f"{position}.bin").read_bytes() == payload
                 and getxattr(mount.mountpoint, "user.glupy.instance") == f"{volume}-glupy".encode()
                 and below == f"{volume}-{position}")
        mount.unmount()
        glusterd.mounts.remove(mount)
        if not works:
            failures.append(f"{position} (glupy above {below})")
    assert not failures, f"positions that did not work: {failures}"
    assert len(list(brick_dir.glob("*.bin"))) == len(WORKING_BRICK_POSITIONS)
    # The stand-ins build the same graphs as the positions they stand in for.
    for position, same_as in STAND_INS.items():
        glusterd.glupy("enable", volume, "behaviour", "--module-path", modules, "--position", position)
        [text] = brick_volfiles(glusterd, volume).values()
        assert glupy_above(text.decode()) == {f"{volume}-glupy": f"{volume}-{same_as}"}, position


@pytest.mark.skipif(not shutil.which("mkfs.xfs"), reason="xfsprogs is not installed")
def test_client_registrations_get_no_space_limit_where_every_brick_is_on_xfs(glusterd, tmp_path):
    """status-space protects ext4 bricks (one xattr block per inode); glupy
    enable lifts it when glusterd reports every brick on XFS, and not
    otherwise (this machine's other bricks are on ext4)."""
    volume = unique("xfs")
    image, bricks = tmp_path / "xfs.img", glusterd.root / "bricks" / volume
    with open(image, "wb") as f:
        f.truncate(512 << 20)
    subprocess.run(["mkfs.xfs", "-q", str(image)], check=True)
    bricks.mkdir(parents=True)
    modules = module_dir(tmp_path, "behaviour")
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(bricks)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:  # no loop devices here (a container)
        pytest.skip(f"cannot mount an XFS image: {mounted.stderr.strip()}")
    try:
        glusterd.create_volume(volume)
        glusterd.glupy("enable", volume, "behaviour", "--side", "client", "--module-path", modules)
        entry = json.loads(pool_options(glusterd, volume)["user.glupy.client"])
        assert entry["options"].get("status-space") == "0", entry
        # Given by hand, it is kept.
        glusterd.glupy("enable", volume, "behaviour", "--side", "client", "--module-path", modules,
                       "-o", "status-space=4096")
        entry = json.loads(pool_options(glusterd, volume)["user.glupy.client"])
        assert entry["options"].get("status-space") == "4096", entry
        glusterd.release_test_state()
    finally:
        glusterd.release_test_state()
        subprocess.run(["umount", str(bricks)], check=False)
    # A volume on this machine's ext4: the default stays.
    plain = unique("ext4")
    glusterd.create_volume(plain)
    glusterd.glupy("enable", plain, "behaviour", "--side", "client", "--module-path", modules)
    assert "status-space" not in json.loads(pool_options(glusterd, plain)["user.glupy.client"])["options"]
