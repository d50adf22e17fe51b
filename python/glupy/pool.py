"""What every server of a trusted storage pool runs for one volume.

`glupy status V` builds this from what GlusterFS itself can tell one server:

- the pool's servers (`gluster pool list`), and from each server's glusterd,
  asked over the network (`gluster --remote-host=HOST`, which glusterd
  answers for read-only commands): whether it answers, the volume options it
  stores (so a server whose glusterd missed a change shows an older bundle),
  and the volfiles it serves (`system:: getspec`): the bundle its filter
  points the glupy blocks at, or no glupy block where the volume has a
  client-side translator (that server has no working filter);
- every brick of the volume with its server and pid (`volume status`);
- from every online brick, on any server, what it really runs: its glupy
  answers the status key (module file, sha256, load time, pid), read through
  GlusterFS's own client stack (`brickquery`); a brick that does not answer
  in time is reported, not waited for;
- for each FUSE client of the volume on this host (found in /proc), what it
  really runs: the glupy section of a statedump (SIGUSR1) names the module
  file, its sha256 and load time;
- every client process with glupy on any host (FUSE mounts and gfapi
  applications): its registration on the volume's root, read from the
  bricks by the same query (src/announce.rs writes it, and again every
  `status-interval` seconds); one not written again for three intervals is
  listed as gone (unmounted, ended, or cut off from the bricks).

A client process on another host without glupy is not seen (nothing
registers it). Everything is plain data (dicts and lists) for any renderer.
"""

import hashlib
import os
import re
import signal
import socket
import time
from pathlib import Path

from . import brickquery, volfilter

DUMP_TIMEOUT = 15.0
DEFAULT_DUMP_DIR = "/var/run/gluster"
GLUPY_SECTION = re.compile(r"^\[xlator\.features\.glupy\.(?P<name>[^\]]+)\.priv\]$")


class Unreachable(Exception):
    """A server's glusterd does not answer, or does not know the volume."""


# ------------------------------------------------------------------ servers

def pool_servers(gluster, volume_xml):
    """[{uuid, host, self, connected}] of the pool; host named as in the
    volume's bricks where possible (glusterd lists itself as localhost)."""
    peers = gluster.xml("pool", "list").findall("peerStatus/peer")
    brick_hosts = {}
    for brick in volume_xml.findall("bricks/brick"):
        name = brick.findtext("name") or ""
        brick_hosts.setdefault(brick.findtext("hostUuid"), name.rpartition(":")[0])
    servers = []
    for peer in peers:
        uuid = peer.findtext("uuid")
        listed = peer.findtext("hostname")
        servers.append({"uuid": uuid, "host": brick_hosts.get(uuid, listed),
                        "self": listed == "localhost",
                        "connected": peer.findtext("connected") == "1"})
    return sorted(servers, key=lambda s: (not s["self"], s["host"]))


def volume_options(volume_xml):
    return {o.findtext("name"): o.findtext("value") or ""
            for o in volume_xml.findall("options/option")}


def configured(options, volume):
    """What the volume options ask for: {side: {module, bundle}} (None: off)."""
    brick = None
    if options.get("user.xlator.glupy"):
        header = volfilter.bundle_header(options, "brick")
        brick = {"module": options.get("user.xlator.glupy.module-name"),
                 "bundle": header[0] if header else None,
                 "position": options.get("user.xlator.glupy")}
    client = None
    try:
        entry = volfilter.pool_client_entry(volume, options)
    except volfilter.ConfigError:
        entry = None
    if isinstance(entry, volfilter.ClientEntry):
        header = volfilter.bundle_header(options, "client")
        client = {"module": entry.module, "bundle": header[0] if header else None,
                  "position": entry.position}
    return {"brick": brick, "client": client}


def expected_sources(options):
    """{side: {file name: sha256}} of the pool's bundles (for comparing)."""
    out = {}
    for side in volfilter.SIDES:
        try:
            decoded = volfilter.decode_bundle(options, side)
        except volfilter.ConfigError:
            decoded = None
        if decoded:
            out[side] = {name: hashlib.sha256(data).hexdigest() for name, data in decoded[1].items()}
    return out


