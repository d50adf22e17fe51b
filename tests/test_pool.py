"""glupy across a trusted storage pool (issue 13): three glusterd on one
machine, as GlusterFS's own tests/cluster.rc runs them (one per loopback
address 127.1.1.N, each with its own working, run and log directories),
probed into one pool, a 2 x 3 distributed-replicated volume with a brick of
each replica set on each server, FUSE mounts from two different servers.

One command on one server must be enough: the module reaches every brick and
client through the volume options glusterd syncs, `glupy status` shows the
same hash everywhere, a broken module is refused before anything changes,
and a server that was down during a change converges when it comes back.
Every process is stopped by pid at the end, also on failure.
"""

import hashlib
import json
import os
import signal
import socket
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import glusterlib
from test_managed import (GLUSTERD_PORT, Glusterd, PidProcess, getxattr,  # noqa: F401
                          installed_filter, wait_for, write_module)

from glupy import pool as glupy_pool  # the checkout's (test_managed puts it first on sys.path)

SERVERS = 3
BRICK_MODULE = """\
    import errno
    import glupy
    import poolhelper


    class xlator(glupy.Translator):
        def getxattr_fop(self, frame, this, loc, name, xdata):
            if name == "user.glupy.brick":
                value = poolhelper.VERSION.encode()
                frame.unwind(len(value), 0, glupy.Dict({name: value}), None)
            else:
                frame.wind(loc, name, xdata)
"""
CLIENT_MODULE = """\
    import glupy

    VERSION = b"{version}"


    class xlator(glupy.Translator):
        def getxattr_fop(self, frame, this, loc, name, xdata):
            if name == "user.glupy.client":
                frame.unwind(len(VERSION), 0, glupy.Dict({{name: VERSION}}), None)
            else:
                frame.wind(loc, name, xdata)
"""
# The clients' status-interval (seconds): a killed client counts as gone
# after three of them and ten seconds.
INTERVAL = 4
BROKEN = "import glupy\nclass xlator(glupy.Translator):\n    def lookup_fop(self, frame, loc):\n        pass\n"


def pool_addresses():
    """127.1.1.1-3 as upstream uses them, or 127.1.N.1-3 if those are taken."""
    for third in [1, *range(2, 250)]:
        addresses = [f"127.1.{third}.{n}" for n in range(1, SERVERS + 1)]
        if all(port_free(a) for a in addresses):
            return addresses
    raise glusterlib.GlusterError("no free 127.1.N.1-3 with port 24007 free")


def port_free(address):
    with socket.socket() as probe:
        try:
            probe.bind((address, GLUSTERD_PORT))
        except OSError:
            return False
    return True


class Pool:
    def __init__(self, root):
        self.root = Path(root)
        self.servers = [Glusterd(self.root / f"s{n + 1}", address)
                        for n, address in enumerate(pool_addresses())]
        self.volume = None

    @property
    def first(self):
        return self.servers[0]

    def start(self):
        for server in self.servers:
            server.start()
        for server in self.servers[1:]:
            self.first.gluster("peer", "probe", server.address)
        wait_for(self.all_connected, timeout=60, what="every peer connected")
        return self

    def all_connected(self):
        for server in self.servers:
            done = server.gluster("pool", "list", "--xml", check=False)
            try:
                peers = ElementTree.fromstring(done.stdout).findall("peerStatus/peer")
            except ElementTree.ParseError:
                return False
            if len(peers) != SERVERS or not all(p.findtext("connected") == "1" for p in peers):
                return False
        return True

    def create_volume(self, name):
        """2 x 3: replica set n has brick 3n+k on server k."""
        bricks = []
        for n in range(2):
            for server in self.servers:
                directory = server.root / "bricks" / f"b{n}"
                directory.mkdir(parents=True)
                bricks.append((server, directory))
        self.volume = name
        self.first.volumes.append(name)
        self.first.gluster("volume", "create", name, "replica", 3,
                           *[f"{s.address}:{d}" for s, d in bricks], "force")
        self.first.gluster("volume", "set", name, "server.statedump-path", self.first.dump_dir)
        self.first.gluster("volume", "start", name)
        self.first.wait_bricks_online(name, timeout=60)
        return bricks

    def glupy(self, server, *args, check=True):
        return server.glupy(*args, check=check)

    def status(self, server=None):
        done = (server or self.first).glupy("status", self.volume, "--json")
        return json.loads(done.stdout)["volumes"][self.volume]["pool"]

    def kill_server(self, server):
        """Its glusterd and every brick and daemon it started, SIGKILL."""
        pids = [server.process.pid, *server.our_processes()]
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        server.process.wait(timeout=30)
        wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), what="killed server")

    def options(self, server=None):
        done = (server or self.first).gluster("volume", "info", self.volume, "--xml")
        root = ElementTree.fromstring(done.stdout)
        return {o.findtext("name"): o.findtext("value") for o in root.iter("option")}

    def stop(self):
        errors = []
        if self.first.process and self.first.process.poll() is None:
            for fuse in [m for s in self.servers for m in s.mounts]:
                try:
                    fuse.unmount()
                except Exception as e:
                    errors.append(e)
            for server in self.servers:
                server.mounts = []
        for server in self.servers:
            try:
                server.stop()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def pool(tmp_path, installed_filter):
    instance = Pool(tmp_path)
    try:
        yield instance.start()
    finally:
        instance.stop()


