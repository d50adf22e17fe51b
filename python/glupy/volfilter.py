"""Puts features/glupy into the client volfiles glusterd generates.

glusterd has no option for client-side translators of its own choosing, but it
runs every executable in its filter directory
(``$(dirname $(glusterfs --print-xlatordir))/filter/``) with the path of each
volfile it writes as ``$1``, every time it regenerates them (volume create,
set and reset). ``filter/glupy-filter`` calls :func:`main` here: for the FUSE
volfiles of the volumes named in the configuration (``V.tcp-fuse.vol`` and
``trusted-V.tcp-fuse.vol``, which glusterd also serves to gfapi clients) it
inserts one ``features/glupy`` block; every other file is left alone.

The configuration is JSON::

    {"volumes": {"V": {"module": "negative",
                       "position": "top",
                       "options": {"module-path": "/etc/glusterfs/glupy",
                                   "cache-timeout": "30"}}}}

It is read from ``<glusterd working directory>/glupy-filter.conf`` when that
file exists (a glusterd of its own, as in the tests), else from
``/etc/glusterfs/glupy-filter.conf``. glusterd passes no environment a filter
could be configured with, so the volfile's own path is what tells them apart.

The edit is exactly reversible and idempotent: a block the filter inserted
earlier is taken out first, so filtering a file twice changes nothing and a
volume removed from the configuration gets back glusterd's file byte for byte.

Standard library only: the filter loads this file without importing glupy.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG = Path("/etc/glusterfs/glupy-filter.conf")
BRICK_XLATOR_TYPE = "user/glupy"
# Volume options (stored by glusterd in vols/V/info and synced to every
# peer) that carry the pool's modules: see "Pool" below.
POOL_KEY = "user.glupy"
SIDES = ("brick", "client")
# glusterd 10.3 copies each option line of vols/V/info into a 4093-byte
# buffer without checking its length (glusterd-store.c): longer lines
# overflow it. Every value glupy stores stays far below.
CHUNK_CHARS = 3000
MAX_CHUNKS = 40  # 120 kB of base64: about 90 kB of compressed source
BUNDLES_DIR = "glupy/bundles"
KEEP_UNUSED_BUNDLE_SECONDS = 3600
OFF = "-"
LOCAL_CONFIG_NAME = "glupy-filter.conf"
XLATOR_TYPE = "features/glupy"
TOP = "top"
INDENT = "    "


class ConfigError(ValueError):
    """The filter configuration cannot be used; the message says why."""


class VolfileError(ValueError):
    """The volfile does not have the shape the filter needs."""


# ------------------------------------------------------------ configuration

@dataclass
class ClientEntry:
    """What the filter puts into one volume's client volfiles."""

    module: str
    position: str = TOP
    options: dict = field(default_factory=dict)

    def to_json(self):
        return {"module": self.module, "position": self.position, "options": dict(self.options)}


def config_path(glusterd_dir):
    """The configuration the filter reads for volfiles under glusterd_dir."""
    local = Path(glusterd_dir) / LOCAL_CONFIG_NAME
    return local if local.exists() else DEFAULT_CONFIG


def _check_word(what, value):
    # The volfile lexer splits on whitespace: such a value would be cut short.
    if not isinstance(value, str) or not value or re.search(r"\s", value):
        raise ConfigError(f"{what} must be a non-empty string without spaces, not {value!r}")
    return value


def _option_value(key, value):
    if isinstance(value, bool):
        value = "on" if value else "off"
    elif isinstance(value, (int, float)):
        value = str(value)
    return _check_word(f"option {key!r}", value)


def parse_entry(volume, raw):
    """A ClientEntry from the JSON object of one volume (checked)."""
    where = f"volume {volume!r}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected an object with module, position, options")
    unknown = set(raw) - {"module", "position", "options"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)} (known: module, position, options)")
    module = _check_word(f"{where}: module", raw.get("module"))
    if not re.fullmatch(r"[A-Za-z_][\w.]*", module):
        raise ConfigError(f"{where}: module {module!r} is not a Python module name")
    position = _check_word(f"{where}: position", raw.get("position", TOP))
    options = raw.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: options must be an object of option -> value")
    checked = {}
    for key, value in options.items():
        _check_word(f"{where}: option name", key)
        if key == "module-name":
            raise ConfigError(f"{where}: give the module as \"module\", not as option module-name")
        checked[key] = _option_value(f"{where}: {key}", value)
    return ClientEntry(module, position, checked)


