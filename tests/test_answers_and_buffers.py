"""Data a translator replaces reaches the disk intact under the layers that
hold buffers after a call returns; lent C values are copied; and every
request is answered once, by the rule src/answer.rs states (issue 11,
items 1, 2 and 4). Judged by what clients read back and receive."""

import ctypes
import errno
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import glusterlib

XLATORS = Path(__file__).parent / "xlators"
XOR = bytes(b ^ 0x5A for b in range(256))
CALL_TIMEOUT = 60

# Sizes from 1 byte to a few MiB, none a multiple of a page or of another.
SIZES = [1, 2, 7, 511, 4095, 4097, 65535, 65537, 131071, 300001, 1048577, 3 * 1048576 + 5]


def glupy(module, name, **options):
    opts = {"module-name": module, "module-path": str(XLATORS)}
    opts.update({k.replace("_", "-"): str(v) for k, v in options.items()})
    return ("features/glupy", opts, name)


def contents(seed):
    rng = random.Random(seed)
    return {f"f{size}-{seed}.bin": rng.randbytes(size) for size in SIZES}


def write_unevenly(path, data, rng):
    """Writes data in chunks of uneven sizes (1 B .. 200 KiB)."""
    with open(path, "wb", buffering=0) as f:
        at = 0
        while at < len(data):
            step = rng.choice([1, 3, 511, 4097, 65537, 200001])
            f.write(data[at:at + step])
            at += step


def assert_same(name, got, expected):
    if got != expected:
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b),
                     min(len(got), len(expected)))
        pytest.fail(f"{name}: {len(got)} bytes read, {len(expected)} expected, first difference at {first}")


# xor_async: the same replacements by `async def` fops (first step on the
# calling thread, replies kept past their answers).
XOR_MODULES = ["xor_data", "xor_async"]


@pytest.mark.parametrize("module", XOR_MODULES)
def test_replaced_write_data_survives_write_behind_in_a_fuse_client(gluster, assert_log_clean, module):
    # FUSE -> glupy (new bytes for every write, wound with the request's own
    # iobref) -> write-behind (flush-behind: it keeps the iovec after our
    # wind returned) -> protocol/client.
    brick = gluster.brick()
    mount = gluster.mount(brick, layers=[
        ("performance/write-behind", {"flush-behind": "on", "cache-size": "8MB"}, "wb"),
        glupy(module, "xor", xor_writes="on"),
    ])
    rng = random.Random(11)
    files = {}
    for round_ in range(3):
        for name, data in contents(round_).items():
            write_unevenly(mount.mountpoint / name, data, rng)
            files[name] = data
    mount.unmount()  # flush-behind: the last writes go down now
    plain = gluster.gfapi(brick)
    for name, data in files.items():
        assert_same(name, plain.read_file("/" + name), data.translate(XOR))
    assert_log_clean(brick.log_text())


def test_replaced_write_data_survives_io_threads_in_a_brick(gluster, assert_log_clean):
    # posix -> locks -> io-threads (queues the request and returns) -> glupy
    # (new bytes for every write) -> server; small files through FUSE.
    brick = gluster.brick([("performance/io-threads", {}, "iot"),
                           glupy("xor_data", "xor", xor_writes="on")])
    mount = gluster.mount(brick)
    rng = random.Random(5)
    files = {f"small{i}.bin": rng.randbytes(rng.choice([1, 17, 900, 4095, 4097, 20000]))
             for i in range(120)}
    for name, data in files.items():
        (mount.mountpoint / name).write_bytes(data)
    plain = gluster.gfapi(brick)  # reads are not changed by xor_data
    for name, data in files.items():
        assert_same(name, plain.read_file("/" + name), data.translate(XOR))
    assert_log_clean(brick.log_text())


