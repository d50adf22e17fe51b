"""glupy: Python translators in glusterd-managed volumes.

    glupy enable V MODULE [--side brick|client] [--position P] [--option K=V ...]
                          [--module-path DIR] [--restart]
    glupy disable V [--side brick|client] [--restart]
    glupy reload V [--side brick|client]
    glupy status [V ...] [--json] [--brick-timeout S] [--prometheus [--textfile FILE] [--pid PID]]
    glupy check MODULE.py

Brick side: `gluster volume set V user.xlator.glupy POSITION` and
`user.xlator.glupy.OPTION VALUE`; the bricks load it when restarted.
Client side: the glusterd volfile filter (filter/glupy-filter) inserts glupy
into V's FUSE/gfapi volfiles per its configuration file, which this command
edits before making glusterd regenerate the volfiles; running clients switch
graphs by themselves. docs/managed-volumes.md explains the details.
"""

import argparse
import difflib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from . import pool, volfilter

KEY = "user.xlator.glupy"
BRICK_TYPE = "user/glupy"
GLUPY_TYPES = (BRICK_TYPE, volfilter.XLATOR_TYPE)
# glusterd's server_graph_table, bottom to top. A position puts glupy directly
# above that translator; arbiter, cdc, namespace and sdfs are built only when
# enabled, and otherwise mean "above whatever is below them".
BRICK_POSITIONS = ("posix", "arbiter", "trash", "changelog", "bitrot-stub", "access-control",
                   "locks", "worm", "read-only", "leases", "upcall", "io-threads", "selinux",
                   "marker", "barrier", "index", "quota", "cdc", "namespace", "sdfs")
RECOMMENDED_BRICK_POSITION = "upcall"  # directly below io-threads: see the docs
REFUSED_BRICK_POSITIONS = {
    "io-stats": "glusterd accepts it, but the bricks then never come online (glusterd shows "
                "them offline with no port, clients get ENOTCONN): glupy would sit between "
                "protocol/server and the io-stats translator named after the brick path",
}
# Options the host reads itself; the CLI sets them through dedicated flags.
HOST_OPTIONS = ("module-name", "reload")
# Set (and reset, if the admin never set it) to make glusterd write the
# volfiles again; at its current value it changes no graph.
REGENERATE_OPTION = "diagnostics.client-log-level"
DEFAULT_GLUSTERD_DIR = Path("/var/lib/glusterd")
# Where enable looks for the module when no --module-path is given.
DEFAULT_SOURCE_DIR = Path("/etc/glusterfs/glupy")
RESTART_TIMEOUT = 60.0


class CliError(Exception):
    """A failure to report to the admin (no traceback)."""


# ------------------------------------------------------------------ gluster

class Gluster:
    """The gluster command line, in script mode, talking to one glusterd."""

    def __init__(self, binary="gluster", glusterd_sock=None, remote_host=None, timeout=300):
        self.binary = binary
        self.glusterd_sock = glusterd_sock
        self.remote_host = remote_host
        self.timeout = timeout

    def remote(self, host, timeout=30):
        """The glusterd of another server (read-only commands only: glusterd
        serves volume info/status, pool list and getwd to remote CLIs)."""
        return Gluster(self.binary, remote_host=host, timeout=timeout)

    def command(self, *args):
        base = [self.binary, "--mode=script"]
        if self.remote_host:
            base.append(f"--remote-host={self.remote_host}")
        elif self.glusterd_sock:
            base.append(f"--glusterd-sock={self.glusterd_sock}")
        return base + [str(a) for a in args]

    def run(self, *args):
        try:
            done = subprocess.run(self.command(*args), capture_output=True, text=True,
                                  timeout=self.timeout)
        except FileNotFoundError:
            raise CliError(f"{self.binary} not found: install glusterfs-server") from None
        except subprocess.TimeoutExpired:
            raise CliError(f"gluster {' '.join(map(str, args))}: no answer from "
                           f"{self.remote_host or 'glusterd'} in {self.timeout}s") from None
        if done.returncode != 0:
            message = (done.stderr + done.stdout).strip() or f"exit status {done.returncode}"
            raise CliError(f"gluster {' '.join(map(str, args))}: {message}")
        return done.stdout

    def xml(self, *args):
        root = ElementTree.fromstring(self.run(*args, "--xml"))
        if root.findtext("opRet", "0") != "0":
            raise CliError(f"gluster {' '.join(args)}: {root.findtext('opErrstr') or 'failed'}")
        return root

    def volume_info(self, volume):
        volumes = self.xml("volume", "info", volume).findall("volInfo/volumes/volume")
        if not volumes:
            raise CliError(f"volume {volume} does not exist")
        return volumes[0]

    def options(self, volume):
        """The options set on volume, in glusterd's order."""
        return {o.findtext("name"): o.findtext("value") or ""
                for o in self.volume_info(volume).findall("options/option")}

    def started(self, volume):
        return self.volume_info(volume).findtext("statusStr") == "Started"

    def get(self, volume, key):
        value = self.xml("volume", "get", volume, key).findtext("volGetopts/Opt/Value") or ""
        return value.replace("(DEFAULT)", "").strip()

    def set(self, volume, pairs):
        words = [word for pair in pairs for word in pair]
        if words:
            self.run("volume", "set", volume, *words)

    def reset(self, volume, key=None):
        self.run("volume", "reset", volume, *([key] if key else []))

    def workdir(self):
        return Path(self.run("system::", "getwd").strip())

    def other_servers(self):
        """Host names of the other glusterds of the trusted pool."""
        try:
            peers = self.xml("pool", "list").findall("peerStatus/peer")
        except CliError:
            return []
        return [p.findtext("hostname") for p in peers if p.findtext("hostname") != "localhost"]

    def brick_states(self, volume):
        """[(brick, online)] from volume status."""
        try:
            root = self.xml("volume", "status", volume)
        except CliError:
            return []
        return [(f"{n.findtext('hostname')}:{n.findtext('path')}", n.findtext("status") == "1")
                for n in root.iter("node") if n.findtext("path", "").startswith("/")]

    def restart(self, volume, timeout=RESTART_TIMEOUT):
        """Stop and start volume; wait until its bricks are online."""
        self.run("volume", "stop", volume)
        self.run("volume", "start", volume)
        deadline = time.monotonic() + timeout
        while True:
            states = self.brick_states(volume)
            if states and all(online for _brick, online in states):
                return
            if time.monotonic() > deadline:
                offline = [brick for brick, online in states if not online]
                raise CliError(f"volume {volume} restarted, but bricks are offline after "
                               f"{timeout:.0f}s: {', '.join(offline)} (see their logs)")
            time.sleep(0.3)


