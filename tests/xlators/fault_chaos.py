"""A translator that misbehaves on purpose, to show the host survives it.

Two ways to drive it:

* Chaos (options ``chaos-rate`` 0..1 and ``chaos-seed``): every fop and
  callback of CHAOS_FOPS misbehaves at random (seeded): it raises, sleeps,
  drops the frame, answers twice, keeps the frame and its values for a
  checker thread, finishes late from a thread of its own, or calls
  wind/unwind with wrong arguments. Whatever it does, the request must be
  answered exactly once and the brick must live. The command
  ``user.fault.chaos.<rate>`` (or ``.off``) changes the rate at run time.

* Commands: ``getxattr(path, "user.fault.<command>[.<argument>]")`` runs the
  ``cmd_<command>`` method: one misuse, and an answer that says what happened.

Every misuse the host refuses is logged with the host's message (what to
fix), and counted; ``user.fault.report`` answers the counters as JSON. Note
that gfapi's getxattr asks twice (for the size, then the value): a command
runs twice.
"""

import collections
import errno
import gc
import hashlib
import json
import random
import threading
import time

import glupy

# Fops a plain file workload sends, handled by chaos.
CHAOS_FOPS = (
    "lookup stat fstat create open readv writev flush fsync truncate ftruncate "
    "setxattr getxattr removexattr fsetxattr fgetxattr unlink rename link "
    "mkdir rmdir opendir readdir readdirp access statfs setattr fsetattr"
).split()

FOP_ACTIONS = ("raise", "fop_error", "drop", "sleep", "late_wind", "keep",
               "misuse_caught", "misuse_uncaught", "unwind_while_wound")
CBK_ACTIONS = ("raise", "drop", "twice", "late_unwind", "keep", "misuse_caught",
               "race_unwind")
KEPT_LIMIT = 2000


class Misbehaviour(RuntimeError):
    """What the translator raises on purpose."""


def _digest(data):
    return hashlib.sha256(data).hexdigest()


def snapshot(value):
    """What a value shows now, as plain data (to compare with later).

    An inode that is not linked yet gets its gfid and type when the lookup
    or create that brought it succeeds: until then it shows UNLINKED, which
    matches anything later (see same())."""
    if isinstance(value, glupy.Loc):
        return ("loc", value.path, value.name, snapshot(value.inode), snapshot(value.parent))
    if isinstance(value, glupy.Inode):
        return UNLINKED if value.gfid == bytes(16) else ("inode", value.gfid, value.type)
    if isinstance(value, glupy.Fd):
        return ("fd", value.flags, snapshot(value.inode))
    if isinstance(value, glupy.Iatt):
        return ("iatt", value.st_mode, value.st_size, value.st_ino, value.gfid,
                value.st_mtime_ns, value.type)
    if isinstance(value, glupy.Vector):
        return ("vector", len(value), _digest(bytes(value)), _digest(memoryview(value).tobytes()))
    if isinstance(value, glupy.Dict):
        # A dict is shared with the other translators: it may change, but
        # must stay readable.
        return ("dict", all(isinstance(value[key], bytes) for key in value.keys()))
    if isinstance(value, list):
        return ("list",) + tuple(snapshot(item) for item in value)
    if isinstance(value, glupy.Dirent):
        return ("dirent", value.name, snapshot(value.stat), snapshot(value.inode))
    if value is None or isinstance(value, (int, str, bytes)):
        return value
    return (type(value).__name__, repr(value))


UNLINKED = "unlinked inode"


def same(before, after):
    """after is what before became (an unlinked inode may have been linked)."""
    if before == UNLINKED:
        return True
    if isinstance(before, tuple) and isinstance(after, tuple) and len(before) == len(after):
        return all(same(b, a) for b, a in zip(before, after))
    return before == after


