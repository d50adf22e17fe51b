"""The example translators (issue 3) end to end on real volumes."""

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
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

@pytest.fixture(params=["negative", "negative_async"])
def negative_module(request):
    """The negative cache, with callbacks and as a coroutine: the same tests hold."""
    return request.param


@pytest.fixture
def cached_mount(gluster, negative_module):
    """(brick counting lookups, FUSE mount with the negative cache as "nlc")."""
    def make(**options):
        brick = gluster.brick([glupy("passall", path=XLATORS, name="counter")])
        mount = gluster.mount(brick, layers=[glupy(negative_module, name="nlc", **options)],
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


def test_cache_invalidation_upcalls_show_other_clients_names_at_once(gluster, negative_module):
    brick = gluster.brick([("features/upcall", {"cache-invalidation": "on"})])
    mount = gluster.mount(brick, layers=[glupy(negative_module, name="nlc", cache_timeout=600)],
                          extra_args=NO_KERNEL_CACHE)
    other = gluster.gfapi(brick)
    target = mount.mountpoint / "announced"
    assert_missing(target)
    assert_missing(target)  # cached now, for ten minutes
    other.write_file("/announced", b"upcall")
    assert glusterlib.wait_until(target.exists, 5), "the upcall did not drop the directory"
    assert int(python_section(mount.statedump(), "nlc")["invalidations"]) >= 1


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


def test_negative_cache_on_the_brick_under_gfapi(gluster, negative_module):
    brick = gluster.brick([glupy("passall", path=XLATORS, name="counter"),
                           glupy(negative_module, name="nlc")])
    client = gluster.gfapi(brick)
    for _ in range(4):
        with pytest.raises(FileNotFoundError):
            client.stat("/nothing")
    assert brick_lookups(brick, "nothing") == 1
    assert int(python_section(brick.statedump(), "nlc")["hits"]) == 3
    client.write_file("/nothing", b"now something")  # its lookup is a hit too
    assert client.read_file("/nothing") == b"now something"


def test_negative_cache_refuses_bad_options(workdir, negative_module):
    brick = glusterlib.Brick(workdir / "b", [glupy(negative_module, cache_timeout="soon")], name="b")
    assert "option cache-timeout: 'soon' is not a number" in brick.start_expect_failure()


# ------------------------------------------------------------------ profiler

REPO_PYTHON = HERE.parent / "python"


def read_records(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for_records(path, predicate, timeout=10):
    """The records of a file sink once predicate(records) holds."""
    found = glusterlib.wait_until(lambda: predicate(read_records(path)) and read_records(path),
                                  timeout)
    assert found, f"records never satisfied the test; got {read_records(path)}"
    return found


def by_fop(records, fop):
    return [r for r in records if r["fop"] == fop]


def profiler(sink, name="prof", **options):
    return glupy("profiler", name=name, sink=sink, flush_interval=0.1, **options)


def test_profiler_records_every_fop_with_paths_results_and_latency(gluster, workdir):
    sink = workdir / "flow.jsonl"
    brick = gluster.brick([profiler(f"file:{sink}", volume_name="vol0")])
    client = gluster.gfapi(brick)
    chunk = os.urandom(4096)
    with client.creat("/f") as handle:
        for _ in range(3):
            handle.write(chunk)
        handle.fstat()
    with client.open("/f") as handle:
        assert handle.read(3 * 4096) == chunk * 3
    client.stat("/f")
    client.rename("/f", "/g")
    client.unlink("/g")
    with pytest.raises(FileNotFoundError):
        client.stat("/nope")
    records = wait_for_records(sink, lambda rs: by_fop(rs, "unlink"))

    for record in records:
        assert {"host", "volume", "translator", "fop", "path", "gfid", "op_ret", "op_errno",
                "start", "latency_us", "pid", "uid"} <= record.keys()
        assert record["host"] == socket.gethostname()
        assert record["volume"] == "vol0" and record["translator"] == "prof"
        assert isinstance(record["latency_us"], int) and record["latency_us"] >= 0
        assert abs(record["start"] - time.time()) < 60
        assert record["uid"] == os.getuid()
    [create] = by_fop(records, "create")
    assert create["path"] == "/f" and create["op_ret"] == 0 and len(create["gfid"]) == 36
    writes = by_fop(records, "writev")
    assert [w["op_ret"] for w in writes] == [4096] * 3
    # fd-based fops carry the path of their file and its gfid.
    for fop in ("writev", "readv", "fstat", "flush"):
        assert by_fop(records, fop), f"no {fop} record"
        for record in by_fop(records, fop):
            assert (record["path"], record["gfid"]) == ("/f", create["gfid"]), record
    assert sum(r["op_ret"] for r in by_fop(records, "readv")) == 3 * 4096
    [rename] = by_fop(records, "rename")
    assert (rename["path"], rename["path2"]) == ("/f", "/g")
    assert by_fop(records, "unlink")[0]["path"] == "/g"
    missing = [r for r in by_fop(records, "lookup") if r["path"] == "/nope"]
    assert missing and missing[0]["op_ret"] == -1 and missing[0]["op_errno"] == errno.ENOENT
    stats = python_section(brick.statedump(), "prof")
    assert int(stats["dropped"]) == 0 and int(stats["send-failed"]) == 0
    assert int(stats["sent"]) >= len(records)


def test_profiler_in_a_fuse_client_sees_what_applications_do(gluster, workdir):
    sink = workdir / "client-flow.jsonl"
    brick = gluster.brick()
    mount = gluster.mount(brick, layers=[profiler(f"file:{sink}")])
    data = os.urandom(10_000)
    (mount.mountpoint / "app.bin").write_bytes(data)
    with open(mount.mountpoint / "app.bin", "rb", buffering=0) as stream:
        os.posix_fadvise(stream.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        assert stream.read() == data
    records = wait_for_records(sink, lambda rs: by_fop(rs, "readv") and len(by_fop(rs, "flush")) >= 2)
    for fop in ("create", "writev", "flush"):
        assert any(r["path"] == "/app.bin" for r in by_fop(records, fop)), fop
    assert all(r["path"] == "/app.bin" for r in by_fop(records, "writev") + by_fop(records, "readv"))
    assert {r["pid"] for r in by_fop(records, "create")} == {os.getpid()}


def test_profiler_samples_a_fraction_of_the_fops(gluster, workdir):
    sink = workdir / "flow.jsonl"
    brick = gluster.brick([profiler(f"file:{sink}", sample_rate=0.5, fops="stat,lookup")])
    client = gluster.gfapi(brick)
    client.write_file("/s", b"x")
    for _ in range(200):
        client.stat("/s")
    stats = python_section(brick.statedump(), "prof")
    sampled, skipped = int(stats["sampled"]), int(stats["skipped"])
    assert sampled + skipped >= 200
    assert 0.3 < sampled / (sampled + skipped) < 0.7
    records = wait_for_records(sink, lambda rs: len(rs) == sampled)
    assert {r["fop"] for r in records} <= {"stat", "lookup"}


def test_a_stuck_sink_drops_records_but_never_slows_fops(gluster, workdir):
    fifo = workdir / "nobody-reads"
    os.mkfifo(fifo)  # opening it for writing blocks the sender thread forever
    brick = gluster.brick([profiler(f"file:{fifo}", queue_size=5, batch_size=1)])
    client = gluster.gfapi(brick)
    client.write_file("/s", b"x")
    started = time.monotonic()
    for _ in range(100):
        client.stat("/s")
    assert time.monotonic() - started < 10
    stats = python_section(brick.statedump(), "prof")
    assert int(stats["dropped"]) >= 100 - 5 - 1
    assert int(stats["sent"]) == 0


@pytest.mark.parametrize("options, message", [
    ({"sink": "carrier-pigeon:home"}, "is not file:/PATH, udp:HOST:PORT or tcp:HOST:PORT"),
    ({"sink": "udp:127.0.0.1:http"}, "is not HOST:PORT"),
    ({"sink": "file:/tmp/x", "sample-rate": "2"}, "option sample-rate: '2' must be from 0.0 to 1.0"),
    ({"sink": "file:/tmp/x", "fops": "lookup,lokup"}, "option fops: no such fop: lokup"),
])
def test_profiler_refuses_bad_options(workdir, options, message):
    layer = ("features/glupy", {"module-name": "profiler", "module-path": str(EXAMPLES), **options})
    brick = glusterlib.Brick(workdir / "b", [layer], name="b")
    assert message in brick.start_expect_failure()


def start_collector(listen, *args):
    """`python3 -m glupy.flow --listen ...` and the address it listens on."""
    env = {**os.environ, "PYTHONPATH": str(REPO_PYTHON)}
    process = subprocess.Popen(
        [sys.executable, "-m", "glupy.flow", "--listen", listen, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = process.stderr.readline()
    if not line.startswith("listening on "):
        process.kill()
        raise AssertionError(f"collector did not start: {line}{process.stderr.read()}")
    return process, line.split()[-1]


def reports_until(process, predicate, timeout=15):
    """Reads the collector's JSON reports until one satisfies predicate."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(json.loads(line))
        if predicate(seen[-1]):
            return seen[-1]
    raise AssertionError(f"no report satisfied the test; last: {seen[-1:]}")


def stop_collector(process):
    process.send_signal(signal.SIGINT)
    output, errors = process.communicate(timeout=10)
    assert process.returncode == 0, errors
    return json.loads(output.splitlines()[-1])


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_collector_shows_live_counts_percentiles_and_busiest_files(gluster, transport):
    process, address = start_collector(f"{transport}:127.0.0.1:0", "--interval", "0.2", "--json")
    try:
        brick = gluster.brick([profiler(address)])
        client = gluster.gfapi(brick)
        with client.creat("/hot") as handle:
            for _ in range(20):
                handle.write(b"y" * 1000)
        client.write_file("/cold", b"z")
        report = reports_until(process, lambda r: r["fops"].get("writev", {}).get("count") == 21)
    finally:
        final = stop_collector(process) if process.poll() is None else None
    writev = report["fops"]["writev"]
    assert writev["errors"] == 0
    assert 0 < writev["p50_us"] <= writev["p90_us"] <= writev["p99_us"] <= writev["max_us"]
    assert report["busiest"][0] == {"path": "/hot", "count": report["busiest"][0]["count"]}
    assert report["busiest"][0]["count"] >= 21
    assert "/cold" in [b["path"] for b in report["busiest"]]
    assert report["hosts"] == {socket.gethostname(): report["records"]}
    assert final["records"] >= report["records"]


def test_collector_summarises_a_file_sink(gluster, workdir):
    sink = workdir / "flow.jsonl"
    brick = gluster.brick([profiler(f"file:{sink}")])
    client = gluster.gfapi(brick)
    for index in range(5):
        client.write_file(f"/f{index}", b"data")
    records = wait_for_records(sink, lambda rs: len(by_fop(rs, "writev")) == 5)
    env = {**os.environ, "PYTHONPATH": str(REPO_PYTHON)}
    output = subprocess.run([sys.executable, "-m", "glupy.flow", "--file", str(sink), "--json"],
                            capture_output=True, text=True, env=env, check=True).stdout
    summary = json.loads(output)
    assert summary["records"] == len(records)
    assert summary["fops"]["writev"]["count"] == 5
    assert summary["fops"]["create"]["count"] == 5
    human = subprocess.run([sys.executable, "-m", "glupy.flow", "--file", str(sink)],
                           capture_output=True, text=True, env=env, check=True).stdout
    assert re.search(r"^writev\s+5\s", human, re.M), human


# ------------------------------------------------------------------- archive

ARCHIVE_MODULE = REPO_PYTHON / "glupy" / "archive.py"


@pytest.fixture
def installed_archive_module():
    """The brick imports the installed glupy: it must be this checkout's."""
    import glupy

    installed = Path(glupy.__file__).parent / "archive.py"
    if not installed.exists() or installed.read_bytes() != ARCHIVE_MODULE.read_bytes():
        pytest.fail(f"{installed} is not {ARCHIVE_MODULE}: run make install", pytrace=False)


def run_archive_command(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO_PYTHON)}
    result = subprocess.run([sys.executable, "-m", "glupy.archive", *map(str, args)],
                            capture_output=True, text=True, env=env)
    return result


def archive_all(brick, store, *extra):
    result = run_archive_command("archive", "--brick", brick.directory, "--store", f"dir:{store}",
                                 "--older-than", 0, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def archive_brick(gluster, workdir, installed_archive_module):
    """(brick with the archive translator, its store directory)."""
    store = workdir / "store"

    def make(path=EXAMPLES, spec=f"dir:{store}", **options):
        layer = glupy("archive", path=path, name="arch", store=spec, **options)
        return gluster.brick([layer]), store
    return make


def backend_xattr(path, name):
    """The xattr's value on the brick's disk, None if it has none."""
    try:
        return os.getxattr(path, name)
    except OSError as error:
        if error.errno != errno.ENODATA:
            raise
        return None


def test_archived_files_come_back_byte_identical_through_gfapi_and_fuse(archive_brick, gluster):
    brick, store = archive_brick()
    client = gluster.gfapi(brick)
    first, second = os.urandom(3 * 1024 * 1024 + 5), os.urandom(200_000)
    client.mkdir("/dir")
    client.write_file("/dir/first", first)
    client.write_file("/second", second)
    mtime = client.stat("/dir/first").st_mtime_ns

    output = archive_all(brick, store)
    assert "2 files archived" in output
    for name, data in (("dir/first", first), ("second", second)):
        backend = brick.directory / name
        assert backend.stat().st_size == 0, "the brick copy is not a stub"
        key = backend_xattr(backend, "trusted.glupy.archive").decode()
        assert int(backend_xattr(backend, "trusted.glupy.archive.size")) == len(data)
        assert (store / key[:2] / key).read_bytes() == data

    # Clients see the real size before any download, then the content.
    assert dict((n, st.st_size) for n, st in client.readdirplus("/"))["second"] == len(second)
    assert client.stat("/dir/first").st_size == len(first)
    assert client.stat("/dir/first").st_mtime_ns == mtime
    assert client.read_file("/dir/first") == first
    mount = gluster.mount(brick)
    assert os.stat(mount.mountpoint / "second").st_size == len(second)
    assert (mount.mountpoint / "second").read_bytes() == second

    for name, data in (("dir/first", first), ("second", second)):
        backend = brick.directory / name
        assert backend.read_bytes() == data
        assert backend_xattr(backend, "trusted.glupy.archive") is None
    assert client.stat("/dir/first").st_mtime_ns == mtime, "restoring made the file look new"
    stats = python_section(brick.statedump(), "arch")
    assert int(stats["downloads"]) == 2 and int(stats["failures"]) == 0
    assert int(stats["sizes-shown"]) >= 2


def test_twenty_concurrent_readers_wait_for_one_download(archive_brick, gluster, workdir):
    # The store class must be importable in the brick: next to the translator.
    modules = workdir / "modules"
    modules.mkdir(mode=0o755)
    shutil.copy(EXAMPLES / "archive.py", modules)
    shutil.copy(XLATORS / "ex_slow_store.py", modules)
    brick, store = archive_brick(path=modules, store_class="ex_slow_store.SlowStore",
                                 spec=workdir / "store", store_delay=0.5,
                                 brick_path=workdir / "b1" / "brick", download_threads=2)
    client = gluster.gfapi(brick)
    data = os.urandom(1 << 20)
    client.write_file("/cold", data)
    archive_all(brick, store)
    results, errors = [], []

    def reader():
        try:
            results.append(client.read_file("/cold"))
        except OSError as error:
            errors.append(error)

    threads = [threading.Thread(target=reader) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(results) == 20 and all(result == data for result in results)
    key = str(uuid.UUID(bytes=os.getxattr(brick.directory / "cold", "trusted.gfid")))
    assert (store / "gets.log").read_text().split() == [key]
    stats = python_section(brick.statedump(), "arch")
    assert int(stats["downloads"]) == 1
    assert int(stats["waiters"]) >= 10, "the readers did not overlap the download"


def test_archive_command_picks_cold_files_and_lists_and_restores(archive_brick, gluster):
    brick, store = archive_brick()
    client = gluster.gfapi(brick)
    client.write_file("/old", b"old data")
    client.write_file("/new", b"new data")
    client.write_file("/empty", b"")
    ten_days_ago = time.time_ns() - 10 * 86400 * 10**9
    client.utimens("/old", ten_days_ago, ten_days_ago)
    base = ("--brick", brick.directory, "--store", f"dir:{store}")

    dry = run_archive_command("archive", *base, "--older-than", 5, "--dry-run")
    assert "would archive old (8 bytes)" in dry.stdout and "new" not in dry.stdout.split()
    assert (brick.directory / "old").stat().st_size == 8
    result = run_archive_command("archive", *base, "--older-than", 5)
    assert result.returncode == 0 and "1 files archived (8 bytes)" in result.stdout
    assert (brick.directory / "old").stat().st_size == 0
    assert (brick.directory / "new").stat().st_size == 8
    again = run_archive_command("archive", *base, "--older-than", 0, "-v")
    assert "skipped old: already archived" in again.stdout
    assert "skipped empty: empty" in again.stdout
    listed = run_archive_command("list", "--brick", brick.directory)
    assert sorted(line.split("\t")[2] for line in listed.stdout.splitlines()) == ["new", "old"]

    restored = run_archive_command("restore", *base, "/old")
    assert restored.returncode == 0 and "restored old" in restored.stdout
    assert (brick.directory / "old").read_bytes() == b"old data"
    assert (brick.directory / "new").stat().st_size == 0, "restore touched another file"
    assert client.read_file("/new") == b"new data"


def test_archive_command_refuses_what_is_not_a_brick_or_a_store(workdir):
    (workdir / "plain").mkdir()
    result = run_archive_command("archive", "--brick", workdir / "plain", "--store", "dir:/x",
                                 "--older-than", 1)
    assert result.returncode == 2 and "not a brick directory" in result.stderr
    (workdir / "plain" / ".glusterfs").mkdir()
    result = run_archive_command("archive", "--brick", workdir / "plain", "--store", "s4:bucket",
                                 "--older-than", 1)
    assert result.returncode == 2 and "store 's4:bucket': unknown scheme" in result.stderr


def test_writes_into_a_stub_keep_the_rest_and_truncation_skips_the_download(archive_brick, gluster):
    brick, store = archive_brick()
    client = gluster.gfapi(brick)
    data = os.urandom(100_000)
    client.write_file("/patched", data)
    client.write_file("/replaced", data)
    client.write_file("/cut", data)
    archive_all(brick, store)
    with client.open("/patched", os.O_RDWR) as handle:
        handle.pwrite(b"PATCH", 50_000)
    assert client.read_file("/patched") == data[:50_000] + b"PATCH" + data[50_005:]
    client.write_file("/replaced", b"brand new")  # O_TRUNC: nothing to download
    assert client.read_file("/replaced") == b"brand new"
    client.truncate("/cut", 0)
    assert client.stat("/cut").st_size == 0
    stats = python_section(brick.statedump(), "arch")
    assert (int(stats["downloads"]), int(stats["discarded"])) == (1, 2)
    # Through FUSE, open(O_TRUNC) arrives as a truncate to 0, then an open.
    client.write_file("/fused", data)
    archive_all(brick, store)
    mount = gluster.mount(brick)
    (mount.mountpoint / "fused").write_bytes(b"short")
    assert client.read_file("/fused") == b"short"
    stats = python_section(brick.statedump(), "arch")
    assert (int(stats["downloads"]), int(stats["discarded"])) == (1, 3)


def test_a_store_that_fails_is_an_eio_not_a_hang_and_the_next_access_retries(
        archive_brick, gluster, assert_log_clean):
    brick, store = archive_brick()
    client = gluster.gfapi(brick)
    client.write_file("/lost", b"precious")
    archive_all(brick, store)
    store.rename(store.with_name("store-away"))
    with pytest.raises(OSError) as raised:
        client.read_file("/lost")
    assert raised.value.errno == errno.EIO
    assert "cannot restore" in brick.log_text() and "no content for key" in brick.log_text()
    assert int(python_section(brick.statedump(), "arch")["failures"]) >= 1
    assert brick.alive()
    store.with_name("store-away").rename(store)
    assert client.read_file("/lost") == b"precious"
    assert_log_clean(brick.log_text(), allowed=(r"cannot restore", r"server4_\w+_cbk"))


def test_clients_cannot_forge_or_remove_archive_marks(archive_brick, gluster):
    brick, store = archive_brick()
    client = gluster.gfapi(brick)
    client.write_file("/f", b"x")
    for name in ("trusted.glupy.archive", "trusted.glupy.archive.size"):
        with pytest.raises(PermissionError):
            client.setxattr("/f", name, b"forged")
        with pytest.raises(PermissionError):
            client.removexattr("/f", name)
    client.setxattr("/f", "user.fine", b"1")
    assert client.getxattr("/f", "user.fine") == b"1"


@pytest.mark.parametrize("options, message", [
    ({}, "option store is missing"),
    ({"store": "dir:relative"}, "the directory must be an absolute path"),
    ({"store": "/x", "store-class": "os.path"}, "is not a subclass of glupy.archive.Store"),
    ({"store": "/x", "store-class": "no_such_module.Store"}, "cannot import no_such_module"),
    ({"store": "dir:/x", "download-threads": "many"}, "option download-threads: 'many'"),
    ({"store": "dir:/x", "brick-path": "/nonexistent"}, "option brick-path '/nonexistent' is not"),
])
def test_archive_refuses_bad_options(workdir, options, message, installed_archive_module):
    layer = ("features/glupy", {"module-name": "archive", "module-path": str(EXAMPLES), **options})
    brick = glusterlib.Brick(workdir / "b", [layer], name="b")
    assert message in brick.start_expect_failure()


# ------------------------------------------------------- helloworld and trace

def test_helloworld_greets_every_lookup_on_a_fuse_client(gluster):
    brick = gluster.brick()
    mount = gluster.mount(brick, layers=[glupy("helloworld")], extra_args=NO_KERNEL_CACHE)
    (mount.mountpoint / "greeted").write_bytes(b"hi")
    os.stat(mount.mountpoint / "greeted")
    assert_missing(mount.mountpoint / "stranger")
    log = mount.log_text()
    assert "hello: lookup of /greeted" in log
    assert "hello: lookup of /stranger" in log
    assert "hello again: lookup answered -1 (ENOENT)" in log
    assert "hello again: lookup answered 0" in log


def test_trace_logs_the_chosen_fops_and_their_callbacks(gluster, assert_log_clean):
    brick = gluster.brick([glupy("trace", trace_fops="create,writev,lookup")])
    client = gluster.gfapi(brick)
    client.write_file("/traced", b"12345")
    client.stat("/traced")
    log = brick.log_text()
    assert re.search(r'create_fop\(unique=\d+ pid=\d+: loc=<glupy.Loc "/traced">', log), log
    assert re.search(r"create_cbk\(op_ret=0, op_errno=0: fd=", log)
    assert re.search(r"writev_fop\(unique=\d+ pid=\d+: fd=.*count=1, offset=0", log)
    assert "writev_cbk(op_ret=5, op_errno=0" in log
    assert "lookup_cbk(op_ret=-1, op_errno=ENOENT" in log  # the lookup before create
    assert "flush_fop" not in log, "an untraced fop was logged"
    assert_log_clean(log)


def test_trace_level_below_the_log_level_writes_nothing(gluster):
    brick = gluster.brick([glupy("trace", trace_level="DEBUG")])
    client = gluster.gfapi(brick)
    client.write_file("/quiet", b"")
    assert "lookup_fop(" not in brick.log_text()


def test_trace_refuses_an_unknown_level(workdir):
    brick = glusterlib.Brick(workdir / "b", [glupy("trace", trace_level="LOUD")], name="b")
    assert "trace-level 'LOUD' is not a logging level" in brick.start_expect_failure()


# ------------------------------------------------------------ pure functions

def load_repo_module(relative):
    """A module of this checkout's python/glupy, loaded by path (no glupy import)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"repo_{Path(relative).stem}",
                                                  REPO_PYTHON / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flow_percentiles_are_nearest_rank_and_bad_lines_are_counted():
    flow = load_repo_module("glupy/flow.py")
    ordered = list(range(1, 101))
    assert [flow.percentile(ordered, p) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert flow.percentile([7], 99) == 7 and flow.percentile([], 50) == 0
    summary = flow.Summary()
    for latency in (10, 20, 30, 40):
        summary.add_line(json.dumps({"fop": "readv", "latency_us": latency, "op_ret": 1,
                                     "path": "/a", "host": "h"}))
    summary.add_line(json.dumps({"fop": "readv", "latency_us": 5, "op_ret": -1, "path": "/b"}))
    summary.add_line("not json")
    summary.add_line(json.dumps({"no": "fop"}))
    report = summary.report()
    assert report["records"] == 5 and report["bad"] == 2
    readv = report["fops"]["readv"]
    assert (readv["count"], readv["errors"], readv["p50_us"], readv["max_us"]) == (5, 1, 20, 40)
    assert report["busiest"][0] == {"path": "/a", "count": 4}


def test_store_specs_are_checked():
    archive = load_repo_module("glupy/archive.py")
    assert isinstance(archive.open_store("dir:/srv/archive"), archive.LocalDirectoryStore)
    for spec, message in (("dir:relative", "absolute path"), ("ftp:host", "unknown scheme"),
                          ("", "unknown scheme")):
        with pytest.raises(ValueError, match=message):
            archive.open_store(spec)
    with pytest.raises(ValueError, match="not a dotted name"):
        archive.open_store("x", store_class="NoModule")