class Context:
    """Where things are: the gluster CLI, glusterd's directory, the filter config."""

    def __init__(self, args):
        self.gluster = Gluster(args.gluster, args.glusterd_sock)
        self._glusterd_dir = Path(args.glusterd_dir) if args.glusterd_dir else None
        self._filter_config = Path(args.filter_config) if args.filter_config else None

    @property
    def glusterd_dir(self):
        if self._glusterd_dir is None:
            try:
                self._glusterd_dir = self.gluster.workdir()
            except CliError:
                self._glusterd_dir = DEFAULT_GLUSTERD_DIR
        return self._glusterd_dir

    @property
    def filter_config(self):
        return self._filter_config or volfilter.config_path(self.glusterd_dir)

    def volume_dir(self, volume):
        return self.glusterd_dir / "vols" / volume


# ------------------------------------------------------------ option words

def parse_options(words):
    """{key: value} from --option K=V words, checked for what glusterd and the
    volfile syntax allow."""
    options = {}
    for word in words or ():
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise CliError(f"--option {word!r}: expected KEY=VALUE")
        check_option(key, value)
        options[key] = value
    return options


def check_option(key, value):
    if "." in key:
        raise CliError(f"option {key!r}: glusterd cuts option names at the last dot "
                       f"(user.xlator.glupy.a.b becomes option b); use a name without dots")
    if re.search(r"\s", key) or not value or re.search(r"\s", value):
        raise CliError(f"option {key}={value!r}: names and values must be non-empty, without "
                       f"spaces (the volfile syntax splits on them)")
    if key in HOST_OPTIONS:
        raise CliError(f"option {key} is set by glupy itself (give the module as an argument, "
                       f"use 'glupy reload' to reload)")


def module_options(module_path, options):
    merged = {"module-path": str(Path(module_path).resolve())} if module_path else {}
    merged.update(options)
    return merged


# --------------------------------------------------------------- checking

# glupy check judges files as a brick, running as root, would: only root's are trusted.
BRICK_TRUSTED_UIDS = frozenset({0})


def check_report(module, module_path):
    """(lines, problems): what init would say about the module."""
    from . import FOPS, Translator, _host  # imports the translator API: only here

    lines, problems = [], []
    try:
        loaded = _host.import_fresh(module, module_path, trusted=BRICK_TRUSTED_UIDS)
        cls = _host.find_class(loaded)
    except _host.LoadError as e:
        return lines, [str(e)]
    lines.append(f"module {module} ({getattr(loaded, '__file__', '?')}): class xlator found")
    found, problems = _host.check_class(cls)
    problems += misnamed_methods(cls, FOPS, Translator, _host.HOOKS)
    handled = [f"{fop} ({'+'.join(s for s, has in zip(('fop', 'cbk'), sides) if has)})"
               for fop, sides in sorted(found.items())]
    lines.append("fops in Python: " + (", ".join(handled) or "none (everything passes through)"))
    base = set(dir(Translator))
    hooks = [h for h in _host.HOOKS if h not in base and callable(getattr(cls, h, None))]
    lines.append("hooks: " + (", ".join(hooks) or "none"))
    return lines, problems


SUFFIX_TYPOS = re.compile(r"^(?P<fop>[a-z_]+?)_?(?P<suffix>fops|cbks|callback|cb|handler|fn|fop|cbk)$")


def misnamed_methods(cls, fops, base, hooks):
    """Methods that look meant for GlusterFS but that init will never call."""
    problems = []
    base_names = set(dir(base))
    for attr in sorted(set(dir(cls)) - base_names):
        if attr.startswith("_") or attr.endswith(("_fop", "_cbk")) or attr in hooks:
            continue
        if not callable(getattr(cls, attr, None)):
            continue
        hint = _misnamed_hint(cls, attr, fops, hooks)
        if hint:
            problems.append(f"method {attr} is never called: did you mean {hint}?")
    return problems