def parse_config(text, source="configuration"):
    """{volume: ClientEntry} from the text of a configuration file."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{source}: not valid JSON: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("volumes", {}), dict):
        raise ConfigError(f'{source}: expected {{"volumes": {{"VOLUME": {{...}}}}}}')
    try:
        return {volume: parse_entry(volume, entry) for volume, entry in raw.get("volumes", {}).items()}
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def load_config(path):
    """{volume: ClientEntry}; a missing file is an empty configuration."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    return parse_config(text, str(path))


def render_config(entries):
    volumes = {volume: entry.to_json() for volume, entry in sorted(entries.items())}
    return json.dumps({"volumes": volumes}, indent=2) + "\n"


def save_config(path, entries):
    atomic_write(Path(path), render_config(entries), mode=0o644)


# ----------------------------------------------------------------------- pool
#
# A module and the helpers next to it travel as a *bundle*: the files
# (relative path -> bytes), framed in name order and compressed, base64 in
# chunks of volume options that glusterd stores and syncs to every peer:
#
#   user.glupy.SIDE.bundle      SHA256/CHUNKS  (or "-": none)
#   user.glupy.SIDE.bundle.N    base64 chunk N
#   user.glupy.SIDE.source      the directory the bundle was made from
#   user.glupy.client           the client entry, compact JSON (or "-")
#
# SHA256 is the hash of the framed, uncompressed files: the bundle's name.
# On every server the filter writes the bundle once into
# GLUSTERD_DIR/glupy/bundles/SHA256/ (root's, mode 0755/0644, renamed into
# place whole) and points the volfile's glupy block there (module-path).

SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*\.py")


def collect_files(directory):
    """{relative path: bytes} of the modules and packages in directory."""
    directory = Path(directory)
    files = {}
    for path in sorted(directory.rglob("*.py")):
        relative = path.relative_to(directory).as_posix()
        package_dirs = path.relative_to(directory).parents
        # Top-level modules, and files of packages (every directory on the
        # way holds an __init__.py); nothing from __pycache__ or elsewhere.
        if not SAFE_NAME.fullmatch(relative):
            continue
        if any(not (directory / d / "__init__.py").is_file() for d in list(package_dirs)[:-1]):
            continue
        files[relative] = path.read_bytes()
    return files


def frame_files(files):
    out = bytearray()
    for name in sorted(files):
        data = files[name]
        out += name.encode() + b"\n" + str(len(data)).encode() + b"\n" + data
    return bytes(out)


def unframe_files(raw):
    files, at = {}, 0
    while at < len(raw):
        name_end = raw.index(b"\n", at)
        size_end = raw.index(b"\n", name_end + 1)
        name = raw[at:name_end].decode()
        size = int(raw[name_end + 1:size_end])
        if not SAFE_NAME.fullmatch(name) or size < 0 or size_end + 1 + size > len(raw):
            raise ConfigError(f"bundle entry {name!r} is not a module file name or is cut short")
        files[name] = raw[size_end + 1:size_end + 1 + size]
        at = size_end + 1 + size
    return files


def bundle_hash(files):
    return hashlib.sha256(frame_files(files)).hexdigest()