class Kept:
    """A frame and its values, kept after the call to be used later, with
    the arguments of a wind and an unwind that were valid during the call."""

    def __init__(self, frame, where, values, wind_args=None, unwind_args=None):
        self.frame, self.where, self.values = frame, where, values
        self.wind_args = wind_args
        self.unwind_args = unwind_args or (-1, errno.EIO)
        self.seen = [snapshot(v) for v in values]


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.rate = float(self.options.get("chaos-rate", "0"))
        self.random = random.Random(int(self.options.get("chaos-seed", "1")))
        self.max_sleep = float(self.options.get("chaos-sleep-ms", "200")) / 1000
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.refusals = collections.Counter()  # host messages, by first words
        self.violations = []  # anything that should never happen
        self.kept = collections.deque()
        self.read_errno = None  # answer every read with this errno
        self.checker = threading.Thread(target=self._check_kept_forever, daemon=True,
                                        name="fault-checker")
        self.checker.start()

    # ---------------------------------------------------------- bookkeeping

    def count(self, what):
        with self.lock:
            self.counts[what] += 1

    def refused(self, where, error, expected=RuntimeError):
        """The host refused a misuse: log what it said, as the log must show."""
        if not isinstance(error, expected):
            self.violation(f"{where}: expected {expected.__name__}, got {error!r}")
        self.log.warning("fault %s: the host refused: %s: %s", where, type(error).__name__, error)
        with self.lock:
            self.refusals[f"{type(error).__name__}: {' '.join(str(error).split()[:6])}"] += 1

    def violation(self, text):
        self.log.error("fault VIOLATION %s", text)
        with self.lock:
            self.violations.append(text)

    def pick(self, actions):
        """An action for this call, or None (most calls behave)."""
        with self.lock:
            if self.rate <= 0 or self.random.random() >= self.rate:
                return None
            return self.random.choice(actions)

    def sleep_time(self):
        with self.lock:
            return self.random.uniform(0, self.max_sleep)

    def report(self):
        with self.lock:
            return {"counts": dict(self.counts), "refusals": dict(self.refusals),
                    "violations": list(self.violations), "kept": len(self.kept)}

    def dump(self):
        report = self.report()
        return {"violations": len(report["violations"]), "kept": report["kept"],
                **{f"count.{k}": v for k, v in report["counts"].items()}}

    # --------------------------------------------------------- kept values

    def keep(self, kept):
        with self.lock:
            if len(self.kept) < KEPT_LIMIT:
                self.kept.append(kept)

    def _check_kept_forever(self):
        while True:
            time.sleep(0.05)
            self.check_kept()

    def check_kept(self):
        """Uses every kept value again, from this thread: each must show what
        it showed during the call, and each answered frame must refuse use."""
        with self.lock:
            batch = [k for k in self.kept if k.frame.answered]
        for kept in batch:
            now = [snapshot(v) for v in kept.values]
            if not same(tuple(kept.seen), tuple(now)):
                self.violation(f"{kept.where}: kept values changed: {kept.seen!r} -> {now!r}")
            self._use_answered_frame(kept)
        with self.lock:
            self.counts["kept_checked"] += len(batch)

    def _use_answered_frame(self, kept):
        frame = kept.frame
        uses = [("unwind", lambda: frame.unwind(*kept.unwind_args)),
                ("error", lambda: frame.error(errno.EIO)),
                ("local", lambda: setattr(frame, "local", "late"))]
        if kept.wind_args is not None:
            uses.append(("wind", lambda: frame.wind(*kept.wind_args)))
        for name, use in uses:
            try:
                use()
            except RuntimeError:
                self.count(f"refused.{name}_after_answer")
                continue
            except Exception as error:  # noqa: BLE001 - any other answer is wrong
                self.violation(f"{kept.where}: {name} on an answered frame raised {error!r}")
                continue
            self.violation(f"{kept.where}: {name} on an answered frame did not raise")
        if frame.state != "answered" or not frame.answered:
            self.violation(f"{kept.where}: answered frame shows {frame.state}")

    def release_kept(self):
        """Drops every kept value (their references go back to GlusterFS);
        returns how many were released so far (a client may ask twice)."""
        self.check_kept()
        with self.lock:
            self.counts["released"] += len(self.kept)
            self.kept.clear()
            released = self.counts["released"]
        # Tracebacks of the exceptions raised on purpose form cycles that hold
        # values too: collect them, so what is left is what leaked.
        self.counts["garbage"] = gc.collect()
        return released

    # --------------------------------------------------------- chaos: fops

    def misbehave_on_wind(self, fop, frame, args):
        if fop == "readv" and self.read_errno is not None:
            # An error reply without a real errno: the host must not pass it
            # up (clients return -op_errno: 0 reads as success).
            frame.unwind(-1, self.read_errno, None, None, None, None, None)
            return
        action = self.pick(FOP_ACTIONS)
        if action is None:
            frame.wind(*args)
            return
        self.count(f"fop.{action}")
        getattr(self, "fop_" + action)(fop, frame, args)

    def fop_raise(self, fop, frame, args):
        raise Misbehaviour(f"chaos: {fop}_fop raises")

    def fop_fop_error(self, fop, frame, args):
        raise glupy.FopError(errno.EAGAIN)

    def fop_drop(self, fop, frame, args):
        return  # neither wound nor answered: the host answers EIO

    def fop_sleep(self, fop, frame, args):
        time.sleep(self.sleep_time())
        frame.wind(*args)

    def fop_late_wind(self, fop, frame, args):
        threading.Timer(self.sleep_time(), frame.wind, args).start()

    def fop_keep(self, fop, frame, args):
        self.keep(Kept(frame, f"{fop}_fop", list(args), wind_args=args))
        frame.wind(*args)

    def fop_misuse_caught(self, fop, frame, args):
        try:
            frame.wind(*args[:-1])  # one argument short
        except TypeError as error:
            self.refused(f"{fop}_fop wind with {len(args) - 1} arguments", error, TypeError)
            frame.error(errno.EINVAL)
            return
        self.violation(f"{fop}: a wind with a missing argument was accepted")

    def fop_misuse_uncaught(self, fop, frame, args):
        frame.unwind(0, 0, *(["not a value"] * 9))  # TypeError reaches the host: EIO

    def fop_unwind_while_wound(self, fop, frame, args):
        frame.wind(*args)
        try:
            frame.error(errno.EIO)
        except RuntimeError as error:
            # Refused whether the reply is still out (the frame is wound) or
            # already answered by the callback: an answer after a wind is
            # never this method's to give.
            self.refused(f"{fop}_fop unwind after wind", error)
            return
        self.violation(f"{fop}: an unwind of a wound frame was accepted "
                       f"(the frame now reads {frame.state})")

    # ---------------------------------------------------- chaos: callbacks

    def misbehave_on_reply(self, fop, frame, reply):
        action = self.pick(CBK_ACTIONS)
        if action is None:
            frame.unwind(*reply)
            return
        self.count(f"cbk.{action}")
        getattr(self, "cbk_" + action)(fop, frame, reply)

    def cbk_raise(self, fop, frame, reply):
        raise Misbehaviour(f"chaos: {fop}_cbk raises")

    def cbk_drop(self, fop, frame, reply):
        return

    def cbk_twice(self, fop, frame, reply):
        frame.unwind(*reply)
        try:
            frame.unwind(*reply)
        except RuntimeError as error:
            self.refused(f"{fop}_cbk second unwind", error)
            return
        self.violation(f"{fop}: a second unwind was accepted")

    def cbk_late_unwind(self, fop, frame, reply):
        threading.Timer(self.sleep_time(), frame.unwind, reply).start()

    def cbk_keep(self, fop, frame, reply):
        self.keep(Kept(frame, f"{fop}_cbk", list(reply[2:]), unwind_args=reply))
        frame.unwind(*reply)

    def cbk_misuse_caught(self, fop, frame, reply):
        try:
            frame.unwind(*reply, "one too many")
        except TypeError as error:
            self.refused(f"{fop}_cbk unwind with an extra argument", error, TypeError)
            frame.unwind(*reply)
            return
        self.violation(f"{fop}: an unwind with an extra argument was accepted")

    def cbk_race_unwind(self, fop, frame, reply):
        """Two threads answer at once: exactly one may win."""
        start = threading.Barrier(2)
        outcomes = []

        def answer():
            start.wait()
            try:
                frame.unwind(*reply)
                outcomes.append("won")
            except RuntimeError as error:
                outcomes.append("refused")
                self.refused(f"{fop}_cbk racing unwind", error)

        racers = [threading.Thread(target=answer) for _ in range(2)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        if sorted(outcomes) != ["refused", "won"]:
            self.violation(f"{fop}: two racing unwinds ended {outcomes}")

    # ----------------------------------------- replies that lie (lookup)

    def lookup_fop(self, frame, this, loc, xdata):
        """``fault-null-*`` names: a success reply without its inode and
        iatt, values GlusterFS reads on success. The host must refuse it
        (a TypeError here, then EIO), never pass NULLs up to the server."""
        if (loc.name or "").startswith("fault-null-"):
            self.count("null_success_reply")
            frame.unwind(0, 0, None, None, None, None)
            return
        self.misbehave_on_wind("lookup", frame, (loc, xdata))

    # ------------------------------------------------- commands (getxattr)

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name and name.startswith("user.fault."):
            command = name[len("user.fault."):]
            handler, _, argument = command.partition(".")
            method = getattr(self, "cmd_" + handler.replace("-", "_"), None)
            if method is None:
                raise glupy.FopError(errno.EOPNOTSUPP)
            self.count(f"cmd.{handler}")
            frame.local = name  # answer() answers under the name asked for
            method(frame, loc, argument)
            return
        self.misbehave_on_wind("getxattr", frame, (loc, name, xdata))

    @staticmethod
    def answer(frame, text, name=None):
        """Answers a command's getxattr with text as the value of its name
        (frame.local until the frame is answered)."""
        value = text.encode() if isinstance(text, str) else text
        frame.unwind(len(value), 0, glupy.Dict({name or frame.local: value}), None)

    def cmd_chaos(self, frame, loc, argument):
        with self.lock:
            if argument == "off":
                self.rate = 0.0
            elif argument:
                self.rate = float(argument)
        self.answer(frame, f"rate={self.rate}")

    def cmd_read_errno(self, frame, loc, argument):
        """read-errno.<n>: every read is answered op_ret -1 with errno n
        (read-errno.off: reads work again)."""
        self.read_errno = None if argument == "off" else int(argument)
        self.answer(frame, argument)

    def cmd_report(self, frame, loc, argument):
        self.answer(frame, json.dumps(self.report()))

    def cmd_check(self, frame, loc, argument):
        self.check_kept()
        self.answer(frame, json.dumps(self.report()))

    def cmd_release(self, frame, loc, argument):
        self.answer(frame, str(self.release_kept()))

    def cmd_twice(self, frame, loc, argument):
        name = frame.local
        self.answer(frame, "first")
        try:
            self.answer(frame, "second", name)
        except RuntimeError as error:
            self.refused("twice: second unwind", error)
            return
        self.violation("twice: the second unwind was accepted")

    def cmd_race(self, frame, loc, argument):
        """Threads answer the one frame at the same moment."""
        racers = int(argument or "4")
        start = threading.Barrier(racers)
        won, name = [], frame.local

        def answer(n):
            start.wait()
            try:
                self.answer(frame, f"racer {n}", name)
                won.append(n)
            except RuntimeError as error:
                self.refused("race: losing unwind", error)

        threads = [threading.Thread(target=answer, args=(n,)) for n in range(racers)]
        for thread in threads:
            thread.start()
        # Joined from another thread: the winner already answered.
        threading.Thread(target=self._expect_one_winner, args=(threads, won)).start()

    def _expect_one_winner(self, threads, won):
        for thread in threads:
            thread.join()
        if len(won) != 1:
            self.violation(f"race: {len(won)} unwinds won")

    def cmd_error_while_wound(self, frame, loc, argument):
        """Winds (a name nobody has: ENODATA comes back), then answers an
        error: refused, whether the reply is still out or already answered
        by the callback. The client must see the callback's ENODATA."""
        frame.wind(loc, "user.fault-absent", None)
        try:
            frame.error(errno.EIO)
        except RuntimeError as error:
            self.refused("error-while-wound", error)
            self.count("refused.wound" if "is wound" in str(error) else "refused.answered")
            return
        self.violation(f"an error answer of a {frame.state} frame was accepted after a wind")

    def cmd_late(self, frame, loc, argument):
        delay = int(argument or "100") / 1000
        threading.Timer(delay, self.answer, (frame, f"late {argument}")).start()

    def cmd_late_drop(self, frame, loc, argument):
        """A thread takes the frame and forgets it: the host answers EIO."""
        holder = [frame]
        threading.Timer(0.2, holder.clear).start()

    def cmd_sleep(self, frame, loc, argument):
        """Blocks a Python thread; counts how many sleep at once."""
        with self.lock:
            self.counts["sleeping"] += 1
            self.counts["most_sleeping"] = max(self.counts["most_sleeping"], self.counts["sleeping"])
        try:
            time.sleep(int(argument or "100") / 1000)
        finally:
            with self.lock:
                self.counts["sleeping"] -= 1
        self.answer(frame, f"slept {argument}")

    def cmd_keep(self, frame, loc, argument):
        name = frame.local
        self.keep(Kept(frame, "getxattr keep", [loc, loc.inode, loc.parent],
                       wind_args=(loc, name, None)))
        self.answer(frame, "kept")

    def cmd_misuse(self, frame, loc, argument):
        """Runs MISUSES[argument], catches what it raises and answers it as
        text (what a careful translator does: log, then answer)."""
        expected, misuse = MISUSES[argument]
        try:
            misuse(frame, loc)
        except Exception as error:  # noqa: BLE001 - checked by refused()
            self.refused(f"misuse {argument}", error, expected)
            self.answer(frame, f"{type(error).__name__}: {error}")
            return
        self.violation(f"misuse {argument} was accepted")

    def cmd_misuse_raise(self, frame, loc, argument):
        """Runs MISUSES[argument] and lets the exception reach the host (EIO)."""
        MISUSES[argument][1](frame, loc)


# Calls a translator must not make: each must raise in Python (the type
# given), never crash or answer twice.
MISUSES = {
    "wind-missing-arg": (TypeError, lambda frame, loc: frame.wind(loc)),
    "wind-extra-arg": (TypeError, lambda frame, loc: frame.wind(loc, "user.a", None, None)),
    "wind-str-for-loc": (TypeError, lambda frame, loc: frame.wind("/not/a/loc", "user.a", None)),
    "wind-int-for-name": (TypeError, lambda frame, loc: frame.wind(loc, 12, None)),
    "wind-nul-in-name": (ValueError, lambda frame, loc: frame.wind(loc, "user.a\0b", None)),
    "wind-dict-bad-value": (TypeError, lambda frame, loc: frame.wind(loc, "user.a", {"k": 3.5})),
    "wind-dict-bad-key": (TypeError, lambda frame, loc: frame.wind(loc, "user.a", {7: b"v"})),
    "wind-no-such-child": (ValueError, lambda frame, loc: frame.wind(loc, "user.a", None, child="nope")),
    "wind-fop-when-sync": (RuntimeError, lambda frame, loc: frame.wind_fop("stat", loc, None)),
    "unwind-missing-args": (TypeError, lambda frame, loc: frame.unwind(0, 0)),
    "unwind-str-op-ret": (TypeError, lambda frame, loc: frame.unwind("zero", 0, None, None)),
    "unwind-op-ret-overflow": (OverflowError, lambda frame, loc: frame.unwind(2**40, 0, None, None)),
    "unwind-wrong-value-type": (TypeError, lambda frame, loc: frame.unwind(1, 0, glupy.Iatt(), None)),
    "unwind-dict-bytes-key": (TypeError, lambda frame, loc: frame.unwind(1, 0, {b"k": b"v"}, None)),
    "error-zero-errno": (ValueError, lambda frame, loc: frame.error(0)),
    "error-str-errno": (TypeError, lambda frame, loc: frame.error("ENOENT")),
    "loc-nul-path": (ValueError, lambda frame, loc: glupy.Loc("/a\0b")),
    "loc-short-gfid": (ValueError, lambda frame, loc: glupy.Loc("/a", gfid=b"123")),
    "iatt-short-gfid": (ValueError, lambda frame, loc: setattr(glupy.Iatt(), "gfid", b"short")),
    "iatt-negative-size": (OverflowError, lambda frame, loc: setattr(glupy.Iatt(), "st_size", -1)),
}


def _chaos_fop(fop):
    def method(self, frame, this, *args):
        self.misbehave_on_wind(fop, frame, args)
    method.__name__ = fop + "_fop"
    return method


def _chaos_cbk(fop):
    def method(self, frame, cookie, this, op_ret, op_errno, *args):
        self.misbehave_on_reply(fop, frame, (op_ret, op_errno, *args))
    method.__name__ = fop + "_cbk"
    return method


for _fop in CHAOS_FOPS:
    if _fop not in ("getxattr", "lookup"):  # defined above: they also run commands
        setattr(xlator, _fop + "_fop", _chaos_fop(_fop))
    setattr(xlator, _fop + "_cbk", _chaos_cbk(_fop))