def _misnamed_hint(cls, attr, fops, hooks):
    match = SUFFIX_TYPOS.match(attr)
    if match and match["fop"] in fops:
        side = "cbk" if match["suffix"] in ("cbks", "callback", "cb") else "fop"
        return f"{match['fop']}_{side}"
    if attr in fops and _takes_frame(cls, attr):
        return f"{attr}_fop"
    close = difflib.get_close_matches(attr, hooks, n=1, cutoff=0.8)
    return close[0] if close else None


def _takes_frame(cls, attr):
    try:
        params = list(inspect.signature(getattr(cls, attr)).parameters)
    except (TypeError, ValueError):
        return False
    return len(params) > 1 and params[1] == "frame"


def module_location(target, module_path=None):
    """(module name, directory) from FILE.py or a module name."""
    path = Path(target)
    if target.endswith(".py"):
        if not path.is_file():
            raise CliError(f"{target}: no such file")
        # Not resolved: the check walks the symlinks on the way too.
        return path.stem, os.path.dirname(os.path.abspath(target))
    return target, module_path and os.path.abspath(module_path)


def precheck(module, module_path):
    """Refuse a module init would refuse, when it can be found here."""
    _lines, problems = check_report(module, module_path)
    if problems and "not found" in problems[0]:
        print(f"glupy: warning: {problems[0]}\n  (not checked here: it must exist on every "
              f"server that loads it)", file=sys.stderr)
        return
    if problems:
        raise CliError(f"module {module} would fail to load:\n  " + "\n  ".join(problems)
                       + "\n(glupy check shows the details; --no-check skips this)")


# ---------------------------------------------------------------- brick side

def brick_keys(options):
    return {k: v for k, v in options.items() if k == KEY or k.startswith(KEY + ".")}


def check_brick_position(position):
    if position in REFUSED_BRICK_POSITIONS:
        raise CliError(f"position {position}: {REFUSED_BRICK_POSITIONS[position]}")
    if position not in BRICK_POSITIONS:
        raise CliError(f"position {position!r} is not a brick position; glusterd knows: "
                       f"{', '.join(BRICK_POSITIONS)} (recommended: {RECOMMENDED_BRICK_POSITION})")


def enable_brick(ctx, volume, module, position, options, restart, source):
    position = position or RECOMMENDED_BRICK_POSITION
    check_brick_position(position)
    before = ctx.gluster.options(volume)
    earlier = brick_keys(before)
    digest = upload_bundle(ctx, volume, "brick", module, source, before)
    token = earlier.get(f"{KEY}.reload", "")
    if not token.startswith(digest[:16]):  # new code: running bricks load it
        token = reload_token(digest)
    pairs = [(KEY, position), (f"{KEY}.module-name", module), (f"{KEY}.reload", token)]
    pairs += [(f"{KEY}.{key}", value) for key, value in options.items()]
    ctx.gluster.set(volume, pairs)
    print(f"{volume}: bricks get glupy module {module} (bundle {digest[:12]}) above {position}")
    stale = sorted(set(earlier) - {key for key, _ in pairs} - {f"{KEY}.module-path"})
    if stale:
        print(f"  still set from before: {', '.join(stale)} (glupy disable clears them all)")
    finish_brick_change(ctx, volume, restart)


def disable_brick(ctx, volume, restart):
    """glusterd cannot reset a user.xlator option alone: reset all options,
    then set again every option that is not glupy's."""
    before = ctx.gluster.options(volume)
    if not brick_keys(before):
        raise CliError(f"glupy is not enabled on the bricks of {volume}")
    brick_bundle = f"{volfilter.POOL_KEY}.brick"
    keep = {k: v for k, v in before.items() if k not in brick_keys(before)
            and k != brick_bundle and not k.startswith(brick_bundle + ".")}
    ctx.gluster.reset(volume)
    failed = restore_options(ctx.gluster, volume, keep)
    added = sorted(set(ctx.gluster.options(volume)) - set(before))
    if added:
        print(f"  note: the reset added defaults that were not set before: {', '.join(added)}")
    print(f"{volume}: glupy removed from the brick volfiles (options reset and set again: "
          f"{', '.join(keep) or 'none'})")
    finish_brick_change(ctx, volume, restart)
    if failed:
        raise CliError(f"{volume}: these options were reset and could not be set again; set them "
                       f"yourself:\n  " + "\n  ".join(failed))


def _enable_word(value):
    return "enable" if value.lower() in ("on", "enable", "true", "yes", "1") else "disable"


# Options glusterd refuses in 'volume set' once a volume was started, with the
# command that sets them instead.
SPECIAL_OPTIONS = {
    "cluster.granular-entry-heal": lambda v, value: ("volume", "heal", v, "granular-entry-heal",
                                                     _enable_word(value)),
    "features.scrub-freq": lambda v, value: ("volume", "bitrot", v, "scrub-frequency", value),
    "features.scrub-throttle": lambda v, value: ("volume", "bitrot", v, "scrub-throttle", value),
}