def encode_bundle(files):
    """(sha256, [base64 chunks]) of files; ConfigError if too large."""
    text = base64.b64encode(zlib.compress(frame_files(files), 9)).decode()
    chunks = [text[i:i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
    if len(chunks) > MAX_CHUNKS:
        raise ConfigError(f"the module and its helpers compress to {len(text) * 3 // 4} bytes: "
                          f"more than the {MAX_CHUNKS * CHUNK_CHARS * 3 // 4} glupy stores in "
                          f"volume options")
    return bundle_hash(files), chunks


def bundle_options(side, files, source):
    """The volume options that carry files for side."""
    digest, chunks = encode_bundle(files)
    pairs = [(f"{POOL_KEY}.{side}.bundle", f"{digest}/{len(chunks)}"),
             (f"{POOL_KEY}.{side}.source", str(source))]
    pairs += [(f"{POOL_KEY}.{side}.bundle.{n}", chunk) for n, chunk in enumerate(chunks)]
    return digest, pairs


def bundle_header(options, side):
    """(sha256, chunk count) of side's bundle in options, or None."""
    value = options.get(f"{POOL_KEY}.{side}.bundle", OFF)
    digest, sep, count = value.partition("/")
    if value == OFF or not sep or not re.fullmatch(r"[0-9a-f]{64}", digest) or not count.isdigit():
        return None
    return digest, int(count)


def decode_bundle(options, side):
    """(sha256, files) of side's bundle in options, or None if it has none."""
    header = bundle_header(options, side)
    if header is None:
        return None
    digest, count = header
    try:
        text = "".join(options[f"{POOL_KEY}.{side}.bundle.{n}"] for n in range(count))
        files = unframe_files(zlib.decompress(base64.b64decode(text, validate=True)))
    except (KeyError, ValueError, zlib.error) as e:
        raise ConfigError(f"the {side} bundle {digest[:12]} in the volume options is incomplete "
                          f"or damaged: {e}") from None
    if bundle_hash(files) != digest:
        raise ConfigError(f"the {side} bundle's content does not match its hash {digest[:12]}")
    return digest, files


def read_volume_options(volume_dir, prefix="user."):
    """The options glusterd stores for a volume (vols/V/info) whose key
    starts with prefix (the user.* ones by default)."""
    options = {}
    try:
        lines = (Path(volume_dir) / "info").read_text().splitlines()
    except OSError:
        return options
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.startswith(prefix):
            options[key] = value
    return options


def pool_client_entry(volume, options):
    """The client entry stored in the volume's options: ClientEntry, OFF
    (disabled there) or None (never set: the local configuration decides)."""
    raw = options.get(f"{POOL_KEY}.client")
    if raw is None:
        return None
    if raw == OFF:
        return OFF
    try:
        return parse_entry(volume, json.loads(raw))
    except json.JSONDecodeError as e:
        raise ConfigError(f"option {POOL_KEY}.client of {volume}: not valid JSON: {e}") from None


def bundles_root(glusterd_dir):
    return Path(glusterd_dir) / BUNDLES_DIR


def materialise(glusterd_dir, digest, files):
    """GLUSTERD_DIR/glupy/bundles/DIGEST holding files; written once, whole."""
    root = bundles_root(glusterd_dir)
    target = root / digest
    if target.is_dir():
        return target
    for directory in (root.parent, root):
        directory.mkdir(mode=0o755, exist_ok=True)
        os.chmod(directory, 0o755)  # whatever the umask: module directories
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}.", dir=root))
    try:
        for name, data in files.items():
            path = staging / name
            for parent in reversed(path.relative_to(staging).parents[:-1]):
                (staging / parent).mkdir(mode=0o755, exist_ok=True)
            path.write_bytes(data)
            os.chmod(path, 0o644)
        os.chmod(staging, 0o755)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # another filter run may have won
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def referenced_bundles(glusterd_dir):
    used = set()
    for info in Path(glusterd_dir).glob("vols/*/info"):
        options = read_volume_options(info.parent)
        for side in SIDES:
            header = bundle_header(options, side)
            if header:
                used.add(header[0])
    return used


def prune_bundles(glusterd_dir, now=None):
    """Removes bundles no volume names any more, once unused for a while
    (a process may still be loading from one)."""
    root = bundles_root(glusterd_dir)
    if not root.is_dir():
        return
    used = referenced_bundles(glusterd_dir)
    now = time.time() if now is None else now
    for path in root.iterdir():
        stale = path.name.startswith(".") or path.name not in used
        if stale and now - path.stat().st_mtime > KEEP_UNUSED_BUNDLE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


def pool_module_path(glusterd_dir, options, side):
    """The materialised directory of side's bundle, or None if none is set."""
    decoded = decode_bundle(options, side)
    if decoded is None:
        return None
    return str(materialise(glusterd_dir, *decoded))


def set_block_option(lines, volume, block_type, key, value):
    """lines with `option key value` set in the glupy block of block_type."""
    blocks = [b for b in parse_blocks(lines) if b.type == block_type]
    if not blocks:
        return list(lines)
    block = blocks[0]
    lines = list(lines)
    newline = "\r\n" if lines[block.start].endswith("\r\n") else "\n"
    wanted = f"{INDENT}option {key} {value}{newline}"
    for number in range(block.start, block.end):
        words = lines[number].split()
        if words[:2] == ["option", key]:
            lines[number] = wanted
            return lines
    type_line = next(n for n in range(block.start, block.end) if lines[n].split()[:1] == ["type"])
    return lines[:type_line + 1] + [wanted] + lines[type_line + 1:]


# ------------------------------------------------------------------ volfiles

@dataclass
class Block:
    """One ``volume NAME ... end-volume`` block; line numbers into the file."""

    name: str
    start: int
    end: int = -1
    type: str = ""
    subvolumes: list = field(default_factory=list)
    subvolumes_line: int = -1
    options: dict = field(default_factory=dict)


def parse_blocks(lines):
    """The blocks of a volfile given as a list of lines."""
    blocks, current = [], None
    for number, line in enumerate(lines):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0]
        if keyword == "volume":
            if current is not None or len(words) != 2:
                raise VolfileError(f"line {number + 1}: unexpected {line.strip()!r}")
            current = Block(words[1], number)
        elif current is None:
            raise VolfileError(f"line {number + 1}: {line.strip()!r} outside a volume block")
        elif keyword == "type" and len(words) == 2:
            current.type = words[1]
        elif keyword == "option" and len(words) >= 2:
            current.options[words[1]] = " ".join(words[2:])
        elif keyword == "subvolumes":
            current.subvolumes, current.subvolumes_line = words[1:], number
        elif keyword == "end-volume":
            current.end = number
            blocks.append(current)
            current = None
    if current is not None:
        raise VolfileError(f"volume {current.name} has no end-volume")
    return blocks


