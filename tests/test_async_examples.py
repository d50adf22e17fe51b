"""The async example translators (issue 7) on real bricks: archive_async.py's
retrieval as coroutines (a thousand concurrent readers, deadlines).
negative_async.py runs the negative cache's tests in test_examples.py."""

import asyncio
import ctypes
import errno
import io
import os
import subprocess
import sys
import random
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest

import glusterlib
from test_examples import EXAMPLES, XLATORS, archive_all, glupy, load_repo_module, python_section

STORE_CLASS = "ex_async_store.CountingStore"
REPO_PYTHON = Path(__file__).parent.parent / "python"

# void (*glfs_io_cbk)(glfs_fd_t *fd, ssize_t ret, struct glfs_stat *prestat,
#                     struct glfs_stat *poststat, void *data)
IO_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_void_p,
                               ctypes.c_void_p, ctypes.c_void_p)


@pytest.fixture
def installed_glupy_archive():
    """The brick imports the installed glupy.archive: it must be this checkout's."""
    import glupy

    installed = Path(glupy.__file__).parent / "archive.py"
    mine = REPO_PYTHON / "glupy" / "archive.py"
    if not installed.exists() or installed.read_bytes() != mine.read_bytes():
        pytest.fail(f"{installed} is not {mine}: run make install", pytrace=False)


@pytest.fixture
def async_archive(gluster, workdir, installed_glupy_archive):
    """make(**options) -> (brick with archive_async.py as "arch" over a
    CountingStore, the store directory)."""
    modules = workdir / "modules"  # the store class is imported next to the translator
    modules.mkdir(mode=0o755)
    for source in (EXAMPLES / "archive.py", EXAMPLES / "archive_async.py",
                   XLATORS / "ex_async_store.py"):
        shutil.copy(source, modules)
    store = workdir / "store"

    def make(store_class=STORE_CLASS, **options):
        layer = glupy("archive_async", path=modules, name="arch", store=store,
                      store_class=store_class, **options)
        return gluster.brick([layer]), store
    return make


def gets_of(store):
    """The keys the CountingStore was asked for, in order."""
    log = store / "gets.log"
    return log.read_text().split() if log.exists() else []


def key_of(brick, name):
    return str(uuid.UUID(bytes=os.getxattr(brick.directory / name, "trusted.gfid")))


def arch_stats(brick):
    return python_section(brick.statedump(), "arch")


class AsyncReads:
    """glfs_pread_async of whole files: every read is in flight at once,
    without a thread per read."""

    def __init__(self, client):
        self.lib = client.lib
        self.lib.glfs_pread_async.restype = ctypes.c_int
        self.lib.glfs_pread_async.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                              ctypes.c_int64, ctypes.c_int, IO_CALLBACK,
                                              ctypes.c_void_p]
        self.callback = IO_CALLBACK(self._done)  # kept alive while reads are out
        self.lock = threading.Lock()
        self.buffers, self.results = [], {}
        self.all_done = threading.Event()

    def start(self, handle, size):
        index = len(self.buffers)
        self.buffers.append(ctypes.create_string_buffer(size))
        started = self.lib.glfs_pread_async(handle.fd, self.buffers[index], size, 0, 0,
                                            self.callback, index)
        assert started == 0, f"glfs_pread_async failed: {os.strerror(ctypes.get_errno())}"

    def _done(self, _fd, ret, _prestat, _poststat, data):
        index = data or 0  # ctypes passes a NULL void * as None
        with self.lock:
            buffer = self.buffers[index]
            self.results[index] = buffer.raw[:ret] if ret >= 0 else ret
            if len(self.results) == len(self.buffers):
                self.all_done.set()

    def finished(self):
        with self.lock:
            return len(self.results)