@pytest.mark.parametrize("module", XOR_MODULES)
def test_replaced_read_replies_survive_the_socket_layer_under_concurrent_readers(gluster, assert_log_clean, workdir,
                                                                                  module):
    # The brick answers every readv with new bytes. A reader process is
    # stopped and continued again and again, so the brick's replies to it
    # wait in protocol/server's socket queue (which holds the iovec, not a
    # copy) while another client's reads make the brick reuse buffers.
    brick = gluster.brick([glupy(module, "xor", xor_reads="on")])
    writer = gluster.gfapi(brick)
    rng = random.Random(3)
    expected_dir = workdir / "expected"
    expected_dir.mkdir()
    for i in range(6):
        data = rng.randbytes(4 * 1048576 + rng.randrange(1, 65536))
        writer.write_file(f"/big{i}.bin", data)
        (expected_dir / f"big{i}.bin").write_bytes(data.translate(XOR))
    churn_files = {f"/churn{i}.bin": rng.randbytes(1048576 + i) for i in range(4)}
    for name, data in churn_files.items():
        writer.write_file(name, data)
    volfile = gluster.client_volfile(brick)
    reader = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "slow_reader.py"), str(volfile),
         str(workdir / "slow-reader.log"), str(expected_dir), "8", "6"],
        stdout=subprocess.PIPE, text=True)
    churn_failures = []
    try:
        stop_at = time.monotonic() + 6
        toggled = threading.Thread(target=stop_and_continue, args=(reader, stop_at))
        toggled.start()
        while time.monotonic() < stop_at:
            for name, data in churn_files.items():
                if writer.read_file(name) != data.translate(XOR):
                    churn_failures.append(name)
        toggled.join()
        out, _ = reader.communicate(timeout=CALL_TIMEOUT)
    finally:
        if reader.poll() is None:
            os.kill(reader.pid, signal.SIGCONT)
            reader.kill()
            reader.wait()
    result = json.loads(out)
    assert result["reads"] > 50, result
    assert result["mismatches"] == [] and churn_failures == []
    assert_log_clean(brick.log_text())


def stop_and_continue(process, until):
    while time.monotonic() < until and process.poll() is None:
        os.kill(process.pid, signal.SIGSTOP)
        time.sleep(0.08)
        os.kill(process.pid, signal.SIGCONT)
        time.sleep(0.02)


def test_a_read_reply_without_a_vector_is_sent_with_count_0(gluster, assert_log_clean):
    # unwind(0, 0, None, 1, ...): a NULL iovec with count 1 used to crash
    # protocol/server (or FUSE); the host sends count 0.
    brick = gluster.brick([glupy("xor_data", "xor", eof_as_none="on")])
    client = gluster.gfapi(brick)
    client.write_file("/f", b"some data")
    assert client.read_file("/f") == b""
    mount = gluster.mount(brick)
    assert (mount.mountpoint / "f").read_bytes() == b""
    assert brick.alive() and mount.alive()
    assert_log_clean(brick.log_text())


def test_a_read_reply_claiming_more_than_its_data_is_refused(gluster, assert_log_clean):
    # Clients copy op_ret bytes out of the vector: half the data with the
    # old op_ret would hand them memory beyond it.
    brick = gluster.brick([glupy("xor_data", "xor", short_reads="on")])
    client = gluster.gfapi(brick)
    client.write_file("/f", b"0123456789" * 1000)
    with client.open("/f") as f:
        with pytest.raises(OSError) as failure:
            f.pread(10000, 0)
    assert failure.value.errno == errno.EIO
    log = brick.log_text()
    assert "op_ret (10000) is more than its data (5000 bytes)" in log
    assert_log_clean(log, allowed=(r"raised; the request is answered EIO", r"server4_readv_cbk",
                                   r"Traceback", r"^\s", r"ValueError"))


