"""Reliability (issue 6): a Python translator that misbehaves never loses
data, never hangs a request and never takes the brick down.

The translators are tests/xlators/fault_chaos.py (sync) and fault_async.py
(async def). Every client call here runs under a timeout: a request the
host failed to answer fails the test instead of hanging it.
"""

import collections
import errno
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import pytest

import glusterlib
from test_host import EXPECTED_ERRORS, XLATORS, glupy, glupy_section

HERE = Path(__file__).parent
# No single request may take longer (stress/valgrind.py raises it).
CALL_TIMEOUT = float(os.environ.get("GLUPY_FAULT_CALL_TIMEOUT", "20"))
# Errors the fault translators make the host log on purpose.
FAULT_ERRORS = EXPECTED_ERRORS + (
    r"server4_\w+_cbk|server_\w+_cbk|server_first_lookup",  # the server logs failed requests
    r"fault_\w+ \w+_(fop|cbk) raised",
    r"did not finish within async-timeout|was cancelled; answered ETIMEDOUT",
    r"answering \w+ failed",
    r"Exception in thread",
    # A file unlinked while a lookup of it races in: posix logs the missing
    # metadata xattr of the vanished file (GlusterFS's own race, not ours).
    r"posix_fetch_mdata_xattr.*No such file or directory",
    # Workload clients exit right after their last close: the server's
    # answer to their fire-and-forget RELEASE finds no one to send to.
    r"rpcsvc_submit_generic|Reply submission failed",
)
# The errnos fault_chaos answers requests with.
CHAOS_ERRNOS = (errno.EIO, errno.EAGAIN, errno.EINVAL)
# Mempools whose live objects must return to their count before a workload
# (not dentry_t: a dentry per name cached in the inode table's LRU).
POOLS = ("fd_t", "inode_t", "dict_t", "data_t", "data_pair_t",
         "call_stack_t", "call_frame_t", "iobref")


def with_timeout(call, *args, timeout=CALL_TIMEOUT):
    """call(*args) in a thread; fails the test if it does not return."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call(*args)
        except BaseException as error:  # handed to the caller
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        pytest.fail(f"{getattr(call, '__name__', call)}{args} hung for {timeout}s: "
                    f"a request was never answered")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def fault_brick(gluster, module="fault_chaos", **options):
    return gluster.brick([glupy(module, name="fault", **options)])


def command(client, name, path="/"):
    """getxattr user.fault.<name>: runs a command of the fault translator."""
    return with_timeout(client.getxattr, path, "user.fault." + name)


def report(client):
    return json.loads(command(client, "report"))


def errno_of(call, *args):
    """The errno call(*args) fails with (a timeout fails the test)."""
    with pytest.raises(OSError) as failure:
        with_timeout(call, *args)
    return failure.value.errno


# What a client logs when a reply comes that it has no request for (a
# request answered twice), or when a request is never answered (call_bail).
UNPAIRED_REPLY = re.compile(r"cannot lookup the saved frame|no request with frame for xid|"
                            r"bailing out frame")


def assert_every_request_answered_once(brick, clients, name="fault"):
    """Each request got exactly one reply: every client call returned (the
    tests run them under with_timeout), no client saw a reply without a
    request or a request without a reply, and, once idle, the host's own
    counters agree. clients: Gfapi objects or paths of client logs."""
    for client in clients:
        log = client.log_text() if hasattr(client, "log_text") else glusterlib.read_text(client)
        unpaired = [line for line in log.splitlines() if UNPAIRED_REPLY.search(line)]
        assert not unpaired, f"a client saw a reply twice or never:\n" + "\n".join(unpaired[:10])

    def balanced():
        section = glupy_section(brick.statedump(), name)
        counters = {key[4:]: dict(pair.split("=") for pair in value.split())
                    for key, value in section.items() if key.startswith("fop.")}
        unbalanced = {fop: c for fop, c in counters.items() if c["calls"] != c["answered"]}
        return (not unbalanced, unbalanced, counters)

    done = glusterlib.wait_until(lambda: balanced()[0], 10, interval=0.3)
    _, unbalanced, counters = balanced()
    assert done, f"requests not answered exactly once: {unbalanced}"
    return counters


# ------------------------------------------------------------- leak counters

def leak_counters(dump, glupy_name="fault"):
    """What must come back to its baseline once clients are gone: live
    objects of the mempools, frames in flight, the inode table's active
    inodes, and the glupy translator's own GF_MALLOC accounting."""
    counters, pool, section, lru = {}, None, None, 0
    for line in dump.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        if section == "mempool" and key == "pool-name":
            pool = value
        elif section == "mempool" and key == "active-count" and pool in POOLS:
            counters[f"pool.{pool}"] = counters.get(f"pool.{pool}", 0) + int(value)
        elif section == "global.callpool" and key == "callpool.cnt":
            counters["callpool"] = int(value)
        elif key.endswith(".active_size") and ".bound_xl." in key:
            counters["inodes.active"] = int(value)
        elif key.endswith(".lru_size") and ".bound_xl." in key:
            lru = int(value)
        elif (section or "").startswith(f"features/glupy.{glupy_name}") and key == "num_allocs":
            counters[f"glupy.{section.split('usage-type ')[-1]}"] = int(value)
    # Inodes of files that still exist (or that a client still looked up)
    # stay cached in the table's LRU: those are not held by anyone.
    counters["pool.inode_t"] = counters.get("pool.inode_t", 0) - lru
    return counters