def restore_options(gluster, volume, wanted):
    """Set again the options of wanted that differ now; returns the failures."""
    current = gluster.options(volume)
    missing = {k: v for k, v in wanted.items() if current.get(k) != v}
    plain = [(k, v) for k, v in missing.items() if k not in SPECIAL_OPTIONS]
    failed = []
    try:
        gluster.set(volume, plain)  # one regeneration for all of them
    except CliError:
        for key, value in plain:  # find out which ones glusterd refuses
            try:
                gluster.set(volume, [(key, value)])
            except CliError as e:
                failed.append(f"{key} {value}: {e}")
    for key, value in missing.items():
        if key in SPECIAL_OPTIONS:
            # glusterd refuses granular-entry-heal while heal info lists an
            # entry, which a write in flight when the bricks restarted (a
            # client's registration on the root, an AFR transaction's dirty
            # mark) leaves until the self-heal daemon crawls again, up to
            # cluster.heal-timeout (10 minutes) later: glupy starts that heal
            # and tries again.
            deadline = time.monotonic() + SPECIAL_OPTION_PATIENCE
            next_heal = time.monotonic()
            while True:
                try:
                    gluster.run(*SPECIAL_OPTIONS[key](volume, value))
                    break
                except CliError as e:
                    if "heal" not in str(e).lower() or time.monotonic() >= deadline:
                        failed.append(f"{key} {value}: {e}{heal_info(gluster, volume)}")
                        break
                    if time.monotonic() >= next_heal:
                        next_heal = time.monotonic() + HEAL_AGAIN
                        try:
                            gluster.run("volume", "heal", volume)
                        except CliError:
                            pass  # (no self-heal daemon: the refusal is reported)
                    time.sleep(1)
    return failed


def heal_info(gluster, volume):
    """What `gluster volume heal V info` lists, to show beside a refusal."""
    try:
        listed = gluster.run("volume", "heal", volume, "info")
    except CliError as e:
        return f"\n    (heal info: {e})"
    lines = [line for line in listed.splitlines() if line.strip()][:20]
    return "".join(f"\n    {line}" for line in lines)


# How long restore_options tries again an option glusterd refuses while
# entries wait for heal (seconds).
SPECIAL_OPTION_PATIENCE = 60
# How often, meanwhile, it asks the self-heal daemon to heal (seconds).
HEAL_AGAIN = 15


def finish_brick_change(ctx, volume, restart):
    if not ctx.gluster.started(volume):
        print(f"  {volume} is stopped: its bricks use the new volfiles when it starts")
    elif restart:
        ctx.gluster.restart(volume)
        print(f"  {volume} restarted: its bricks run the new volfiles")
    else:
        print(f"  running bricks change only when restarted: glupy enable/disable --restart, or\n"
              f"    gluster volume stop {volume} && gluster volume start {volume}\n"
              f"  (replicated volumes, one brick at a time: kill that brick's glusterfsd, then\n"
              f"    gluster volume start {volume} force; wait for gluster volume heal {volume} info)")


def reload_brick(ctx, volume, prepared):
    digest = prepared.upload(ctx, volume)
    ctx.gluster.set(volume, [(f"{KEY}.reload", reload_token(digest))])
    print(f"{volume}: bricks reload module {prepared.module} (bundle {digest[:12]}); a module "
          f"that fails to load there is logged, and the running translator kept")


# ------------------------------------------------------------- pool bundles

def reload_token(digest):
    """A new value of option reload: the bundle's hash, then a clock."""
    return f"{digest[:16]}.{time.time_ns()}"


def source_dir(module, module_path):
    """The directory on this server whose files make module's bundle."""
    directory = Path(module_path or DEFAULT_SOURCE_DIR)
    if not (directory / f"{module}.py").is_file() and not (directory / module / "__init__.py").is_file():
        raise CliError(f"module {module} not found in {directory}: glupy distributes the module "
                       f"from this server, give --module-path DIR (the directory holding "
                       f"{module}.py and its helpers)")
    return directory.resolve()


def upload_bundle(ctx, volume, side, module, directory, current):
    """Pass 1 of a change: the bundle into the volume options (glusterd
    stores and syncs them; it writes the volfiles before it stores the
    options, so the filters see them at the next regeneration, pass 2)."""
    files = volfilter.collect_files(directory)
    digest, pairs = volfilter.bundle_options(side, files, directory)
    pairs += blank_stale_chunks(current, side, len(pairs) - 2)
    ctx.gluster.set(volume, pairs)
    return digest


def blank_stale_chunks(current, side, count):
    """Chunks of an earlier, longer bundle, emptied (they cannot be reset alone)."""
    prefix = f"{volfilter.POOL_KEY}.{side}.bundle."
    return [(key, volfilter.OFF) for key in current
            if key.startswith(prefix) and key[len(prefix):].isdigit()
            and int(key[len(prefix):]) >= count and current[key] != volfilter.OFF]


class Prepared:
    """A module checked once, before anything changes, ready to go out."""

    def __init__(self, side, module, directory):
        self.side, self.module, self.directory = side, module, directory

    def upload(self, ctx, volume, current=None):
        current = ctx.gluster.options(volume) if current is None else current
        return upload_bundle(ctx, volume, self.side, self.module, self.directory, current)


def prepare_reload(ctx, volume, side, module_path, no_check):
    """Finds and checks the new source of side's module (refused: nothing changes)."""
    options = ctx.gluster.options(volume)
    if side == "brick":
        module = options.get(f"{KEY}.module-name")
    else:
        entry = volfilter.pool_client_entry(volume, options)
        module = entry.module if isinstance(entry, volfilter.ClientEntry) else None
    if not module:
        raise CliError(f"glupy is not enabled on the {side}s of {volume}")
    stored = options.get(f"{volfilter.POOL_KEY}.{side}.source")
    directory = source_dir(module, module_path or stored)
    if not no_check:
        _lines, problems = check_report(module, str(directory))
        if problems:
            raise CliError(f"{volume}: the new {module} ({directory}) would fail to load, nothing "
                           f"was changed:\n  " + "\n  ".join(problems))
    return Prepared(side, module, directory)