def glupy_block_name(volume):
    return f"{volume}-glupy"


def _is_ours(block, volume):
    return block.name == glupy_block_name(volume) and block.type == XLATOR_TYPE


def _rename_subvolume(line, old, new):
    """The subvolumes line with the word old replaced by new, spacing kept."""
    parts = re.split(r"(\s+)", line)
    return "".join(new if part == old else part for part in parts)


def _parents(blocks, name):
    return [b for b in blocks if name in b.subvolumes]


def remove_glupy(lines, volume):
    """lines without the block the filter inserted for volume (if any)."""
    blocks = parse_blocks(lines)
    ours = [b for b in blocks if _is_ours(b, volume)]
    if not ours:
        return list(lines)
    block = ours[0]
    if len(block.subvolumes) != 1:
        raise VolfileError(f"{block.name} has {len(block.subvolumes)} subvolumes, expected 1")
    lines = list(lines)
    for parent in _parents(blocks, block.name):
        number = parent.subvolumes_line
        lines[number] = _rename_subvolume(lines[number], block.name, block.subvolumes[0])
    stop = block.end + 1
    if stop < len(lines) and not lines[stop].strip():
        stop += 1  # the blank line insert_glupy added after the block
    return lines[:block.start] + lines[stop:]


def _top_blocks(blocks):
    used = {name for b in blocks for name in b.subvolumes}
    return [b for b in blocks if b.name not in used]


def _position_names(block, volume):
    """What a position may call a block: its type, its type's last part, its
    name, or its name without the volume prefix (dht, client-0)."""
    names = {block.type, block.type.rpartition("/")[2], block.name}
    if block.name.startswith(volume + "-"):
        names.add(block.name[len(volume) + 1:])
    return names


def find_position(blocks, position, volume):
    """The block glupy goes directly above."""
    tops = _top_blocks(blocks)
    if len(tops) != 1:
        raise VolfileError(f"expected one top translator, found {[b.name for b in tops]}")
    top = tops[0]
    if position == TOP:
        if len(top.subvolumes) != 1:
            raise VolfileError(f"the top translator {top.name} has {len(top.subvolumes)} subvolumes")
        return next(b for b in blocks if b.name == top.subvolumes[0])
    matches = [b for b in blocks if position in _position_names(b, volume)]
    if not matches:
        known = ", ".join(sorted({b.type.rpartition("/")[2] for b in blocks}))
        raise VolfileError(f"position {position!r} matches no translator (types here: {known}; "
                           f"or {TOP!r}, or a translator's name)")
    if len(matches) > 1:
        raise VolfileError(f"position {position!r} matches {len(matches)} translators "
                           f"({', '.join(b.name for b in matches)}): give one translator's name")
    if matches[0] is top:
        raise VolfileError(f"position {position!r} is the top translator {top.name}; "
                           f"it must stay on top: use position {TOP!r}")
    return matches[0]


def block_lines(name, entry, child, newline="\n"):
    lines = [f"volume {name}", f"{INDENT}type {XLATOR_TYPE}",
             f"{INDENT}option module-name {entry.module}"]
    lines += [f"{INDENT}option {key} {value}" for key, value in entry.options.items()]
    lines += [f"{INDENT}subvolumes {child}", "end-volume", ""]
    return [line + newline for line in lines]