def glupy_in_volfile(text):
    """[{type, module, bundle}] of the glupy blocks of a volfile's text."""
    try:
        blocks = volfilter.parse_blocks(text.splitlines())
    except volfilter.VolfileError:
        return []
    found = []
    for block in blocks:
        if block.type in (volfilter.XLATOR_TYPE, volfilter.BRICK_XLATOR_TYPE):
            path = block.options.get("module-path", "")
            bundle = bundle_of_path(path)
            found.append({"type": block.type, "module": block.options.get("module-name"),
                          "bundle": bundle, "module_path": path or None})
    return found


def bundle_of_path(path):
    """The bundle hash a module path or file lies in, or None."""
    parts = Path(path or "").parts
    for index, part in enumerate(parts):
        if part == "bundles" and index + 1 < len(parts) and re.fullmatch(r"[0-9a-f]{64}", parts[index + 1]):
            return parts[index + 1]
    return None


def brick_volfile_id(volume, host, path):
    return f"{volume}.{host}.{path.strip('/').replace('/', '-')}"


def server_view(gluster, volume, server, bricks):
    """What one server's glusterd says: options, served volfiles."""
    view = {"reachable": True, "error": None, "configured": None, "client_volfile": None,
            "brick_volfiles": {}}
    try:
        info = gluster.xml("volume", "info", volume).findall("volInfo/volumes/volume")
        if not info:
            raise Unreachable(f"knows no volume {volume}")
        view["configured"] = configured(volume_options(info[0]), volume)
        view["client_volfile"] = glupy_in_volfile(gluster.run("system::", "getspec", volume))
        for brick in bricks:
            volfile_id = brick_volfile_id(volume, brick["host"], brick["path"])
            try:
                view["brick_volfiles"][brick["path"]] = glupy_in_volfile(
                    gluster.run("system::", "getspec", volfile_id))
            except Exception as e:  # one brick's volfile: say so, keep going
                view["brick_volfiles"][brick["path"]] = {"error": str(e)}
    except Exception as e:
        view.update(reachable=False, error=str(e).strip().splitlines()[-1] if str(e).strip() else
                    type(e).__name__)
    return view


def volume_bricks(gluster, volume):
    """[{host, path, uuid, pid, online}] from volume status (every server)."""
    try:
        root = gluster.xml("volume", "status", volume)
    except Exception:
        root = None
    found = {}
    if root is not None:
        for node in root.iter("node"):
            path = node.findtext("path", "")
            if not path.startswith("/"):
                continue
            online = node.findtext("status") == "1"
            pid = node.findtext("pid")
            found[(node.findtext("hostname"), path)] = {
                "host": node.findtext("hostname"), "path": path, "uuid": node.findtext("peerid"),
                "pid": int(pid) if online and pid and pid.isdigit() and int(pid) > 0 else None,
                "online": online}
    return found


# ---------------------------------------------------------------- processes

def local_processes():
    """[{pid, program, args}] of glusterfs/glusterfsd processes on this host."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            args = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        program = os.path.basename(args[0]) if args and args[0] else ""
        if program in ("glusterfs", "glusterfsd"):
            found.append({"pid": int(entry), "program": program, "args": [a for a in args if a]})
    return found


def arg_value(args, *names):
    """The value of -x V, --long V or --long=V in an argument list."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg[len(name) + 1:]
    return None


def same_host(pid):
    """Whether process pid has this process's host name: a process in
    another UTS namespace (a container) is another host to the pool, and
    registers under its own name."""
    try:
        return os.readlink(f"/proc/{pid}/ns/uts") == os.readlink("/proc/self/ns/uts")
    except OSError:
        return True  # no namespace links: one host