# --------------------------------------------------------------- client side

def fuse_volfiles(ctx, volume):
    directory = ctx.volume_dir(volume)
    return [directory / f"{volume}.tcp-fuse.vol", directory / f"trusted-{volume}.tcp-fuse.vol"]


def filter_installed():
    """The path glusterd runs the filter from, or None if it is not there."""
    try:
        xlatordir = subprocess.run(["glusterfs", "--print-xlatordir"], capture_output=True,
                                   text=True).stdout.strip()
    except FileNotFoundError:
        return None
    path = Path(xlatordir).parent / "filter" / "glupy-filter"
    return path if os.access(path, os.X_OK) else None


def dry_run_filter(ctx, volume, entry):
    """Raise CliError with the filter's message if it could not place entry."""
    for volfile in fuse_volfiles(ctx, volume):
        if volfile.exists():
            try:
                volfilter.filter_text(volfile.read_text(), volume, entry)
            except volfilter.VolfileError as e:
                raise CliError(f"{volfile.name}: {e}") from None


def regenerate(ctx, volume):
    """Make glusterd write V's volfiles again (which runs the filters)."""
    explicit = ctx.gluster.options(volume)
    if REGENERATE_OPTION in explicit:
        ctx.gluster.set(volume, [(REGENERATE_OPTION, explicit[REGENERATE_OPTION])])
        return
    ctx.gluster.set(volume, [(REGENERATE_OPTION, ctx.gluster.get(volume, REGENERATE_OPTION))])
    ctx.gluster.reset(volume, REGENERATE_OPTION)


def glupy_blocks(path):
    """[{name, type, module, options, above}] of the glupy translators in a volfile."""
    try:
        blocks = volfilter.parse_blocks(Path(path).read_text().splitlines())
    except (OSError, volfilter.VolfileError):
        return []
    return [{"name": b.name, "type": b.type, "module": b.options.get("module-name"),
             "options": {k: v for k, v in b.options.items() if k != "module-name"},
             "above": " ".join(b.subvolumes)}
            for b in blocks if b.type in GLUPY_TYPES]


def verify_client_volfiles(ctx, volume, entry):
    """After regeneration: the volfiles hold exactly what the config says."""
    wanted = entry.module if entry else None
    for volfile in fuse_volfiles(ctx, volume):
        modules = [b["module"] for b in glupy_blocks(volfile) if b["type"] == volfilter.XLATOR_TYPE]
        if modules != ([wanted] if wanted else []):
            raise CliError(
                f"{volfile} has glupy modules {modules}, expected {[wanted] if wanted else []}: "
                + ("the filter is not installed where glusterd runs filters (make install)"
                   if filter_installed() is None else
                   "glusterd did not run the filter, or it failed (see glusterd's log)"))


def require_filter():
    if filter_installed() is None:
        raise CliError("the glupy filter is not installed where glusterd runs filters "
                       "($(dirname $(glusterfs --print-xlatordir))/filter/glupy-filter): make install")


def client_entry(ctx, volume, options=None):
    """The client entry in force for volume: the pool's (volume options),
    else the local filter configuration's (set by hand)."""
    options = ctx.gluster.options(volume) if options is None else options
    pool = volfilter.pool_client_entry(volume, options)
    if pool is volfilter.OFF:
        return None
    if pool is not None:
        return pool
    return volfilter.load_config(ctx.filter_config).get(volume)


def set_client_entry(ctx, volume, entry, extra=()):
    """Pass 1: the entry (and extra pairs: a bundle) into the volume options;
    pass 2: regenerate, so that every server's filter writes it."""
    dry_run_filter(ctx, volume, entry)
    value = volfilter.OFF if entry is None else json.dumps(entry.to_json(), separators=(",", ":"))
    ctx.gluster.set(volume, [*extra, (f"{volfilter.POOL_KEY}.client", value)])
    regenerate(ctx, volume)
    verify_client_volfiles(ctx, volume, entry)


def enable_client(ctx, volume, module, position, options, source):
    require_filter()
    current = ctx.gluster.options(volume)
    files = volfilter.collect_files(source)
    digest, pairs = volfilter.bundle_options("client", files, source)
    pairs += blank_stale_chunks(current, "client", len(pairs) - 2)
    options = {k: v for k, v in options.items() if k != "module-path"}  # the filter's
    if "status-space" not in options and brick_file_systems(ctx, volume) == {"xfs"}:
        # The registrations' space limit is for ext4 bricks (src/announce.rs).
        options["status-space"] = "0"
    earlier = volfilter.pool_client_entry(volume, current)
    token = earlier.options.get("reload", "") if isinstance(earlier, volfilter.ClientEntry) else ""
    options["reload"] = token if token.startswith(digest[:16]) else reload_token(digest)
    entry = volfilter.parse_entry(volume, {"module": module, "position": position or volfilter.TOP,
                                           "options": options})
    set_client_entry(ctx, volume, entry, pairs)
    print(f"{volume}: client volfiles get glupy module {module} (bundle {digest[:12]}) at "
          f"{entry.position} on every server; running clients switch graphs by themselves")