def test_a_thousand_concurrent_readers_of_cold_files_one_download_each(async_archive, gluster):
    brick, store = async_archive()
    client = gluster.gfapi(brick)
    files, readers_per_file = 50, 20
    contents = {f"/cold-{n}": random.randbytes(random.randint(4_000, 64_000)) for n in range(files)}
    for path, data in contents.items():
        client.write_file(path, data)
    archive_all(brick, store)  # the command's format, read by the async translator
    (store / "hold").touch()  # every download waits until the readers are all in

    handles, expected = [], []
    for _ in range(readers_per_file):
        for path, data in contents.items():
            handles.append(client.open(path))  # opening a stub starts its download
            expected.append(data)
    reads = AsyncReads(client)
    try:
        for handle, data in zip(handles, expected):
            reads.start(handle, len(data))
        parked = glusterlib.wait_until(
            lambda: int(arch_stats(brick)["waiters"]) >= len(handles), 30, interval=0.2)
        stats = arch_stats(brick)
        assert parked, f"the reads did not all wait for their downloads: {stats}"
        assert reads.finished() == 0, "a read was answered before its download"
        assert int(stats["downloading"]) == files
        (store / "hold").unlink()
        assert reads.all_done.wait(30), f"only {reads.finished()} of {len(handles)} reads answered"
    finally:
        (store / "hold").unlink(missing_ok=True)
        reads.all_done.wait(30)  # the buffers must outlive the reads
        for handle in handles:
            handle.close()

    wrong = [i for i, data in enumerate(expected) if reads.results[i] != data]
    assert not wrong, f"{len(wrong)} reads were not byte-identical, e.g. #{wrong[0]}"
    keys = gets_of(store)
    assert sorted(keys) == sorted(key_of(brick, path.lstrip("/")) for path in contents)
    stats = arch_stats(brick)
    assert (int(stats["downloads"]), int(stats["failures"]), int(stats["downloading"])) == (files, 0, 0)
    for path, data in contents.items():
        assert (brick.directory / path.lstrip("/")).read_bytes() == data