def insert_glupy(lines, volume, entry):
    """lines with features/glupy directly above the block at entry.position."""
    blocks = parse_blocks(lines)
    name = glupy_block_name(volume)
    if any(b.name == name for b in blocks):
        raise VolfileError(f"the volfile already has a translator named {name}")
    child = find_position(blocks, entry.position, volume)
    parents = _parents(blocks, child.name)
    if len(parents) != 1:
        raise VolfileError(f"{child.name} has {len(parents)} parents; glupy needs exactly one")
    parent = parents[0]
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    lines = list(lines)
    lines[parent.subvolumes_line] = _rename_subvolume(lines[parent.subvolumes_line], child.name, name)
    # Before its parent: a volfile defines a translator before its first use.
    return lines[:parent.start] + block_lines(name, entry, child.name, newline) + lines[parent.start:]


def filter_text(text, volume, entry):
    """The volfile text as the filter leaves it: glusterd's graph, plus
    glupy when entry is given. Applying it twice gives the same text."""
    if entry is None and f"volume {glupy_block_name(volume)}" not in text:
        return text  # nothing to add or take out: do not even parse it
    lines = remove_glupy(text.splitlines(keepends=True), volume)
    if entry is not None:
        lines = insert_glupy(lines, volume, entry)
    return "".join(lines)


# ------------------------------------------------------------------- files

def client_volume(path):
    """The volume whose FUSE client volfile path is, or None for other files.

    glusterd writes them as <workdir>/vols/V/V.tcp-fuse.vol and
    <workdir>/vols/V/trusted-V.tcp-fuse.vol; it serves the trusted one to
    clients on its own host (local addresses), the other one to the rest.
    """
    path = Path(path)
    volume = path.parent.name
    if path.parent.parent.name != "vols":
        return None
    if path.name in (f"{volume}.tcp-fuse.vol", f"trusted-{volume}.tcp-fuse.vol"):
        return volume
    return None


def glusterd_dir_of(volfile):
    return Path(volfile).parent.parent.parent


def atomic_write(path, text, mode=None):
    """Replace path's content in one rename, keeping its permissions."""
    path = Path(path)
    if mode is None:
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def volume_of(path):
    """The volume a volfile under GLUSTERD_DIR/vols/V/ belongs to, or None."""
    path = Path(path)
    return path.parent.name if path.parent.parent.name == "vols" else None


def client_entry_for(volume, glusterd_dir, options, config=None):
    """What the filter puts into volume's client volfiles: the pool's entry
    (volume options) with module-path at its bundle, else the local file's."""
    pool = pool_client_entry(volume, options)
    if pool is OFF:
        return None
    if pool is None:
        return load_config(config or config_path(glusterd_dir)).get(volume)
    path = pool_module_path(glusterd_dir, options, "client")
    if path is not None:
        pool.options["module-path"] = path
    return pool


def filter_brick_text(text, glusterd_dir, options):
    """A brick volfile with glupy's module-path at the pool's brick bundle."""
    if f"type {BRICK_XLATOR_TYPE}" not in text:
        return text
    path = pool_module_path(glusterd_dir, options, "brick")
    if path is None:
        return text  # a module installed by hand: nothing to do
    lines = text.splitlines(keepends=True)
    return "".join(set_block_option(lines, None, BRICK_XLATOR_TYPE, "module-path", path))


def filter_file(volfile, config=None):
    """Filter one volfile in place. Returns True if it changed.

    config is the local configuration path; by default the one config_path()
    finds for the glusterd working directory the volfile is in.
    """
    volume = volume_of(volfile)
    if volume is None:
        return False
    glusterd_dir = glusterd_dir_of(volfile)
    text = Path(volfile).read_text()
    try:
        options = read_volume_options(Path(volfile).parent)
        if client_volume(volfile) is not None:
            new = filter_text(text, volume, client_entry_for(volume, glusterd_dir, options, config))
        else:
            new = filter_brick_text(text, glusterd_dir, options)
        prune_bundles(glusterd_dir)
    except VolfileError as e:
        raise VolfileError(f"{volfile}: {e}") from None
    if new == text:
        return False
    atomic_write(volfile, new)
    return True


def main(argv=None):
    """glupy-filter VOLFILE: what glusterd runs. Exit status 1 on errors
    (glusterd then logs "failed to run filter"); the file is left as it was."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: glupy-filter VOLFILE (run by glusterd for each volfile it writes)",
              file=sys.stderr)
        return 2
    try:
        filter_file(argv[0])
    except (ConfigError, VolfileError, OSError) as e:
        print(f"glupy-filter: {e}", file=sys.stderr)
        return 1
    return 0