def brick_file_systems(ctx, volume):
    """The file systems of the volume's bricks, as glusterd reports them
    (empty when it cannot say: a brick offline, an older glusterd)."""
    try:
        root = ctx.gluster.xml("volume", "status", volume, "detail")
    except (CliError, ElementTree.ParseError):
        return set()
    names = {(node.findtext("fsName") or "").strip().lower() for node in root.iter("node")
             if (node.findtext("path") or "").startswith("/")}
    return set() if "" in names else names


def disable_client(ctx, volume):
    options = ctx.gluster.options(volume)
    if client_entry(ctx, volume, options) is None:
        raise CliError(f"glupy is not enabled on the clients of {volume}")
    local = volfilter.load_config(ctx.filter_config)
    if volume in local:  # set by hand here before: it would come back
        local.pop(volume)
        volfilter.save_config(ctx.filter_config, local)
    pairs = [(f"{volfilter.POOL_KEY}.client.bundle", volfilter.OFF)]
    pairs += blank_stale_chunks(options, "client", 0)
    set_client_entry(ctx, volume, None, pairs)
    print(f"{volume}: glupy removed from the client volfiles; running clients switch back")
    # What the clients registered for `glupy status` (src/announce.rs) would
    # otherwise stay on the bricks' roots until it counted as gone.
    for brick, why in pool.forget_registrations(ctx.gluster, volume):
        print(f"{volume}: the client registrations on brick {brick} stay ({why}); `glupy "
              f"status` lists them as gone once they are {pool.GONE_INTERVALS} intervals old",
              file=sys.stderr)


def reload_client(ctx, volume, prepared):
    require_filter()
    options = ctx.gluster.options(volume)
    entry = volfilter.pool_client_entry(volume, options)
    digest = prepared.upload(ctx, volume, options)
    entry.options["reload"] = reload_token(digest)
    set_client_entry(ctx, volume, entry)
    print(f"{volume}: clients reload module {prepared.module} (bundle {digest[:12]}); a module "
          f"that fails to load there is logged, and the running translator kept")


# ---------------------------------------------------------------- status

# Running glusterfs/glusterfsd processes and their arguments: pool.py's.
process_table = pool.local_processes
option_value = pool.arg_value


def describe_process(proc):
    """kind, volume, what it serves and its log file, from its command line."""
    args = proc["args"]
    volfile_id = option_value(args, "--volfile-id") or ""
    info = {"pid": proc["pid"], "program": proc["program"], "volfile_id": volfile_id,
            "log": option_value(args, "-l", "--log-file")}
    if proc["program"] == "glusterfsd":
        info.update(kind="brick", volume=volfile_id.split(".")[0],
                    serves=option_value(args, "--brick-name"))
    elif volfile_id.startswith("shd/") or "--process-name" in args:
        info.update(kind=option_value(args, "--process-name") or "daemon",
                    volume=volfile_id.rpartition("/")[2], serves=None)
    else:
        info.update(kind="client", volume=volfile_id.lstrip("/"),
                    serves=args[-1] if len(args) > 1 and not args[-1].startswith("-") else None)
    return info


FINAL_GRAPH = re.compile(r"^Final graph:\n\+-+\+\n(?P<graph>.*?)^\+-+\+$", re.M | re.S)
GRAPH_LINE = re.compile(r"^\s*\d+:\s?(?P<text>.*)$")


def running_graph(log_path):
    """Blocks of the last graph a process logged (its running graph), or None."""
    try:
        text = Path(log_path).read_text(errors="replace")
    except (OSError, TypeError):
        return None
    graphs = list(FINAL_GRAPH.finditer(text))
    if not graphs:
        return None
    lines = [m["text"] for m in map(GRAPH_LINE.match, graphs[-1]["graph"].splitlines()) if m]
    try:
        return volfilter.parse_blocks(lines)
    except volfilter.VolfileError:
        return None


def process_status(proc):
    info = describe_process(proc)
    blocks = running_graph(info["log"])
    info["glupy"] = None if blocks is None else [
        {"name": b.name, "module": b.options.get("module-name")}
        for b in blocks if b.type in GLUPY_TYPES]
    return info


def read_info_options(volume_dir):
    """The user.xlator.* options glusterd stores for a volume (its info file)."""
    return volfilter.read_volume_options(volume_dir, prefix="user.xlator.")


def expected_modules(ctx, proc, volfiles):
    """The glupy modules the process's volfile names: what it should run."""
    if proc["kind"] == "brick":
        name = f"{proc['volfile_id']}.vol"
    elif proc["kind"] == "client":
        name = f"{proc['volume']}.tcp-fuse.vol"
    else:
        return None
    blocks = volfiles.get(name)
    return None if blocks is None else [b["module"] for b in blocks]


def is_brick_volfile(volume, name):
    """glusterd names brick volfiles V.HOST.BRICK-PATH.vol."""
    return (name.startswith(volume + ".") and name.count(".") >= 3
            and name not in (f"{volume}.tcp-fuse.vol", f"{volume}.rdma-fuse.vol"))