def local_clients(volume, processes):
    """FUSE clients of volume on this host: [{pid, server, mountpoint}]."""
    clients = []
    for proc in processes:
        args = proc["args"]
        if proc["program"] != "glusterfs" or "--process-name" in args or not same_host(proc["pid"]):
            continue
        volfile_id = (arg_value(args, "--volfile-id") or "").lstrip("/")
        if volfile_id != volume:
            continue
        server = arg_value(args, "--volfile-server", "-s")
        mountpoint = args[-1] if len(args) > 1 and not args[-1].startswith("-") else None
        clients.append({"pid": proc["pid"], "server": server, "mountpoint": mountpoint})
    return clients


def statedumps(pids, directories, timeout=DUMP_TIMEOUT):
    """{pid: {translator name: {key: value}}} of the glupy sections of a
    fresh statedump of each pid (None where no dump came in time)."""
    started = time.time() - 1
    seen = {d: set(os.listdir(d)) if os.path.isdir(d) else set() for d in directories}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
    result = {pid: None for pid in pids}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(v is None for v in result.values()):
        for directory in directories:
            if not os.path.isdir(directory):
                continue
            for name in set(os.listdir(directory)) - seen[directory]:
                match = re.search(r"\.(\d+)\.dump\.\d+$", name)
                if not match or int(match[1]) not in result or result[int(match[1])] is not None:
                    continue
                path = os.path.join(directory, name)
                try:
                    if os.stat(path).st_mtime < started:
                        continue
                    text = Path(path).read_text(errors="replace")
                except OSError:
                    continue
                if "DUMP-END-TIME" not in text:
                    continue  # still being written
                result[int(match[1])] = glupy_sections(text)
                seen[directory].add(name)
                os.unlink(path)  # ours: made for this status
        time.sleep(0.1)
    return result


def glupy_sections(text):
    sections, current = {}, None
    for line in text.splitlines():
        match = GLUPY_SECTION.match(line.strip())
        if match:
            current = sections.setdefault(match["name"], {})
        elif line.startswith("["):
            current = None
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return sections


def running(sections):
    """[{name, module, sha256, bundle, file, loaded_at}] from glupy sections
    (of a statedump, or a brick's status answer: the same keys)."""
    return [{"name": name, "module": s.get("module"), "sha256": s.get("module-sha256"),
             "file": s.get("module-file"), "bundle": bundle_of_path(s.get("module-file")),
             "loaded_at": s.get("loaded-at")}
            for name, s in sorted(sections.items())]


# ------------------------------------------------------------------ compare

def judge(process, wanted, expected_files):
    """The process's state against what the pool wants on its side."""
    loaded = process.get("running")
    if loaded is None:
        return "unknown", process.get("unknown_reason") or "its state could not be read"
    if wanted is None:
        return ("ok", "no glupy, as configured") if not loaded else \
            ("stale", "still runs glupy, which the volume no longer has: " + ", ".join(
                f"{x['module']} {(x['sha256'] or '?')[:12]}" for x in loaded))
    if not loaded:
        hint = (" (it answers no glupy status: no glupy in its graph, or a glupy.so without "
                "the status key)" if process.get("no_glupy") else "")
        return "missing", (f"runs no glupy{hint}; the pool has {wanted['module']} "
                           f"{short(wanted['bundle'])}")
    # The pool's translator, where a graph has more than one glupy.
    mine = next((x for x in loaded if x["module"] == wanted["module"]), loaded[0])
    if mine["module"] != wanted["module"]:
        return "differs", f"runs module {mine['module']}, the pool has {wanted['module']}"
    if wanted["bundle"] and mine["bundle"] != wanted["bundle"]:
        main = (expected_files or {}).get(f"{wanted['module']}.py")
        older = "an older" if mine["bundle"] else "a module not from the pool:"
        return "old", (f"runs {older} bundle {short(mine['bundle'])} (module sha256 "
                       f"{short(mine['sha256'])}), the pool has {short(wanted['bundle'])}"
                       + (f" (module sha256 {short(main)})" if main else ""))
    main = (expected_files or {}).get(f"{wanted['module']}.py")
    if main and mine["sha256"] != main:
        return "differs", f"module sha256 {short(mine['sha256'])}, the pool's is {short(main)}"
    return "ok", None


