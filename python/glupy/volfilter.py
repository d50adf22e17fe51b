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

import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG = Path("/etc/glusterfs/glupy-filter.conf")
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


def filter_file(volfile, config=None):
    """Filter one volfile in place. Returns True if it changed.

    config is the configuration path; by default the one config_path() finds
    for the glusterd working directory the volfile is in.
    """
    volume = client_volume(volfile)
    if volume is None:
        return False
    entries = load_config(config or config_path(glusterd_dir_of(volfile)))
    text = Path(volfile).read_text()
    try:
        new = filter_text(text, volume, entries.get(volume))
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