def test_the_active_lock_list_is_copied_when_the_reply_arrives(gluster, assert_log_clean):
    # features/locks unwinds a list on its stack and frees it when the
    # callback returns; keeper's callback runs after that (deferred until
    # its wind returns) and keeps it 50 ms, prober's coroutine 100 ms more.
    brick = gluster.brick([glupy("lock_probe", "keeper", role="keeper"),
                           glupy("lock_probe", "prober", role="prober")])
    mount = gluster.mount(brick)
    path = mount.mountpoint / "locked"
    path.write_bytes(b"x" * 4096)
    with open(path, "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX, 100, 1000)
        report = json.loads(os.getxattr(path, "user.probe.activelk"))
    assert report["op_ret"] == 1, report
    [lock] = report["locks"]
    assert (lock["l_start"], lock["l_len"], lock["l_type"]) == (1000, 100, fcntl.F_WRLCK)
    assert lock["client_uid"].startswith("CTX_ID:"), lock
    # No lock held: an empty list, answered.
    assert json.loads(os.getxattr(path, "user.probe.activelk"))["locks"] == []
    assert_log_clean(brick.log_text())


def race_brick(gluster, **options):
    return gluster.brick([glupy("slow_child", "slow"), glupy("answer_race", "race", **options)])


def test_raised_after_winding_the_childs_reply_answers(gluster, assert_log_clean):
    brick = race_brick(gluster)
    mount = gluster.mount(brick)
    names = [f"race-{i}" for i in range(40)] + [f"race-eperm-{i}" for i in range(40)]
    for name in names:
        fd = os.open(mount.mountpoint / name, os.O_CREAT | os.O_WRONLY, 0o640)
        os.close(fd)
    client = gluster.gfapi(brick)
    assert sorted(client.readdir("/")) == sorted(names), "every create succeeded"
    log = brick.log_text()
    # (GlusterFS folds repeated lines: counted by kind, not by line.)
    assert "create_fop raised after winding; the child's reply answers the request" in log
    assert "create_fop raised errno 1 after winding; the child's reply answers the request" in log
    assert "answered EIO" not in log and "after the request was answered" not in log
    assert_log_clean(log, allowed=(r"raised after winding", r"Traceback", r"^\s", r"RuntimeError"))


def test_an_answer_after_winding_is_refused_whenever_the_reply_comes_back(gluster, assert_log_clean):
    brick = race_brick(gluster)
    mount = gluster.mount(brick)
    for i in range(40):
        os.mkdir(mount.mountpoint / f"d{i}")  # EPERM here would fail the test
    client = gluster.gfapi(brick)
    report = json.loads(client.getxattr("/", "user.race.report"))
    assert report["accepted"] == []
    assert len(report["refused"]) == 40
    # Refused as "wound" while the reply is out, as "its reply went on to
    # the callback" once it is back: both orders must have happened.
    kinds = {"is wound" if "is wound" in why else "went on" if "its reply went on" in why else why
             for why in report["refused"]}
    assert kinds == {"is wound", "went on"}
    assert_log_clean(brick.log_text())


def test_a_coroutines_reply_waits_for_a_sibling_wind_and_is_not_lost(gluster, assert_log_clean):
    brick = race_brick(gluster)
    gluster.gfapi(brick).write_file("/sib-f", b"12345")
    client = gluster.gfapi(brick)
    started = time.monotonic()
    assert client.stat("/sib-f").st_size == 5  # its lookup is answered, not EIO
    assert time.monotonic() - started >= 0.5, "answered while the sibling wind was out"
    report = json.loads(client.getxattr("/", "user.race.report"))
    assert report["answered"] and len(report["answered"]) == len(report["sibling_back"])
    assert_log_clean(brick.log_text())


def kept_reply_exchange(client):
    """Sends getxattr user.kr.hold (kept by the lower layer) from a thread of
    its own, then user.kr.release (which answers it): (hold's value, what
    release reported)."""
    held = {}

    def one_getxattr(name):
        # One getxattr request (the client's getxattr asks for the size first).
        buf = ctypes.create_string_buffer(256)
        size = client.lib.glfs_getxattr(client.fs, b"/", name.encode(), buf, len(buf))
        return buf.raw[:size] if size >= 0 else OSError(ctypes.get_errno(), name)

    def hold():
        held["value"] = one_getxattr("user.kr.hold")

    holder = threading.Thread(target=hold)
    holder.start()
    # (lower's release waits until hold is kept.)
    report = json.loads(one_getxattr("user.kr.release"))
    holder.join(CALL_TIMEOUT)
    assert not holder.is_alive()
    return held["value"], report


def test_an_answer_to_a_kept_request_goes_up_through_every_python_layer_at_once(gluster, assert_log_clean):
    # lower answers the request it kept, inside its method for another one,
    # and waits for the layer two above to see that answer: the middle
    # layer's callback runs in between, on this thread, and its own answer
    # must go up when its callback returns, not when lower's method does.
    brick = gluster.brick([glupy("kept_reply", "lower", role="lower", wait=20),
                           glupy("kept_reply", "middle", role="upper", notes="no"),
                           glupy("kept_reply", "top", role="upper")])
    value, report = kept_reply_exchange(gluster.gfapi(brick))
    assert value == b"held"
    assert report == {"callback_ran": True}, "the middle layer's answer waited for lower's method"
    assert_log_clean(brick.log_text())


def test_a_reply_to_another_frame_is_not_held_back_by_a_wind_on_its_thread(gluster, assert_log_clean):
    # lower answers the request it kept (hold) while it handles release, on
    # the thread that runs upper's synchronous wind of release, and waits
    # for upper's callback of hold. That callback must run then: it used to
    # be deferred until release's wind returned (a 20 s wait here, a hang
    # for a child that waits without a limit).
    brick = gluster.brick([glupy("kept_reply", "lower", role="lower", wait=20),
                           glupy("kept_reply", "upper", role="upper")])
    value, report = kept_reply_exchange(gluster.gfapi(brick))
    assert value == b"held"
    assert report == {"callback_ran": True}, "the kept request's callback waited for another frame's wind"
    assert_log_clean(brick.log_text())



def call_with_timeout(call, *args, timeout=CALL_TIMEOUT):
    """(result or exception) of call(*args); fails the test if it hangs."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            outcome["value"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        pytest.fail(f"{getattr(call, '__name__', call)}{args} was not answered within {timeout}s")
    return outcome["value"]


def test_a_panic_in_the_callback_entry_still_answers_the_request_once(gluster, assert_log_clean):
    # A Rust panic in the callback entry before the answering machine took
    # the reply: a synchronous wind's request is answered EIO (it used to
    # stay wound for ever), a coroutine's awaitable fails (it used to wait
    # for ever, its wind counted out).
    brick = gluster.brick([glupy("cbk_panic", "panicky")])
    client = gluster.gfapi(brick)
    failed = call_with_timeout(client.getxattr, "/", "user.panic.sync")
    assert isinstance(failed, OSError) and failed.errno == errno.EIO, failed
    failed = call_with_timeout(client.statvfs, "/")
    assert isinstance(failed, OSError) and failed.errno == errno.EREMOTEIO, failed
    # Nothing is left armed or pending: the next requests pass.
    plain = call_with_timeout(client.getxattr, "/", "user.none")
    assert isinstance(plain, OSError) and plain.errno == errno.ENODATA, plain
    section = glusterlib.statedump_sections(brick.statedump())["xlator.features.glupy.panicky.priv"]
    for fop in ("getxattr", "statfs"):
        counters = dict(pair.split("=") for pair in section[f"fop.{fop}"].split())
        assert counters["calls"] == counters["answered"], (fop, counters)
    log = brick.log_text()
    assert "a panic injected at CallbackEntry" in log
    assert "the reply to a getxattr wind was lost by an internal error" in log
    assert "statfs wind failed: the reply to this statfs wind was lost" in log
    assert brick.alive()
    assert_log_clean(log, allowed=(r"internal error in a callback entry", r"was lost by an internal error",
                                   r"server4_getxattr_cbk", r"server4_statfs_cbk"))