def short(digest):
    return (digest or "?")[:12]


def brick_answers(gluster, volume, bricks, timeout, forget=False):
    """Starts asking every online brick for its status key; returns a
    function giving {(host, path): result} (see brickquery.ask)."""
    online = sorted(key for key, brick in bricks.items() if brick["online"])
    try:
        volfile = gluster.run("system::", "getspec", volume)
    except Exception as e:  # every brick then says why
        why = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return lambda: {b: {"error": f"no client volfile to reach it: {why}"} for b in online}
    return brickquery.ask(online, volfile, timeout, forget)


def forget_registrations(gluster, volume, timeout=brickquery.BRICK_TIMEOUT):
    """Removes every client registration from every online brick's root;
    returns [(brick, why)] of the bricks where some stay (offline ones
    included: `glupy status` shows what they hold as gone)."""
    bricks = volume_bricks(gluster, volume)
    results = brick_answers(gluster, volume, bricks, timeout, forget=True)()
    failed = [(f"{host}:{path}", "brick offline")
              for (host, path), brick in sorted(bricks.items()) if not brick["online"]]
    failed += [(f"{host}:{path}", r["forget_error"])
               for (host, path), r in sorted(results.items()) if "forget_error" in r]
    return failed


# A registration not written again for this many intervals (and this many
# seconds more, for a slow brick or clock drift) is gone.
GONE_INTERVALS, GONE_SLACK = 3, 10


def host_id():
    """This host's id as client registrations carry it (src/announce.rs):
    the kernel boot id's first 8 hex digits and the UTS namespace's inode."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        uts = os.stat("/proc/self/ns/uts").st_ino
    except OSError:
        return None
    return f"{boot}-{uts}"


def registrations(results):
    """{(host id, pid): {translator: registration}} from every brick's
    answer: the newest copy of each (replicas may lag after an outage)."""
    newest = {}
    for result in results.values():
        for name, value in result.get("clients", {}).items():
            if name not in newest or value.get("written_at", 0) > newest[name].get("written_at", 0):
                newest[name] = value
    found = {}
    for value in newest.values():
        key = (value.get("host_id"), value.get("pid"))
        found.setdefault(key, {})[value.get("xlator", "?")] = value
    return found


def registered_process(host_pid, by_xlator, now):
    """A client process as its registrations describe it: the translators
    whose registration is fresh run; it is gone when none is."""
    def age(value):
        return max(0, int(now - value.get("written_at", 0)))

    def gone(value):
        return age(value) > GONE_INTERVALS * (value.get("interval") or 60) + GONE_SLACK

    newest = min(by_xlator.values(), key=age)
    live = {name: v for name, v in by_xlator.items() if not gone(v)}
    serves = newest.get("mount_point") or newest.get("process_name") or "?"
    process = {"kind": "client", "serves": serves, "pid": host_pid[1], "online": True,
               "hostname": newest.get("hostname"), "host_id": host_pid[0],
               "volfile_server": newest.get("volfile_server") or None,
               "running": running(live or by_xlator), "seen": "registration",
               "written_ago": age(newest)}
    if not live:
        process["gone"] = (f"not heard from for {age(newest)} s (it writes every "
                           f"{newest.get('interval') or 60} s): unmounted, ended, or cut off from "
                           f"the bricks; `glupy disable` removes its registration")
    return process


def apply_answer(process, result):
    """What a brick's status answer (or its absence) says about it."""
    if "answer" in result:
        answer = result["answer"]
        every = {answer.get("xlator", "?"): answer}
        every.update((b.get("xlator", "?"), b) for b in answer.get("below", []))
        process["running"] = running(every)
        process["pid"] = answer.get("pid", process["pid"])
        process["hostname"] = answer.get("hostname")
    elif "none" in result:
        process["running"] = []
        process["no_glupy"] = result["none"]
    else:
        process["unknown_reason"] = f"did not answer glupy's status query: {result['error']}"