def settled_counters(brick, baseline, timeout=15):
    """Counters once they stop moving (or equal baseline); the last seen."""
    seen = {}

    def back():
        seen.clear()
        seen.update(leak_counters(brick.statedump()))
        return all(seen.get(k, 0) <= v for k, v in baseline.items()) and seen

    glusterlib.wait_until(back, timeout, interval=0.5)
    return seen


def assert_no_leak(brick, baseline):
    after = settled_counters(brick, baseline)
    grown = {k: (baseline.get(k, 0), v) for k, v in after.items() if v > baseline.get(k, 0)}
    assert not grown, f"still allocated after the clients left (baseline, now): {grown}"


# ------------------------------------------------------------------ workload

WORKLOAD = """
import json, os, sys
sys.path.insert(0, {tests!r})
import test_faults
result = test_faults.file_workload({volfile!r}, {log!r}, {seed}, {files})
print(json.dumps(result))
sys.stdout.flush()
os._exit(0)  # a gfapi client that exits is gone at once (glfs_fini takes 10 s)
"""


def file_workload(volfile, log, seed, files):
    """Creates, writes, renames, links, reads and unlinks files through a
    translator that may fail any request; returns {path: hex of the data}
    for the files every step of which succeeded, and (step, errno) of each
    file that failed."""
    client = connect_despite_faults(volfile, log)
    rng = random.Random(seed)
    written, failures = {}, []
    for index in range(files):
        path = f"/w{seed}-{index}"
        data = rng.randbytes(rng.randint(1, 200_000))
        try:
            write_one(client, path, data, rng)
            written[path + ".r"] = data.hex()
        except OSError as error:
            failures.append((failed_step(error), error.errno))
    return {"written": written, "failures": failures}


