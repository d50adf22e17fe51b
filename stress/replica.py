#!/usr/bin/python3
"""Replica 3 with glupy on every brick, under writes: one brick is taken
away and comes back, then the client is remounted; no data may be lost,
heal must finish and every brick's translator must have answered every
request. Two faults:

  kill    the brick is killed -9 and restarted;
  netcut  the brick runs in a network namespace of its own (stress/netcut.py)
          and its network is cut (its loopback taken down: packets dropped,
          connections not closed) and restored; the brick keeps running.

Hand-written volfiles: three bricks (posix -> locks -> features/glupy
passall -> protocol/server, each on its own 127.0.0.1 port) and a FUSE
client with cluster/replicate over three protocol/client volumes, with
client-side self-heal on.

    STRESS_SECONDS=60 stress/replica.py WORKDIR [kill|netcut] [--plain]

--plain runs the same faults on bricks without glupy: the reference.

Prints one JSON object; exit status 0 only if every check passed.
"""

import errno
import hashlib
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

import glusterlib  # noqa: E402
import netcut  # noqa: E402

SECONDS = float(os.environ.get("STRESS_SECONDS", "600"))
FILES = 60
HEAL_TIMEOUT = 300
AFR_XATTR_PREFIX = "trusted.afr."
# Normal in this setup: no ulimit raise as a test user, and no features/index
# on the bricks (AFR asks it for granular entry-heal changes).
EXPECTED_LOG_ERRORS = (r"Failed to set", r"xattrop_entry_changes_gfid")


def glupy_layer():
    return ("features/glupy", {"module-name": "passall",
                               "module-path": str(ROOT / "tests/xlators")}, "pass")


def client_volfile(path, bricks, ports):
    names = [f"rep-client-{n}" for n in range(len(bricks))]
    text = ""
    for name, brick, port in zip(names, bricks, ports):
        text += glusterlib.volume_block(name, "protocol/client", {
            "transport-type": "tcp", "remote-host": glusterlib.LOCALHOST,
            "remote-port": port, "remote-subvolume": brick.top,
            "transport.address-family": "inet", "ping-timeout": 10}) + "\n"
    text += glusterlib.volume_block("rep-replicate", "cluster/replicate", {
        "afr-pending-xattr": ",".join(names),
        "data-self-heal": "on", "metadata-self-heal": "on", "entry-self-heal": "on",
        "quorum-type": "auto"}, names)
    Path(path).write_text(text)
    return Path(path)


class Writer(threading.Thread):
    """Rewrites FILES files with seeded content, fsyncs each, and remembers
    the content of every write that succeeded."""

    def __init__(self, root, seed=7):
        super().__init__(daemon=True)
        self.root, self.rng = Path(root), random.Random(seed)
        # Which names it writes: all, plus new ones while a brick is down,
        # then only a few (the rest must be healed, not rewritten).
        self.names = [f"f{n:03d}" for n in range(FILES)]
        self.expected = {}  # name -> sha256 of the last content written whole
        self.uncertain = set()  # names whose last write failed part way
        self.errors, self.writes = [], 0
        self.stop = threading.Event()

    def run(self):
        n = 0
        while not self.stop.is_set():
            names = self.names
            name = names[n % len(names)]
            data = self.rng.randbytes(self.rng.randint(0, 1 << 20))
            try:
                with open(self.root / name, "wb") as stream:
                    stream.write(data)
                    stream.flush()
                    os.fsync(stream.fileno())
                self.expected[name] = hashlib.sha256(data).hexdigest()
                self.uncertain.discard(name)
                self.writes += 1
            except OSError as error:
                self.errors.append(f"{name}: {error}")
                self.uncertain.add(name)
                time.sleep(0.2)
            n += 1


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_content(root, writer):
    """Files whose last write succeeded show exactly that content."""
    lost = {}
    for name, digest in writer.expected.items():
        if name in writer.uncertain:
            continue
        try:
            found = sha256_of(Path(root) / name)
        except OSError as error:
            found = f"unreadable: {error}"
        if found != digest:
            lost[name] = found
    return lost


def pending_heal(bricks):
    """Files whose copies differ between bricks, or carry pending AFR counts."""
    pending = {}
    for name in sorted(os.listdir(bricks[0].directory / "data")):
        copies, marks = set(), []
        for brick in bricks:
            path = brick.directory / "data" / name
            try:
                copies.add(sha256_of(path))
                for key in os.listxattr(path):
                    value = os.getxattr(path, key)
                    if key.startswith(AFR_XATTR_PREFIX) and any(value):
                        marks.append(f"{brick.name}:{key}")
            except OSError as error:
                copies.add(f"missing on {brick.name}: {error.strerror}")
        if len(copies) > 1 or marks:
            pending[name] = {"copies": len(copies), "marks": marks}
    return pending


def trigger_heal(root):
    """Client-side heal: lookups and reads of everything."""
    for entry in os.scandir(root):
        try:
            os.stat(entry.path)
            Path(entry.path).read_bytes()
        except OSError:
            pass


def glupy_section(brick):
    sections = glusterlib.statedump_sections(brick.statedump())
    return sections.get("xlator.features.glupy.pass.priv", {})


def answered_all(section):
    fops = {k: dict(p.split("=") for p in v.split()) for k, v in section.items() if k.startswith("fop.")}
    return all(c["calls"] == c["answered"] for c in fops.values()), \
        sum(int(c["calls"]) for c in fops.values())