def gather(gluster, volume, local_host_names=(), dump_dirs=(),
           brick_timeout=brickquery.BRICK_TIMEOUT):
    """The whole picture for volume: see the module docstring."""
    volume_xml = gluster.volume_info(volume)
    options = volume_options(volume_xml)
    wanted = configured(options, volume)
    expected = expected_sources(options)
    servers = pool_servers(gluster, volume_xml)
    bricks = volume_bricks(gluster, volume)
    for brick in volume_xml.findall("bricks/brick"):  # those volume status leaves out
        host, _, path = (brick.findtext("name") or "").rpartition(":")
        bricks.setdefault((host, path), {"host": host, "path": path, "pid": None, "online": False,
                                         "uuid": brick.findtext("hostUuid")})
    answers = brick_answers(gluster, volume, bricks, brick_timeout)
    processes = local_processes()
    clients = local_clients(volume, processes)
    dump_dir_bricks = options.get("server.statedump-path") or DEFAULT_DUMP_DIR
    result = {"volume": volume, "wanted": wanted, "servers": [], "problems": []}

    listed, queried = [], []
    for server in servers:
        mine = [b for b in bricks.values() if b["uuid"] == server["uuid"]]
        if not server["connected"]:
            view = {"reachable": False, "error": "not connected to the pool (glusterd down or "
                                                  "unreachable)", "configured": None,
                    "client_volfile": None, "brick_volfiles": {}}
        else:
            asked = gluster if server["self"] else gluster.remote(server["host"])
            view = server_view(asked, volume, server, mine)
        entry = {**server, **view, "processes": []}
        for brick in sorted(mine, key=lambda b: b["path"]):
            process = {"kind": "brick", "serves": f"{brick['host']}:{brick['path']}",
                       "pid": brick["pid"], "online": brick["online"], "running": None,
                       "volfile": view["brick_volfiles"].get(brick["path"])}
            if not brick["online"]:
                process["unknown_reason"] = "brick offline"
            else:
                queried.append(((brick["host"], brick["path"]), process))
            entry["processes"].append(process)
        result["servers"].append(entry)

    by_host = {s["host"]: s for s in result["servers"]}
    this_server = next((s for s in result["servers"] if s["self"]), None)
    for client in clients:
        server = by_host.get(client["server"]) or this_server
        process = {"kind": "client", "serves": client["mountpoint"], "pid": client["pid"],
                   "online": True, "running": None, "volfile_server": client["server"],
                   "hostname": socket.gethostname(), "seen": "statedump"}
        listed.append(process)
        if server is not None:
            server["processes"].append(process)

    dumps = statedumps([p["pid"] for p in listed],
                       sorted({dump_dir_bricks, DEFAULT_DUMP_DIR, *dump_dirs}))
    for process in listed:
        sections = dumps.get(process["pid"])
        if sections is None:
            process["unknown_reason"] = "no statedump came back"
        else:
            process["running"] = running(sections)
    results = answers()
    for key, process in queried:
        apply_answer(process, results[key])
    local_pids = {p["pid"] for p in listed}
    here = host_id()
    now = time.time()
    for host_pid, by_xlator in sorted(registrations(results).items(), key=str):
        if host_pid[0] == here and (host_pid[1] in local_pids or not _alive(host_pid[1])):
            continue  # seen by its statedump above, or ended (this host)
        process = registered_process(host_pid, by_xlator, now)
        server = by_host.get(process["volfile_server"]) or this_server
        if server is not None:
            server["processes"].append(process)

    for server in result["servers"]:
        server_problems(result, server, wanted, expected)
    result["consistent"] = not result["problems"]
    result["failed"] = [f"{s['host']}: {p['kind']} {p['serves']} (pid {p['pid']}): {p['why']}"
                        for s in result["servers"] for p in s["processes"]
                        if p.get("state") not in ("ok", "gone", None) and s["reachable"]]
    result["unreachable"] = [s["host"] for s in result["servers"] if not s["reachable"]]
    return result


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError):
        pass
    return True


