"""The example translators (issue 3) end to end on real volumes."""

import errno
import os
import time
from pathlib import Path

import pytest

import glusterlib

HERE = Path(__file__).parent
XLATORS = HERE / "xlators"
EXAMPLES = HERE.parent / "examples"

# FUSE caches entries and missing names itself: with both timeouts at 0
# every path resolution reaches the client graph as a lookup.
NO_KERNEL_CACHE = ("--negative-timeout=0", "--entry-timeout=0")


def glupy(module, path=EXAMPLES, name=None, **options):
    opts = {"module-name": module, "module-path": str(path)}
    opts.update({k.replace("_", "-"): str(v) for k, v in options.items()})
    return ("features/glupy", opts, name) if name else ("features/glupy", opts)


def python_section(dump, name):
    """The python.* keys of translator name's statedump section, without the prefix."""
    section = glusterlib.statedump_sections(dump)[f"xlator.features.glupy.{name}.priv"]
    return {k[len("python."):]: v for k, v in section.items() if k.startswith("python.")}


def brick_lookups(brick, name):
    """Lookups of name that reached the passall counter on the brick."""
    return int(python_section(brick.statedump(), "counter").get(f"lookup:{name}", 0))


def assert_missing(path):
    with pytest.raises(FileNotFoundError):
        os.lstat(path)


# ------------------------------------------------------------------ negative

@pytest.fixture
def cached_mount(gluster):
    """(brick counting lookups, FUSE mount with the negative cache as "nlc")."""
    def make(**options):
        brick = gluster.brick([glupy("passall", path=XLATORS, name="counter")])
        mount = gluster.mount(brick, layers=[glupy("negative", name="nlc", **options)],
                              extra_args=NO_KERNEL_CACHE)
        return brick, mount
    return make


def test_negative_cache_saves_brick_lookups_and_dumps_its_counters(cached_mount, assert_log_clean):
    brick, mount = cached_mount()
    for _ in range(5):
        assert_missing(mount.mountpoint / "absent")
    assert brick_lookups(brick, "absent") == 1
    stats = python_section(mount.statedump(), "nlc")
    # glusterfs's FUSE bridge may resolve a name more than once per stat.
    assert int(stats["hits"]) >= 4
    assert int(stats["misses"]) >= 1
    assert int(stats["entries"]) == 1
    assert_log_clean(mount.log_text())


CREATORS = {
    "create": lambda root, name: (root / name).write_bytes(b"new"),
    "mkdir": lambda root, name: os.mkdir(root / name),
    "mknod": lambda root, name: os.mkfifo(root / name),
    "symlink": lambda root, name: os.symlink("somewhere", root / name),
    "link": lambda root, name: os.link(root / "source", root / name),
    "rename": lambda root, name: os.rename(root / "source", root / name),
}


def test_names_this_client_creates_are_seen_at_once(cached_mount):
    brick, mount = cached_mount()
    root = mount.mountpoint
    for fop, make_name in CREATORS.items():
        name = f"new-{fop}"
        (root / "source").write_bytes(b"source")
        assert_missing(root / name)
        assert_missing(root / name)  # now answered by the cache
        make_name(root, name)
        assert os.lstat(root / name), f"{fop}: the name is still cached as missing"
    stats = python_section(mount.statedump(), "nlc")
    assert int(stats["hits"]) >= len(CREATORS)
    assert int(stats["invalidations"]) >= len(CREATORS)


def test_names_another_client_creates_are_seen_after_the_timeout(cached_mount, gluster):
    brick, mount = cached_mount(cache_timeout=2)
    other = gluster.gfapi(brick)
    target = mount.mountpoint / "theirs"
    assert_missing(target)
    other.write_file("/theirs", b"made elsewhere")
    cached_at = time.monotonic()
    assert_missing(target)  # the cache answers until it expires
    seen = glusterlib.wait_until(lambda: target.exists(), 5)
    assert seen, "the name never became visible"
    assert time.monotonic() - cached_at >= 1.0
    assert target.read_bytes() == b"made elsewhere"


def test_unlinked_name_is_answered_from_the_cache(cached_mount):
    brick, mount = cached_mount()
    victim = mount.mountpoint / "victim"
    victim.write_bytes(b"short-lived")
    os.unlink(victim)
    before = brick_lookups(brick, "victim")
    for _ in range(3):
        assert_missing(victim)
    assert brick_lookups(brick, "victim") == before


def test_cache_limit_bounds_the_entries(cached_mount):
    brick, mount = cached_mount(cache_limit=5)
    for index in range(20):
        assert_missing(mount.mountpoint / f"gone-{index}")
    stats = python_section(mount.statedump(), "nlc")
    assert int(stats["entries"]) == 5
    assert int(stats["evictions"]) == 15
    # The most recent names are still cached, the oldest are not.
    before = brick_lookups(brick, "gone-19"), brick_lookups(brick, "gone-0")
    assert_missing(mount.mountpoint / "gone-19")
    assert_missing(mount.mountpoint / "gone-0")
    assert (brick_lookups(brick, "gone-19"), brick_lookups(brick, "gone-0")) == (
        before[0], before[1] + 1)


def test_negative_cache_on_the_brick_under_gfapi(gluster):
    brick = gluster.brick([glupy("passall", path=XLATORS, name="counter"),
                           glupy("negative", name="nlc")])
    client = gluster.gfapi(brick)
    for _ in range(4):
        with pytest.raises(FileNotFoundError):
            client.stat("/nothing")
    assert brick_lookups(brick, "nothing") == 1
    assert int(python_section(brick.statedump(), "nlc")["hits"]) == 3
    client.write_file("/nothing", b"now something")  # its lookup is a hit too
    assert client.read_file("/nothing") == b"now something"


def test_negative_cache_refuses_bad_options(workdir):
    brick = glusterlib.Brick(workdir / "b", [glupy("negative", cache_timeout="soon")], name="b")
    assert "option cache-timeout: 'soon' is not a number" in brick.start_expect_failure()