def processes_of(status, kind):
    return [p for s in status["servers"] for p in s["processes"] if p["kind"] == kind]


def running_bundles(status, kind):
    return {(p["serves"], p["running"][0]["bundle"] if p["running"] else None)
            for p in processes_of(status, kind)}


def bricks_of(status, server):
    return [p for p in processes_of(status, "brick") if p["serves"].startswith(server.address + ":")]


def assert_bricks_run_what_their_statedumps_say(pool, status, servers):
    """Each brick of `servers` as `glupy status` shows it (asked through the
    brick itself, from another server) is what its own statedump says."""
    pids = dict(pool.first.bricks(pool.volume))
    for server in servers:
        bricks = bricks_of(status, server)
        assert len(bricks) == 2, status["servers"]
        for process in bricks:
            shown = process["running"][0]
            assert process["pid"] == pids[process["serves"].partition(":")[2]]
            sections = glusterlib.statedump_sections(pool.first.statedump(process["pid"]))
            (dumped,) = [v for k, v in sections.items() if k.startswith("xlator.features.glupy.")]
            assert (shown["sha256"], shown["loaded_at"], shown["file"], shown["module"]) == (
                dumped["module-sha256"], dumped["loaded-at"], dumped["module-file"],
                dumped["module"]), (process, dumped)
            assert process["state"] == "ok" and process["hostname"] == os.uname().nodename


def assert_clients_run_what_their_statedumps_say(pool, status, servers_by_pid):
    """Each client as `glupy status` shows it (by its statedump, or by its
    registration read from the bricks) is what its own statedump says, and
    is listed under the server it took its volfile from."""
    for pid, server in servers_by_pid.items():
        (shown,) = [p for p in bricks_and_clients_of(status, server) if p["pid"] == pid]
        sections = glusterlib.statedump_sections(client_statedump(pool, pid))
        (dumped,) = [v for k, v in sections.items() if k.startswith("xlator.features.glupy.")]
        mine = shown["running"][0]
        assert (mine["sha256"], mine["loaded_at"], mine["file"], mine["module"]) == (
            dumped["module-sha256"], dumped["loaded-at"], dumped["module-file"],
            dumped["module"]), (shown, dumped)
        assert shown["state"] == "ok", shown


def client_statedump(pool, pid):
    """A client's statedump: in the volume's statedump-path, or GlusterFS's
    default directory (a client takes the option from its volfile)."""
    for directory in (pool.first.dump_dir, Path("/var/run/gluster")):
        try:
            return glusterlib.take_statedump(PidProcess(pid), Path(directory), 10,
                                             lambda: f"client pid {pid}")
        except glusterlib.GlusterError as e:
            last = e
    raise last


def bricks_and_clients_of(status, server):
    (view,) = [s for s in status["servers"] if s["host"] == server.address]
    return view["processes"]


def module_files(directory, **files):
    for name, text in files.items():
        write_module(directory, name, text)
    return directory