class Kill:
    """The victim is killed -9 (no fini, no flush) and started again."""

    wrapper = ()

    def __init__(self, victim):
        self.victim = victim
        self.port = victim.port

    def inject(self):
        self.victim.process.kill()
        self.victim.process.wait()

    def repair(self):
        self.victim.start()

    def close(self):
        pass


class NetCut:
    """The victim's network is cut and restored; it runs all along."""

    wrapper = netcut.NAMESPACE_WRAPPER

    def __init__(self, victim):
        self.victim = victim
        self.relay = netcut.Relay(victim.pid, victim.port)
        self.port = self.relay.port

    def inject(self):
        netcut.set_link(self.victim.pid, up=False)

    def repair(self):
        netcut.set_link(self.victim.pid, up=True)

    def close(self):
        self.relay.close()


FAULTS = {"kill": Kill, "netcut": NetCut}


def scenario(workdir, fault_name="kill", seconds=SECONDS, plain=False, heal_timeout=HEAL_TIMEOUT):
    """plain: the same bricks without glupy (the reference run)."""
    result, problems = {"fault": fault_name, "seconds": seconds, "plain": plain}, []
    cluster = glusterlib.Cluster(workdir)
    fault_type = FAULTS[fault_name]
    fault = None
    try:
        bricks = [cluster.brick([] if plain else [glupy_layer()], name=f"r{n}",
                                wrapper=fault_type.wrapper if n == 1 else ())
                  for n in range(3)]
        victim = bricks[1]
        fault = fault_type(victim)
        ports = [fault.port if brick is victim else brick.port for brick in bricks]
        volfile = client_volfile(workdir / "replica.vol", bricks, ports)
        mount = glusterlib.FuseMount(volfile, workdir / "mnt", workdir / "mnt.log")
        cluster.mounts.append(mount)
        mount.mount()
        data = mount.mountpoint / "data"
        data.mkdir()
        writer = Writer(data)
        writer.start()
        time.sleep(seconds / 3)
        fault.inject()
        result["fault_at_writes"] = writer.writes
        writer.names = writer.names + [f"new{n:03d}" for n in range(FILES // 2)]
        time.sleep(seconds / 6)
        fault.repair()
        writer.names = writer.names[:FILES // 4]
        result["repaired_at_writes"] = writer.writes
        time.sleep(seconds / 2)
        writer.stop.set()
        writer.join(60)
        needing = pending_heal(bricks)
        result["files_needing_heal"] = len(needing)
        if not needing:
            problems.append("no file needed heal: the scenario tested nothing")
        result["writes"], result["write_errors"] = writer.writes, writer.errors[:20]
        result["uncertain_files"] = sorted(writer.uncertain)

        # A fresh client: what the first one wrote must all be there.
        mount.unmount()
        # No kernel caching: every access is a lookup, which is what starts
        # a client-side heal.
        remount = glusterlib.FuseMount(volfile, workdir / "mnt2", workdir / "mnt2.log",
                                       extra_args=("--entry-timeout=0", "--attribute-timeout=0"))
        cluster.mounts.append(remount)
        remount.mount()
        lost = check_content(remount.mountpoint / "data", writer)
        result["lost_files"] = lost
        if lost:
            problems.append(f"data lost: {sorted(lost)[:10]}")

        started = time.monotonic()
        pending = None
        while time.monotonic() - started < heal_timeout:
            trigger_heal(remount.mountpoint / "data")
            pending = pending_heal(bricks)
            if not pending:
                break
            time.sleep(2)
        result["heal_seconds"] = round(time.monotonic() - started, 1)
        result["pending_after_heal"] = dict(list((pending or {}).items())[:10])
        # Every file still pending: how many with copies that differ, and
        # which AFR marks are left (brick names dropped).
        differing = sum(1 for p in (pending or {}).values() if p["copies"] > 1)
        result["pending_differing"] = differing
        result["pending_marks"] = sorted({m.split(":", 1)[1] for p in (pending or {}).values()
                                          for m in p["marks"]})
        if pending:
            problems.append(f"heal did not finish: {len(pending)} files pending, "
                            f"{differing} of them with copies that differ")

        for brick in [] if plain else bricks:
            section = glupy_section(brick)
            balanced, calls = answered_all(section)
            result[f"{brick.name}_glupy_calls"] = calls
            if section.get("module") != "passall" or not balanced or calls == 0:
                problems.append(f"{brick.name}: glupy state {section.get('module')} "
                                f"balanced={balanced} calls={calls}")
        if writer.errors:
            problems.append(f"{len(writer.errors)} writes failed: {writer.errors[:3]}")
        for process in [*bricks, remount]:
            if not process.alive():
                problems.append(f"{process} died")
        severe = [line for brick in bricks for line in glusterlib.severe_log_lines(
            brick._current_log(), EXPECTED_LOG_ERRORS)]
        result["brick_log_errors"] = severe[:20]
    finally:
        if fault:
            fault.close()
        cluster.cleanup()
    result["problems"] = problems
    return result


def main():
    workdir = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/glupy-replica")
    fault = sys.argv[2] if len(sys.argv) > 2 else "kill"
    if fault not in FAULTS:
        sys.exit(f"unknown fault {fault!r}: use {' or '.join(FAULTS)}")
    plain = "--plain" in sys.argv[3:]
    workdir.mkdir(parents=True, exist_ok=True)
    result = scenario(workdir, fault, plain=plain)
    glusterlib.finish_closing()
    print(json.dumps(result))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