def volume_status(ctx, volume, processes):
    directory = ctx.volume_dir(volume)
    volfiles = {p.name: glupy_blocks(p) for p in sorted(directory.glob("*.vol"))}
    client_names = {f.name for f in fuse_volfiles(ctx, volume)}
    mine = [p for p in processes if p["volume"] == volume]
    for proc in mine:
        expected = expected_modules(ctx, proc, volfiles)
        running = None if proc["glupy"] is None else [g["module"] for g in proc["glupy"]]
        proc["in_sync"] = None if expected is None or running is None else expected == running
    try:
        entry = client_entry(ctx, volume)
        config = entry.to_json() if entry else None
    except volfilter.ConfigError as e:
        config = {"error": str(e)}
    return {
        "brick": {"options": brick_keys(read_info_options(directory)),
                  "volfiles": {n: b for n, b in volfiles.items() if is_brick_volfile(volume, n)}},
        "client": {"config": config,
                   "volfiles": {n: b for n, b in volfiles.items() if n in client_names}},
        "other_volfiles": {n: b for n, b in volfiles.items()
                           if n not in client_names and not is_brick_volfile(volume, n)},
        "processes": mine,
    }


def gather_status(ctx, volumes, pool_wide=True, brick_timeout=pool.brickquery.BRICK_TIMEOUT):
    """Structured status of volumes (all by default): this server's volfiles
    and processes, and for each volume the pool-wide view (pool.gather)."""
    vols_dir = ctx.glusterd_dir / "vols"
    known = sorted(p.name for p in vols_dir.iterdir() if p.is_dir()) if vols_dir.is_dir() else []
    unknown = [v for v in volumes if v not in known]
    if unknown:
        raise CliError(f"no volume {', '.join(unknown)} in {vols_dir}")
    processes = [process_status(p) for p in process_table()]
    status = {"glusterd_dir": str(ctx.glusterd_dir), "filter_config": str(ctx.filter_config),
              "filter": str(filter_installed() or ""),
              "volumes": {v: volume_status(ctx, v, processes) for v in volumes or known}}
    if pool_wide:
        for volume, vs in status["volumes"].items():
            vs["pool"] = pool.gather(ctx.gluster, volume, brick_timeout=brick_timeout)
    return status


def report_convergence(ctx, volume, wait):
    """After a change: wait until every process this server can see runs
    what the pool has, then show the pool by server. 1 if some did not."""
    deadline = time.monotonic() + wait
    while True:
        view = pool.gather(ctx.gluster, volume)
        if not view["failed"] or time.monotonic() >= deadline:
            break
        time.sleep(2)
    print(pool.render_text(view))
    if view["unreachable"]:
        print(f"  {', '.join(view['unreachable'])}: not reachable now; its glusterd takes the "
              f"pool's configuration when it comes back, and its bricks and clients load it")
    if view["failed"]:
        print(f"glupy: these processes do not run the pool's module (their logs say why):\n  "
              + "\n  ".join(view["failed"]), file=sys.stderr)
        return 1
    return 0


# What a process whose running graph differs from its volfile needs.
OUT_OF_SYNC = {
    "brick": "  <- not its volfile's: restart the brick (glupy enable/disable --restart)",
    "client": "  <- not its volfile's: clients switch by themselves; remount if it stays",
}


def print_status(status):
    print(f"glusterd {status['glusterd_dir']}; filter config {status['filter_config']}; "
          f"filter {status['filter'] or 'NOT INSTALLED'}")
    for volume, vs in status["volumes"].items():
        if "pool" in vs:
            print(pool.render_text(vs["pool"]))
            continue
        print(f"volume {volume}")
        options = vs["brick"]["options"]
        print("  bricks: " + (f"glupy at {options.get(KEY)}, module "
                              f"{options.get(KEY + '.module-name')}" if options else "no glupy"))
        config = vs["client"]["config"]
        print("  clients: " + (f"glupy at {config.get('position')}, module {config.get('module')}"
                               if config and "module" in config else
                               (config or {}).get("error", "no glupy")))
        others = {n: b for n, b in vs["other_volfiles"].items() if b}
        for name, blocks in [*vs["brick"]["volfiles"].items(), *vs["client"]["volfiles"].items(),
                             *others.items()]:
            shown = ", ".join(f"{b['module']} above {b['above']}" for b in blocks) or "-"
            print(f"    volfile {name}: {shown}")
        for proc in vs["processes"]:
            running = proc["glupy"]
            shown = ("unknown (no graph in its log)" if running is None else
                     ", ".join(f"{g['module']} ({g['name']})" for g in running) or "no glupy")
            print(f"    {proc['kind']} pid {proc['pid']} {proc['serves'] or ''}: {shown}"
                  + (OUT_OF_SYNC.get(proc["kind"], "") if proc.get("in_sync") is False else ""))


# ------------------------------------------------------------------ commands

def sides_enabled(ctx, volume):
    sides = []
    if brick_keys(ctx.gluster.options(volume)):
        sides.append("brick")
    if client_entry(ctx, volume) is not None:
        sides.append("client")
    return sides


def cmd_enable(ctx, args):
    options = parse_options(args.option)
    if "module-path" in options:
        raise CliError("give the module's directory with --module-path: glupy copies it to every "
                       "server and sets module-path itself")
    if args.side == "brick":
        check_brick_position(args.position or RECOMMENDED_BRICK_POSITION)
    source = source_dir(args.module, args.module_path)
    if not args.no_check:
        precheck(args.module, str(source))
    if args.side == "brick":
        enable_brick(ctx, args.volume, args.module, args.position, options, args.restart, source)
    else:
        enable_client(ctx, args.volume, args.module, args.position, options, source)
    if args.side == "client" or args.restart or not ctx.gluster.started(args.volume):
        return report_convergence(ctx, args.volume, args.wait)
    return 0