def failed_step(error):
    """The line of write_one that raised error."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.name == "write_one":
            return frame.line
    return "?"


def connect_despite_faults(volfile, log, attempts=20):
    """glfs_init looks up the root, which a faulty translator may fail."""
    for _attempt in range(attempts - 1):
        try:
            return glusterlib.Gfapi(volfile, log)
        except OSError:
            continue
    return glusterlib.Gfapi(volfile, log)


def write_one(client, path, data, rng):
    with client.creat(path) as handle:
        half = len(data) // 2
        handle.write_all(data[:half])
        handle.pwrite(data[half:], half)
        handle.fsync()
    client.setxattr(path, "user.tag", b"v" * rng.randint(1, 100))
    assert client.getxattr(path, "user.tag")
    client.rename(path, path + ".r")
    client.link(path + ".r", path + ".l")
    client.stat(path + ".l")
    client.unlink(path + ".l")
    assert client.read_file(path + ".r") == data
    client.readdirplus("/")


def run_workloads(gluster, brick, workdir, seeds, files):
    """Runs file_workload in one process per seed; returns their results."""
    volfile = gluster.client_volfile(brick)
    processes = [subprocess.Popen(
        [sys.executable, "-c", WORKLOAD.format(tests=str(HERE), volfile=str(volfile),
                                               log=str(workdir / f"w{seed}.log"),
                                               seed=seed, files=files)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for seed in seeds]
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err.decode()[-3000:]
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


# --------------------------------------------------------------------- tests

def test_random_faults_lose_no_data_and_leave_nothing_behind(gluster, workdir, assert_log_clean):
    brick = fault_brick(gluster, chaos_seed=6, chaos_sleep_ms=30)
    observer = gluster.gfapi(brick)
    with_timeout(observer.stat, "/")
    baseline = leak_counters(brick.statedump())
    # About 40 requests make a file: at this rate some files go through
    # unharmed, most meet a fault or two.
    command(observer, "chaos.0.04")

    results = run_workloads(gluster, brick, workdir, seeds=(1, 2, 3), files=30)

    command(observer, "chaos.off")
    written = {path: data for result in results for path, data in result["written"].items()}
    failures = [(step, code) for result in results for step, code in result["failures"]]
    assert written and failures, f"the faults must fail some files and spare others: {results}"
    # What the chaos answers: EIO (raise, drop, a wrong unwind), EAGAIN
    # (FopError), EINVAL (a caught misuse). gfapi ignores a failed lookup of
    # "/" and then finds no directory there: ENOTDIR, from opendir("/") only.
    other = [(step, errno.errorcode.get(code, code)) for step, code in failures
             if code not in CHAOS_ERRNOS and not (code == errno.ENOTDIR and "readdirplus" in step)]
    assert not other, f"errnos the translator never answered: {other}"
    seen = collections.Counter(code for _step, code in failures)
    assert seen[errno.EIO] and seen[errno.EAGAIN], seen
    for path, data in written.items():  # every file the client saw succeed is intact
        assert with_timeout(observer.read_file, path) == bytes.fromhex(data), path
    faults = report(observer)
    assert faults["violations"] == []
    for action in ("fop.raise", "fop.drop", "fop.late_wind", "fop.keep", "fop.misuse_uncaught",
                   "fop.unwind_while_wound", "fop.fop_error", "cbk.twice", "cbk.race_unwind", "cbk.late_unwind", "cbk.keep"):
        assert faults["counts"].get(action), f"chaos never did {action}: {faults['counts']}"
    assert brick.alive()
    assert_every_request_answered_once(brick, [observer, *workdir.glob("w*.log")])

    for path in written:
        with_timeout(observer.unlink, path)
    assert faults["kept"] > 0 and int(command(observer, "release")) > 0, faults
    assert_no_leak(brick, baseline)
    log = brick.log_text()
    # Which fops the chaos picks depends on how the clients' requests
    # interleave (one seeded generator for all): any raise's traceback.
    assert re.search(r"chaos: \w+_fop raises", log) and "Traceback" in log
    assert "returned without winding or unwinding" in log
    assert_log_clean(log, allowed=FAULT_ERRORS)


def test_kept_values_stay_valid_and_hold_their_inodes_until_dropped(gluster, workdir):
    brick = fault_brick(gluster)
    client = gluster.gfapi(brick)
    with_timeout(client.stat, "/")
    baseline = leak_counters(brick.statedump())
    data = os.urandom(300_000)
    for index in range(20):
        with_timeout(client.write_file, f"/k{index}", data)
        command(client, "keep", f"/k{index}")
        with_timeout(client.unlink, f"/k{index}")  # the inode lives on in Python
    kept = report(client)
    assert kept["kept"] >= 20
    held = leak_counters(brick.statedump())
    assert held["inodes.active"] >= baseline["inodes.active"] + 20
    # The checker thread uses them again meanwhile.
    assert glusterlib.wait_until(lambda: report(client)["counts"].get("kept_checked", 0) >= 20, 10)
    checked = json.loads(command(client, "check"))
    assert checked["violations"] == []
    assert checked["counts"]["kept_checked"] >= 20
    # Every use of an answered frame was refused with a RuntimeError.
    for use in ("unwind", "error", "wind", "local"):
        assert checked["counts"][f"refused.{use}_after_answer"] >= 20
    assert int(command(client, "release")) == kept["kept"]
    assert_no_leak(brick, baseline)


def test_a_second_answer_raises_in_python_and_the_client_sees_one(gluster, workdir, assert_log_clean):
    brick = fault_brick(gluster)
    client = gluster.gfapi(brick)
    client.write_file("/f", b"data")
    for _ in range(10):
        assert command(client, "twice", "/f") == b"first"
    answers = [command(client, "race.8", "/f") for _ in range(10)]
    assert all(answer.startswith(b"racer ") for answer in answers)

    def refused(faults):
        return sum(n for what, n in faults["refusals"].items() if "already answered" in what)

    def expected(faults):
        runs = faults["counts"]  # gfapi asks twice per getxattr: count the runs
        return runs["cmd.twice"] + runs["cmd.race"] * 7

    # The last race's losing racers may still be running when its answer
    # arrives: wait for their refusals to be counted.
    glusterlib.wait_until(lambda: refused(report(client)) == expected(report(client)), 10)
    faults = report(client)
    assert faults["violations"] == []
    assert refused(faults) == expected(faults)
    assert_every_request_answered_once(brick, [client])
    assert "each request is answered exactly once" in brick.log_text()
    assert_log_clean(client.log_text(), what="client log")  # no reply to an unknown request


def test_an_answer_after_a_wind_is_refused_and_the_reply_answers(gluster, assert_log_clean):
    # io-threads below: the wind returns before its reply, the frame is wound.
    brick = gluster.brick([("performance/io-threads", {}), glupy("fault_chaos", name="fault")])
    client = gluster.gfapi(brick)
    for _ in range(10):
        assert errno_of(command, client, "error-while-wound") == errno.ENODATA
    faults = report(client)
    assert faults["violations"] == []
    assert faults["counts"].get("refused.wound"), faults["counts"]
    assert_every_request_answered_once(brick, [client])


def test_frames_finished_late_by_threads_are_all_answered(gluster):
    brick = fault_brick(gluster, python_threads=2)
    client = gluster.gfapi(brick)
    delays = [random.Random(n).randint(0, 800) for n in range(40)]
    answers = {}

    def ask(delay):
        answers[delay] = client.getxattr("/", f"user.fault.late.{delay}")

    askers = [threading.Thread(target=ask, args=(delay,)) for delay in delays]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(CALL_TIMEOUT)
    assert {d: answers.get(d) for d in delays} == {d: f"late {d}".encode() for d in delays}
    # Sleeping in a fop holds one of the two Python threads, never the
    # brick: of six requests sent at once, exactly two are in Python at a
    # time (the default, 8 threads, would run all six).
    sleepers = [threading.Thread(target=command, args=(client, "sleep.400")) for _ in range(6)]
    started = time.monotonic()
    for sleeper in sleepers:
        sleeper.start()
    for sleeper in sleepers:
        sleeper.join(CALL_TIMEOUT)
    assert time.monotonic() - started < 10
    counts = report(client)["counts"]
    assert counts["cmd.sleep"] == 12  # gfapi asks twice per getxattr
    assert counts["most_sleeping"] == 2, counts
    # A thread that takes the frame and forgets it: EIO, logged.
    assert errno_of(command, client, "late-drop") == errno.EIO
    assert "returned without winding or unwinding" in brick.log_text()
    assert_every_request_answered_once(brick, [client])


# Each misuse, and the start of what the host says about it (what to fix).
MISUSE_MESSAGES = {
    "wind-missing-arg": "TypeError: getxattr wind takes 3 arguments (loc, name, xdata), got 1",
    "wind-extra-arg": "TypeError: getxattr wind takes 3 arguments (loc, name, xdata), got 4",
    "wind-str-for-loc": 'TypeError: getxattr wind: argument "loc" must be Loc or None, not str',
    "wind-int-for-name": 'TypeError: getxattr wind: argument "name" must be Str or None, not int',
    "wind-nul-in-name": 'ValueError: getxattr wind: "name" contains NUL',
    "wind-dict-bad-value": 'TypeError: getxattr wind: argument "xdata"',
    "wind-dict-bad-key": 'TypeError: getxattr wind: argument "xdata"',
    "wind-no-such-child": 'ValueError: fault has no child "nope" (children: ',
    "wind-fop-when-sync": "RuntimeError: wind_fop is for async def fop methods",
    "unwind-missing-args": "TypeError: getxattr unwind takes 2 arguments (dict, xdata), got 0",
    "unwind-str-op-ret": "TypeError: ",
    "unwind-op-ret-overflow": "OverflowError: ",
    "unwind-wrong-value-type": 'TypeError: getxattr unwind: argument "dict" must be Dict or None, not Iatt',
    "unwind-dict-bytes-key": 'TypeError: getxattr unwind: argument "dict"',
    "error-zero-errno": "ValueError: an error reply needs a positive errno",
    "error-str-errno": "TypeError: ",
    "loc-nul-path": "ValueError: path contains NUL",
    "loc-short-gfid": "ValueError: a gfid is 16 bytes",
    "iatt-short-gfid": "ValueError: a gfid is 16 bytes",
    "iatt-negative-size": "OverflowError: ",
}


def test_wrong_types_and_arity_raise_in_python_with_what_to_fix(gluster, assert_log_clean):
    brick = fault_brick(gluster)
    client = gluster.gfapi(brick)
    for case, message in MISUSE_MESSAGES.items():
        # Caught by the translator, which answers the message.
        answer = command(client, f"misuse.{case}").decode()
        assert answer.startswith(message), (case, answer)
        # Not caught: the request is answered EIO and the log has the traceback.
        assert errno_of(command, client, f"misuse-raise.{case}") == errno.EIO, case
    log = brick.log_text()
    for message in MISUSE_MESSAGES.values():
        assert message in log
    assert log.count("fault_chaos getxattr_fop raised; the request is answered EIO") == len(MISUSE_MESSAGES)
    assert report(client)["violations"] == []
    assert brick.alive()
    assert_every_request_answered_once(brick, [client])
    assert_log_clean(log, allowed=FAULT_ERRORS)


def test_arguments_left_by_a_failed_conversion_are_let_go_and_the_request_answered(gluster):
    """A MemoryError converting a create's arguments for Python, after the
    first (the host's "conversion" fault point): the create is answered EIO
    once, the arguments not converted (the fd it opens, its inode) are
    released, and the next create goes through."""
    brick = fault_brick(gluster, "conversion_fault")
    client = gluster.gfapi(brick)
    with_timeout(client.stat, "/")
    baseline = leak_counters(brick.statedump())
    for index in range(5):
        path = f"/f{index}"
        assert errno_of(command, client, "arm") == errno.ENODATA
        assert errno_of(client.creat, path) == errno.EIO
        data = os.urandom(4096)
        with_timeout(client.write_file, path, data)
        assert with_timeout(client.read_file, path) == data
        with_timeout(client.unlink, path)
    assert brick.log_text().count("converting arguments") == 5
    assert_every_request_answered_once(brick, [client])
    assert_no_leak(brick, baseline)


def test_a_success_reply_missing_its_values_is_refused_not_passed_up(gluster):
    brick = fault_brick(gluster)
    client = gluster.gfapi(brick)
    code = errno_of(client.stat, "/fault-null-lookup")
    assert brick.alive(), "the brick died"
    assert code == errno.EIO
    assert "lookup" in brick.log_text() and "TypeError" in brick.log_text()


@pytest.mark.parametrize("bad_errno", ["0", "-5"])
def test_an_error_reply_without_a_real_errno_is_refused(gluster, bad_errno):
    # GlusterFS clients return -op_errno: passed up, errno 0 would read as
    # end of file and -5 as 5 bytes read. The host refuses it (ValueError).
    brick = fault_brick(gluster)
    client = gluster.gfapi(brick)
    client.write_file("/f", b"data")
    handle = client.open("/f")
    command(client, f"read-errno.{bad_errno}")
    assert errno_of(handle.pread, 4, 0) == errno.EIO
    assert "needs a positive op_errno" in brick.log_text()


# ------------------------------------------------------------------- async

def async_brick(gluster, **options):
    """fault_async above a fault_chaos (which can be slow on request)."""
    below = glupy("fault_chaos", name="slow")
    above = glupy("fault_async", name="fault", **options)
    return gluster.brick([below, above])


ASYNC_CASES = {  # case -> errno or the value answered
    "raise": errno.EIO,
    "raise-after-wind": errno.EIO,
    "fop-error": errno.EROFS,
    "cancel-self": errno.ETIMEDOUT,
    # Its reply is returned while the cancelled wind may still be out: it
    # answers, once that wind is back (src/answer.rs, rule 4).
    "cancel-wind": b"cancelled a wind",
    "twice": b"first",
    "wrong-wind": b"TypeError: getxattr wind takes 3 arguments (loc, name, xdata), got 1",
    "wrong-wind-uncaught": errno.EIO,
    "wrong-return": errno.EIO,
    "reply-for-stat": errno.EIO,
    "blocking-executor": b"from an executor",
    "timeout-with-wind-out": errno.ETIMEDOUT,
    "sleep-past-timeout": errno.ETIMEDOUT,
}


def _as_set(expected):
    return expected if isinstance(expected, set) else {expected}


def test_coroutines_that_fail_are_answered_exactly_once(gluster, assert_log_clean):
    brick = async_brick(gluster, async_timeout=1)
    client = gluster.gfapi(brick)
    outcomes, slow = {}, {}
    for case in ASYNC_CASES:
        started = time.monotonic()
        try:
            outcomes[case] = command(client, case)
        except OSError as error:
            outcomes[case] = error.errno
        if time.monotonic() - started > 5:
            slow[case] = time.monotonic() - started
    unexpected = {case: outcome for case, outcome in outcomes.items()
                  if outcome not in _as_set(ASYNC_CASES[case])}
    assert not unexpected, f"unexpected outcomes: {unexpected}"
    assert not slow
    faults = report(client)
    assert faults["violations"] == []
    assert faults["counts"]["refused.twice"] == faults["counts"]["case.twice"]
    log = brick.log_text()
    for text in ("KeyError: 'a bug in a coroutine'", "ValueError: a bug after the wind returned",
                 "getxattr_fop was cancelled; answered ETIMEDOUT",
                 "getxattr_fop did not finish within async-timeout",
                 "getxattr_fop returned str; return a glupy.Reply or None",
                 "getxattr_fop returned a stat reply",
                 'argument "name" must be Str or None, not int'):
        assert text in log, text
    assert brick.alive()
    # The wind still out at the deadline came back later: answered once.
    assert_every_request_answered_once(brick, [client])
    assert_log_clean(log, allowed=FAULT_ERRORS)


def test_random_faults_in_coroutines_answer_every_request(gluster, workdir):
    brick = async_brick(gluster, chaos_rate=0.5, chaos_seed=3)
    client = gluster.gfapi(brick)
    outcomes, created, unexpected = {}, set(), []
    for index in range(150):
        path = f"/a{index % 10}"
        step = "create"
        try:
            if index < 10:
                with_timeout(client.write_file, path, b"x")
                created.add(path)
            step = "stat"
            with_timeout(client.stat, path)
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        except OSError as error:
            outcomes[error.errno] = outcomes.get(error.errno, 0) + 1
            # The chaos answers EIO (raise, no answer, wrong arguments) and
            # ETIMEDOUT (cancel, sleep past the deadline); a file whose
            # create failed may also be missing. Nothing else.
            allowed = {errno.EIO, errno.ETIMEDOUT}
            if step == "stat" and path not in created:
                allowed.add(errno.ENOENT)
            if error.errno not in allowed:
                unexpected.append((step, path, errno.errorcode.get(error.errno, error.errno)))
    assert outcomes.get("ok") and outcomes.get(errno.EIO) and outcomes.get(errno.ETIMEDOUT), outcomes
    assert not unexpected, f"errnos the coroutines never answered: {unexpected}"
    faults = report(client)
    assert faults["violations"] == []
    assert set(faults["counts"]) >= {f"chaos.{a}" for a in ("raise", "cancel", "noanswer", "twice",
                                                           "wrong_args", "sleep")}
    assert brick.alive()
    assert_every_request_answered_once(brick, [client])


# ------------------------------------------------------- bad configuration
def test_work_waiting_for_a_busy_python_thread_is_settled_when_the_graph_ends(gluster, workdir):
    # The process has one Python thread, and a statfs keeps it busy. Two
    # coroutines then act from the event loop, so what they do waits for
    # that thread: one winds, one answers (ENODATA). glfs_fini waits 10 s
    # for requests, then ends the graph (PARENT_DOWN), destroys its inode
    # tables and frees its xlators. At PARENT_DOWN the answer must go up
    # and the wind be withdrawn (its request answered EIO); neither may be
    # done once the thread is free (into the freed graph: a segfault, or
    # AddressSanitizer's report).
    brick = gluster.brick()
    fifo, busy, marker = workdir / "busy.fifo", workdir / "busy", workdir / "loop"
    os.mkfifo(fifo)
    # status-interval 0: no registration calls of glupy's own, whose
    # coroutine answers would wait for the busy thread too.
    volfile = gluster.client_volfile(brick, [
        glupy("loop_wind", name="loopwind", marker=marker, python_thread="caller",
              python_threads=1, status_interval=0),
        glupy("pool_blocker", name="blocker", fifo=fifo, marker=busy, python_thread="pool",
              python_threads=1, status_interval=0)])
    program = workdir / "gfapi_busy_down"
    subprocess.run(["gcc", "-O1", "-g", "-Wall", "-Werror", "-o", str(program),
                    str(HERE / "gfapi_busy_down.c"), "-lgfapi", "-lpthread"], check=True)
    log = workdir / "busy_down.log"
    process = subprocess.Popen([str(program), str(volfile), str(log)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(l.strip() for l in process.stdout),
                              daemon=True)
    reader.start()

    def send(line):
        process.stdin.write(line + "\n")
        process.stdin.flush()

    try:
        assert glusterlib.wait_until(lambda: "ready" in lines, 60), lines
        send("statfs")
        assert glusterlib.wait_until(busy.exists, 30), "the statfs did not reach Python"
        for what in ("wind", "answer"):
            send(f"getxattr user.loop.{what}")
            assert glusterlib.wait_until(Path(f"{marker}.{what}").exists, 30), what
        time.sleep(1)  # the wind and the answer are in the pool's queue
        assert lines == ["ready"], lines
        send("fini")
        assert glusterlib.wait_until(lambda: any(l.startswith("fini") for l in lines), 60), lines
        ended = list(lines)
    finally:
        # The statfs goes on: the thread is free, and comes to the queue.
        writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        os.write(writer, b"x")
        os.close(writer)
        glusterlib.wait_until(Path(f"{busy}.done").exists, 30)
        time.sleep(1)
        try:
            send("exit")
            process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    reader.join(10)
    # All three were still in flight after glfs_fini's wait (-1), and were
    # answered at PARENT_DOWN, before it returned: the statfs and the
    # withdrawn wind's getxattr EIO, the other getxattr with its answer.
    assert ended[-1] == "fini -1", ended
    assert sorted(ended[1:-1]) == ["getxattr user.loop.answer -1 61",
                                   "getxattr user.loop.wind -1 5", "statfs -1 5"], ended
    assert process.returncode == 0, (process.returncode, lines)
    text = log.read_text()
    assert ("1 answer(s) and 1 wind(s) still waited for a Python thread" in text), text[-3000:]


# (missing module, import errors, a missing or world-writable module-path and
# python-threads=lots are in test_host.py; unsafe module locations in
# test_module_safety.py)

@pytest.mark.parametrize("threads", ["0", "257", "-3"])
def test_python_threads_out_of_range_fails_init(workdir, threads):
    brick = glusterlib.Brick(workdir / "b", [glupy("empty", python_threads=threads)], name="b")
    log = brick.start_expect_failure()
    assert f'option python-threads is "{threads}": give a number of threads from 1 to 256' in log


def test_module_path_that_is_a_file_fails_init(workdir):
    not_a_dir = workdir / "mods.py"
    not_a_dir.write_text("")
    brick = glusterlib.Brick(workdir / "b", [glupy("empty", path=not_a_dir)], name="b")
    assert f"option module-path '{not_a_dir}' is not a directory" in brick.start_expect_failure()


def test_module_in_a_missing_package_fails_init(workdir):
    brick = glusterlib.Brick(workdir / "b", [glupy("nosuchpackage.mod")], name="b")
    log = brick.start_expect_failure()
    assert "cannot start glupy translator b-glupy" in log
    assert "nosuchpackage" in log


def test_async_timeout_that_is_not_a_number_is_reported_and_ignored(gluster):
    brick = async_brick(gluster, async_timeout="abc")
    client = gluster.gfapi(brick)
    assert command(client, "blocking-executor") == b"from an executor"
    assert "option async-timeout must be a number of seconds" in brick.log_text()