def test_one_command_runs_a_translator_on_the_whole_pool(pool, tmp_path):
    started = time.monotonic()
    s1, s2, s3 = pool.servers
    volume = "poolvol"
    pool.create_volume(volume)
    bricks_src = module_files(tmp_path / "brick-src", poolbrick=BRICK_MODULE,
                              poolhelper="VERSION = 'one'\n")
    client_src = module_files(tmp_path / "client-src",
                              poolclient=CLIENT_MODULE.format(version="c1"))

    # Enabled from one server (s1 bricks, s2 clients): nothing copied by hand.
    pool.glupy(s1, "enable", volume, "poolbrick", "--module-path", bricks_src, "--restart")
    pool.glupy(s2, "enable", volume, "poolclient", "--side", "client", "--module-path", client_src,
               "--option", f"status-interval={INTERVAL}")
    m1 = s1.mount(volume, "m1")
    # m2 and m3 as if on other hosts (host names of their own): status sees
    # them only by the registrations they write on the volume's root.
    m2 = s2.mount(volume, "m2", hostname="client-b")
    m3 = s1.mount(volume, "m3", hostname="client-c")
    for mount in (m1, m2):
        assert getxattr(mount.mountpoint, "user.glupy.client") == b"c1"
        assert getxattr(mount.mountpoint, "user.glupy.brick") == b"one"
    data = os.urandom(1024 * 1024 + 11)
    (m1.mountpoint / "one.bin").write_bytes(data)
    assert (m2.mountpoint / "one.bin").read_bytes() == data

    status = pool.status(s3)  # asked from any server
    assert status["consistent"], status["problems"]
    bricks = processes_of(status, "brick")
    clients = processes_of(status, "client")
    assert len(bricks) == 6 and {p["serves"].partition(":")[0] for p in bricks} == \
        {s.address for s in pool.servers}
    assert sorted(p["pid"] for p in clients) == sorted([m1.pid, m2.pid, m3.pid])
    assert_clients_run_what_their_statedumps_say(pool, status, {m1.pid: s1, m2.pid: s2,
                                                                m3.pid: s1})
    # m3 ends without a word (GlusterFS calls no fini): its registration
    # stays, and is shown as gone, not as a problem, once it is not written
    # again for three intervals.
    m3.process.kill()
    m3.process.wait(10)
    (remote,) = [p for p in clients if p["pid"] == m2.pid]
    assert remote["seen"] == "registration" and remote["hostname"] == "client-b", remote
    assert remote["serves"] == str(m2.mountpoint) and remote["volfile_server"] == s2.address
    assert remote["running"][0]["sha256"] == hashlib.sha256(
        (client_src / "poolclient.py").read_bytes()).hexdigest()
    brick_bundle = status["wanted"]["brick"]["bundle"]
    assert {b for _, b in running_bundles(status, "brick")} == {brick_bundle}
    assert all(p["running"][0]["loaded_at"] and len(p["running"][0]["sha256"]) == 64 for p in bricks)
    # From s1, the bricks of s2 and s3 show what they run, read from the bricks
    # themselves (the status key), equal to their own statedumps.
    status = pool.status(s1)
    assert status["consistent"], status["problems"]
    assert_bricks_run_what_their_statedumps_say(pool, status, [s2, s3])
    first_loads = {p["serves"]: p["running"][0]["loaded_at"] for p in processes_of(status, "brick")}
    text = s1.glupy("status", volume).stdout
    print(text)
    assert f"{m2.mountpoint} pid {m2.pid} on client-b (registered " in text, text
    for process in bricks_of(status, s3):
        assert (f"{process['serves']} pid {process['pid']}: poolbrick sha256 "
                f"{process['running'][0]['sha256'][:12]} bundle {brick_bundle[:12]} loaded "
                f"{process['running'][0]['loaded_at']}") in text, text
    # The bundle lies materialised on each server, root's and closed to others.
    for server in pool.servers:
        bundle_dir = server.workdir / "glupy" / "bundles" / brick_bundle
        assert (bundle_dir / "poolhelper.py").read_text() == "VERSION = 'one'\n"
        assert bundle_dir.stat().st_mode & 0o022 == 0

    # Reload with a changed helper: the new hash everywhere, seen by clients.
    write_module(bricks_src, "poolhelper", "VERSION = 'two'\n")
    pool.glupy(s2, "reload", volume, "--side", "brick")
    for mount in (m1, m2):
        wait_for(lambda: getxattr(mount.mountpoint, "user.glupy.brick") == b"two", what="reload")
    status = pool.status()
    assert status["consistent"], status["problems"]
    second = status["wanted"]["brick"]["bundle"]
    assert second != brick_bundle
    assert {b for _, b in running_bundles(status, "brick")} == {second}
    assert all(p["running"][0]["loaded_at"] != first_loads[p["serves"]]
               for p in processes_of(status, "brick"))
    assert_bricks_run_what_their_statedumps_say(pool, status, [s2, s3])

    # A broken module is refused before anything changes.
    options = pool.options()
    (client_src / "poolclient.py").write_text(BROKEN)
    done = pool.glupy(s1, "reload", volume, "--side", "client", check=False)
    assert done.returncode == 1 and "nothing was changed" in done.stderr, done.stderr
    assert "takes 3 arguments" in done.stderr
    assert pool.options() == options
    for mount in (m1, m2):
        assert getxattr(mount.mountpoint, "user.glupy.client") == b"c1"

    # s3 down (glusterd and its bricks): changes go on; it converges alone.
    pool.kill_server(s3)
    write_module(bricks_src, "poolhelper", "VERSION = 'three'\n")
    write_module(client_src, "poolclient", CLIENT_MODULE.format(version="c2"))
    done = pool.glupy(s1, "reload", volume)
    assert s3.address in done.stdout and "not reachable now" in done.stdout, done.stdout
    status = pool.status()
    assert not status["consistent"] and any(s3.address in p and "unreachable" in p
                                            for p in status["problems"]), status["problems"]
    # A brick that accepts connections and never answers (stopped) is reported
    # after --brick-timeout; the killed server's bricks are offline.
    stopped = bricks_of(status, s2)[0]
    os.kill(stopped["pid"], signal.SIGSTOP)
    try:
        asked = time.monotonic()
        view = json.loads(s1.glupy("status", volume, "--json", "--brick-timeout", 5).stdout)
        took = time.monotonic() - asked
    finally:
        os.kill(stopped["pid"], signal.SIGCONT)
    view = view["volumes"][volume]["pool"]
    print(glupy_pool.render_text(view), f"\n(status took {took:.1f} s)")
    (shown,) = [p for p in processes_of(view, "brick") if p["serves"] == stopped["serves"]]
    assert shown["running"] is None and "no answer in 5 s" in shown["why"], shown
    assert any(stopped["serves"] in p and "did not answer" in p for p in view["problems"])
    assert [p["why"] for p in bricks_of(view, s3)] == ["brick offline"] * 2, bricks_of(view, s3)
    assert {b for _, b in running_bundles(view, "brick") if b} == {view["wanted"]["brick"]["bundle"]}
    assert took < 30, took
    (m1.mountpoint / "while-down.bin").write_bytes(data[::-1])
    s3.start()
    third = pool.status()["wanted"]["brick"]["bundle"]
    wait_for(lambda: pool.status()["consistent"], timeout=120, what="s3 to converge")
    status = pool.status()
    assert {b for _, b in running_bundles(status, "brick")} == {third}
    s3_view = next(s for s in status["servers"] if s["host"] == s3.address)
    assert s3_view["client_volfile"][0]["bundle"] == status["wanted"]["client"]["bundle"]
    for mount in (m1, m2):
        wait_for(lambda: getxattr(mount.mountpoint, "user.glupy.client") == b"c2", what="client")
    assert (m2.mountpoint / "while-down.bin").read_bytes() == data[::-1]
    # The remote client's registration shows the new module (written again
    # at the reload), as its own statedump does.
    c2 = hashlib.sha256((client_src / "poolclient.py").read_bytes()).hexdigest()
    wait_for(lambda: [p["running"][0]["sha256"] for p in processes_of(pool.status(), "client")
                      if p["pid"] == m2.pid] == [c2], what="m2's registration of c2")
    assert_clients_run_what_their_statedumps_say(pool, pool.status(), {m1.pid: s1, m2.pid: s2})
    wait_for(lambda: [p["state"] for p in processes_of(pool.status(), "client")
                      if p["pid"] == m3.pid] == ["gone"], what="m3 to count as gone")
    status = pool.status()
    assert status["consistent"], status["problems"]
    (gone,) = [p for p in processes_of(status, "client") if p["pid"] == m3.pid]
    assert gone["hostname"] == "client-c" and "not heard from" in gone["why"], gone

    # Disabled on the whole pool.
    done = pool.glupy(s1, "disable", volume, "--restart", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for mount in (m1, m2):  # a FUSE mount switches graphs at its next request
        os.listdir(mount.mountpoint)
    def glupy_gone():
        status = pool.status()
        return all(p["running"] == [] for p in processes_of(status, "brick")
                   + processes_of(status, "client"))

    if not glusterlib.wait_until(glupy_gone, 60, interval=0.5):
        raise AssertionError("glupy still runs:\n" + glupy_pool.render_text(pool.status()))
    status = pool.status()
    assert status["consistent"], status["problems"]
    assert all(p["no_glupy"] for p in processes_of(status, "brick"))  # the bricks said so
    for server in pool.servers:
        for name, text in server.volfiles(volume).items():
            assert b"glupy" not in text, f"{server.address} {name}"
    assert (m2.mountpoint / "one.bin").read_bytes() == data
    # The registrations went with glupy (disable removes them from every
    # brick), and the remote client, now without glupy, is not listed.
    for path, _pid in pool.first.bricks(volume):
        assert not [n for n in os.listxattr(path) if n.startswith("trusted.glupy.client.")], path
    assert [p["pid"] for p in processes_of(status, "client")] == [m1.pid]
    assert "registrations on brick" not in done.stderr, done.stderr
    print(f"pool test body: {time.monotonic() - started:.0f}s")