def server_problems(result, server, wanted, expected):
    problems = result["problems"]
    host = server["host"]
    if not server["reachable"]:
        problems.append(f"{host}: unreachable: {server['error']}")
    else:
        here = server["configured"]
        for side in volfilter.SIDES:
            if (here or {}).get(side) != wanted[side]:
                problems.append(f"{host}: its glusterd stores another {side} configuration "
                                f"({describe(here.get(side))}, the pool has "
                                f"{describe(wanted[side])}): it has not synced yet")
        client_blocks = server["client_volfile"] or []
        if wanted["client"] and not any(b["type"] == volfilter.XLATOR_TYPE for b in client_blocks):
            problems.append(f"{host}: serves client volfiles without glupy: the glupy filter is "
                            f"not installed there, or failed (make install-admin on {host}, then "
                            f"glupy reload)")
        elif wanted["client"] and wanted["client"]["bundle"] and \
                client_blocks[0]["bundle"] != wanted["client"]["bundle"]:
            problems.append(f"{host}: serves client volfiles with bundle "
                            f"{short(client_blocks[0]['bundle'])}, not the pool's "
                            f"{short(wanted['client']['bundle'])}")
        for path, blocks in server["brick_volfiles"].items():
            if isinstance(blocks, dict) or not wanted["brick"] or not wanted["brick"]["bundle"]:
                continue
            if not blocks or blocks[0]["bundle"] != wanted["brick"]["bundle"]:
                problems.append(f"{host}: the volfile of brick {path} does not point at the pool's "
                                f"bundle: the glupy filter is not installed there, or failed")
    for process in server["processes"]:
        side = process["kind"]
        if process.get("gone"):
            process["state"], process["why"] = "gone", process["gone"]
            continue  # a registration left behind is no running process
        state, why = judge(process, wanted.get(side), expected.get(side))
        process["state"], process["why"] = state, why
        if state != "ok":
            problems.append(f"{host}: {side} {process['serves']} (pid {process['pid'] or '-'}): "
                            f"{why}")


def describe(config):
    if not config:
        return "none"
    return f"{config['module']} {short(config['bundle'])}"


# ------------------------------------------------------------------- text

def render_text(status):
    lines = [f"volume {status['volume']}"]
    for side in volfilter.SIDES:
        config = status["wanted"][side]
        lines.append(f"  {side}s: " + (f"{config['module']} bundle {short(config['bundle'])} at "
                                        f"{config['position']}" if config else "no glupy"))
    for server in status["servers"]:
        where = " (this server)" if server["self"] else ""
        lines.append(f"  server {server['host']}{where}: "
                     + ("reachable" if server["reachable"] else f"UNREACHABLE: {server['error']}"))
        for process in server["processes"]:
            loaded = process.get("running")
            if loaded:
                mine = loaded[0]
                shown = (f"{mine['module']} sha256 {short(mine['sha256'])} bundle "
                         f"{short(mine['bundle'])} loaded {mine['loaded_at']}")
            elif loaded == []:
                shown = "no glupy"
            else:
                shown = "?"
            mark = "" if process.get("state") == "ok" else f"  <- {process.get('why')}"
            where = ""
            if process.get("seen") == "registration":
                where = (f" on {process['hostname']} (registered {process['written_ago']} s "
                         f"ago)")
            lines.append(f"    {process['kind']:6} {process['serves']} pid {process['pid'] or '-'}"
                         f"{where}: {shown}{mark}")
    if status["problems"]:
        lines.append("  NOT CONSISTENT:")
        lines += [f"    - {p}" for p in status["problems"]]
    else:
        lines.append("  consistent: every server and process runs what the pool has")
    return "\n".join(lines)