def cmd_disable(ctx, args):
    sides = [args.side] if args.side else sides_enabled(ctx, args.volume)
    if not sides:
        raise CliError(f"glupy is not enabled on {args.volume}")
    for side in sides:
        if side == "brick":
            disable_brick(ctx, args.volume, args.restart)
        else:
            disable_client(ctx, args.volume)


def cmd_reload(ctx, args):
    sides = [args.side] if args.side else sides_enabled(ctx, args.volume)
    if not sides:
        raise CliError(f"glupy is not enabled on {args.volume}")
    # Every module is checked before any process is touched.
    prepared = [prepare_reload(ctx, args.volume, side, args.module_path, args.no_check)
                for side in sides]
    for side, ready in zip(sides, prepared):
        (reload_brick if side == "brick" else reload_client)(ctx, args.volume, ready)
    return report_convergence(ctx, args.volume, args.wait)


def cmd_status(ctx, args):
    if args.prometheus or args.textfile:
        from . import hostmetrics  # needs prometheus_client
        processes = [process_status(p) for p in process_table()
                     if not args.pid or p["pid"] in args.pid]
        return hostmetrics.run(processes, args.volumes, args.textfile)
    status = gather_status(ctx, args.volumes, brick_timeout=args.brick_timeout)
    if args.json:
        json.dump(status, sys.stdout, indent=2)
        print()
    else:
        print_status(status)


def cmd_check(_ctx, args):
    module, module_path = module_location(args.module, args.module_path)
    lines, problems = check_report(module, module_path)
    for line in lines:
        print(line)
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        return 1
    print("ok: init would accept it")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="glupy", description="Python translators (glupy) in glusterd-managed volumes; "
                                  "see docs/managed-volumes.md")
    parser.add_argument("--glusterd-sock", help="glusterd's CLI socket (gluster --glusterd-sock)")
    parser.add_argument("--glusterd-dir", help="glusterd's working directory "
                                               "(default: asked from glusterd, else /var/lib/glusterd)")
    parser.add_argument("--filter-config", help="the client filter's configuration (default: "
                                                "GLUSTERD_DIR/glupy-filter.conf if it exists, "
                                                f"else {volfilter.DEFAULT_CONFIG})")
    parser.add_argument("--gluster", default=shutil.which("gluster") or "gluster",
                        help="the gluster command")
    sub = parser.add_subparsers(dest="command", required=True)

    enable = sub.add_parser("enable", help="load a module into a volume's bricks or clients")
    enable.add_argument("volume")
    enable.add_argument("module", help="Python module name (MODULE.py in --module-path)")
    enable.add_argument("--side", choices=("brick", "client"), default="brick")
    enable.add_argument("--position", help=f"bricks: the translator glupy goes above "
                                           f"(default {RECOMMENDED_BRICK_POSITION}); clients: "
                                           f"'top' (default), a translator type or name")
    enable.add_argument("--module-path", help=f"directory holding the module and its helpers, on "
                                              f"this server (default {DEFAULT_SOURCE_DIR}); "
                                              f"glupy copies them to every server")
    enable.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                        help="an option for the translator (self.options); repeatable")
    enable.add_argument("--restart", action="store_true",
                        help="bricks: restart the volume so that its bricks load glupy now")
    enable.add_argument("--no-check", action="store_true", help="do not check the module first")

    disable = sub.add_parser("disable", help="remove glupy from a volume")
    disable.add_argument("volume")
    disable.add_argument("--side", choices=("brick", "client"),
                         help="default: every side it is enabled on")
    disable.add_argument("--restart", action="store_true", help="bricks: restart the volume")

    reload = sub.add_parser("reload", help="load the module's source again, keeping the "
                                           "running translator if that fails")
    reload.add_argument("volume")
    reload.add_argument("--side", choices=("brick", "client"))
    reload.add_argument("--module-path", help="the directory holding the new source (default: "
                                              "the one given to enable)")
    reload.add_argument("--no-check", action="store_true", help="do not check the module first")
    for command in (enable, reload):
        command.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                             help="how long to wait for the processes this server can see to "
                                  "run the new module (0: do not wait)")

    status = sub.add_parser("status", help="which volumes and processes run which translator")
    status.add_argument("volumes", nargs="*")
    status.add_argument("--json", action="store_true")
    status.add_argument("--brick-timeout", type=float, default=pool.brickquery.BRICK_TIMEOUT,
                        metavar="SECONDS",
                        help="how long each brick may take to answer glupy's status query "
                             "(asked in parallel); one that does not is reported")
    status.add_argument("--prometheus", action="store_true",
                        help="the glupy translators' counters of this machine's processes "
                             "(from their statedumps) in the Prometheus text format")
    status.add_argument("--textfile", metavar="FILE",
                        help="with --prometheus: write them to FILE (atomically), for "
                             "node_exporter's textfile collector")
    status.add_argument("--pid", type=int, action="append",
                        help="with --prometheus: only this process (repeatable)")

    check = sub.add_parser("check", help="check a module the way init will, outside GlusterFS")
    check.add_argument("module", help="MODULE.py, or a module name with --module-path")
    check.add_argument("--module-path")
    return parser


COMMANDS = {"enable": cmd_enable, "disable": cmd_disable, "reload": cmd_reload,
            "status": cmd_status, "check": cmd_check}


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](Context(args), args) or 0
    except (CliError, volfilter.ConfigError, volfilter.VolfileError) as e:
        print(f"glupy: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