def start_readers(client, path, count):
    """count threads reading path; each leaves (errno or None, seconds) in outcomes."""
    outcomes = []

    def read():
        started = time.monotonic()
        try:
            client.read_file(path)
            outcomes.append((None, time.monotonic() - started))
        except OSError as error:
            outcomes.append((error.errno, time.monotonic() - started))

    threads = [threading.Thread(target=read) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def test_a_hanging_store_is_answered_etimedout_and_the_next_access_retries(
        async_archive, gluster, assert_log_clean):
    brick, store = async_archive(async_timeout=1)
    client = gluster.gfapi(brick)
    data = random.randbytes(100_000)
    client.write_file("/frozen", data)
    archive_all(brick, store)
    client.write_file("/warm", b"warm data")
    (store / "hold").touch()  # the store hangs

    readers, outcomes = start_readers(client, "/frozen", 5)
    assert glusterlib.wait_until(lambda: gets_of(store), 10), "no download started"
    # The brick serves everything else meanwhile: the loop is not blocked.
    assert client.read_file("/warm") == b"warm data"
    assert client.stat("/frozen").st_size == len(data)
    assert any(reader.is_alive() for reader in readers), "the hung reads ended too soon to tell"
    for reader in readers:
        reader.join(20)
    assert [code for code, _ in outcomes] == [errno.ETIMEDOUT] * 5
    assert all(0.5 < seconds < 10 for _, seconds in outcomes), outcomes
    stats = arch_stats(brick)
    assert (int(stats["failures"]), int(stats["downloading"])) == (1, 0)
    assert "no answer within download-timeout 1.0s" in brick.log_text()
    assert os.getxattr(brick.directory / "frozen", "trusted.glupy.archive"), "no longer a stub"

    (store / "hold").unlink()  # the store answers again: the next access retries
    assert client.read_file("/frozen") == data
    assert gets_of(store) == [key_of(brick, "frozen")] * 2
    assert int(arch_stats(brick)["downloads"]) == 1
    assert brick.alive()
    # The requests' deadline and the download's end together: either may answer them.
    assert_log_clean(brick.log_text(), allowed=(r"cannot restore", r"server4_\w+_cbk",
                                                r"did not finish within async-timeout"))


def test_a_request_that_gives_up_leaves_the_shared_download_running(async_archive, gluster):
    brick, store = async_archive(async_timeout=1, download_timeout=60)
    client = gluster.gfapi(brick)
    data = random.randbytes(50_000)
    client.write_file("/slow", data)
    archive_all(brick, store)
    (store / "hold").touch()
    readers, outcomes = start_readers(client, "/slow", 3)
    for reader in readers:
        reader.join(20)
    assert [code for code, _ in outcomes] == [errno.ETIMEDOUT] * 3
    assert "did not finish within async-timeout" in brick.log_text()
    assert int(arch_stats(brick)["downloading"]) == 1, "giving up cancelled the download"
    (store / "hold").unlink()
    assert client.read_file("/slow") == data
    assert gets_of(store) == [key_of(brick, "slow")], "the download was started again"
    stats = arch_stats(brick)
    assert (int(stats["downloads"]), int(stats["failures"])) == (1, 0)


def test_a_sync_store_class_runs_on_the_download_threads(async_archive, gluster, workdir):
    shutil.copy(XLATORS / "ex_slow_store.py", workdir / "modules")
    brick, store = async_archive(store_class="ex_slow_store.SlowStore", store_delay=0.5)
    client = gluster.gfapi(brick)
    data = random.randbytes(300_000)
    client.write_file("/cold", data)
    archive_all(brick, store)
    readers, outcomes = start_readers(client, "/cold", 20)
    for reader in readers:
        reader.join(30)
    assert [code for code, _ in outcomes] == [None] * 20
    assert client.read_file("/cold") == data
    assert (store / "gets.log").read_text().split() == [key_of(brick, "cold")]
    # On one of the translator's download threads (archive.py names them), not
    # on the event loop's thread nor on asyncio's default executor.
    [thread] = (store / "threads.log").read_text().split()
    assert thread.startswith("glupy-archive_"), thread
    stats = arch_stats(brick)
    assert stats["store"].startswith("SlowStore(")
    assert int(stats["downloads"]) == 1 and int(stats["waiters"]) >= 10


def test_writes_into_a_stub_keep_the_rest_and_truncation_skips_the_download(async_archive, gluster):
    brick, store = async_archive()
    client = gluster.gfapi(brick)
    data = random.randbytes(100_000)
    for name in ("/patched", "/replaced", "/cut"):
        client.write_file(name, data)
    archive_all(brick, store)
    with client.open("/patched", os.O_RDWR) as handle:
        handle.pwrite(b"PATCH", 50_000)
    assert client.read_file("/patched") == data[:50_000] + b"PATCH" + data[50_005:]
    client.write_file("/replaced", b"brand new")  # open(O_TRUNC): nothing to download
    assert client.read_file("/replaced") == b"brand new"
    client.truncate("/cut", 0)
    assert client.stat("/cut").st_size == 0
    stats = arch_stats(brick)
    assert (int(stats["downloads"]), int(stats["discarded"])) == (1, 2)
    assert gets_of(store) == [key_of(brick, "patched")]


def run_archive_command(*args):
    env = {**os.environ, "PYTHONPATH": f"{REPO_PYTHON}:{XLATORS}"}
    return subprocess.run([sys.executable, "-m", "glupy.archive", *map(str, args)],
                          capture_output=True, text=True, env=env)


def test_the_command_archives_and_restores_through_an_async_store_class(async_archive, gluster):
    brick, store = async_archive()
    client = gluster.gfapi(brick)
    client.write_file("/a", b"first file")
    client.write_file("/b", b"second file")
    base = ("--brick", brick.directory, "--store", store, "--store-class", STORE_CLASS)
    archived = run_archive_command("archive", *base, "--older-than", 0)
    assert archived.returncode == 0 and "2 files archived" in archived.stdout, archived.stderr
    assert (brick.directory / "a").stat().st_size == 0
    restored = run_archive_command("restore", *base, "/a")
    assert restored.returncode == 0 and "restored a" in restored.stdout, restored.stderr
    assert (brick.directory / "a").read_bytes() == b"first file"
    assert gets_of(store) == [key_of(brick, "a")]
    assert client.read_file("/b") == b"second file"  # the translator reads the same format


def test_archive_async_refuses_a_bad_download_timeout(workdir, installed_glupy_archive):
    layer = glupy("archive_async", store=f"dir:{workdir}/store", download_timeout="soon")
    brick = glusterlib.Brick(workdir / "b", [layer], name="b")
    assert "option download-timeout: 'soon' is not a number of seconds" in brick.start_expect_failure()


# ------------------------------------------------------------ the stores alone

@pytest.fixture
def cold(monkeypatch):
    """This checkout's glupy/archive.py, importable as repo_archive."""
    module = load_repo_module("glupy/archive.py")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def test_async_directory_store_round_trips_and_reports_missing_keys(cold, workdir):
    store = cold.open_async_store(f"dir:{workdir}/store")
    assert isinstance(store, cold.AsyncLocalDirectoryStore)
    data = random.randbytes(3 * cold.CHUNK_BYTES + 7)  # several chunks
    source, target = workdir / "source", workdir / "target"
    source.write_bytes(data)

    async def scenario():
        with open(source, "rb") as stream:
            await store.put("0a-key", stream)
        with open(target, "wb") as stream:
            await store.get("0a-key", stream)
        await store.delete("0a-key")
        await store.delete("0a-key")  # no error when absent
        with open(target, "ab") as stream, pytest.raises(cold.StoreError, match="no content"):
            await store.get("0a-key", stream)

    asyncio.run(scenario())
    assert target.read_bytes() == data
    # The sync store reads what the async one wrote, and the other way round.
    sync_store = cold.open_store(f"dir:{workdir}/store")
    with open(source, "rb") as stream:
        sync_store.put("0b-key", stream)
    assert (workdir / "store" / "0b" / "0b-key").read_bytes() == data


def test_a_cancelled_async_upload_leaves_no_key(cold, workdir):
    store = cold.open_async_store(f"dir:{workdir}/store")

    class EndlessSource(io.RawIOBase):
        def readinto(self, buffer):
            buffer[:] = b"x" * len(buffer)
            return len(buffer)

    async def scenario():
        upload = asyncio.ensure_future(store.put("0c-key", EndlessSource()))
        await asyncio.sleep(0.2)
        upload.cancel()
        with pytest.raises(asyncio.CancelledError):
            await upload

    asyncio.run(scenario())
    assert os.listdir(workdir / "store" / "0c") == [], "a partial upload was left behind"


def test_stores_of_either_kind_serve_either_kind_of_caller(cold, workdir):
    (workdir / "store" / "0d").mkdir(parents=True)
    (workdir / "store" / "0d" / "0d-key").write_bytes(b"content")
    adapter = cold.open_async_store(str(workdir / "store"),
                                    store_class="repo_archive.LocalDirectoryStore")
    assert isinstance(adapter, cold.AsyncStoreAdapter)
    target = io.BytesIO()
    asyncio.run(adapter.get("0d-key", target))
    assert target.getvalue() == b"content"

    blocking = cold.open_store(str(workdir / "store"),
                               store_class="repo_archive.AsyncLocalDirectoryStore")
    assert isinstance(blocking, cold.BlockingStore)
    target = io.BytesIO()
    blocking.get("0d-key", target)
    blocking.close()
    assert target.getvalue() == b"content"
    assert not blocking.thread.is_alive()


def test_store_classes_must_be_stores(cold):
    with pytest.raises(ValueError, match="not a subclass of glupy.archive.Store or glupy.archive.AsyncStore"):
        cold.open_async_store("x", store_class="io.BytesIO")
    with pytest.raises(ValueError, match="option store is missing"):
        cold.store_from_volfile({"store-region": "x"}, cold.open_async_store)
