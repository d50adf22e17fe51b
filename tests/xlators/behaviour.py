"""Exercises what a translator may do with a request, keyed by file name
(lookups) or xattr name (getxattr)."""
import errno
import threading
import time
import weakref

import glupy


def deep(n):
    # Recursion through a C builtin uses the C stack at every level.
    return sorted([n + 1], key=deep)


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.reconfigured = 0
        self.sleeping = 0  # requests inside the slow branch right now
        self.lock = threading.Lock()
        self.in_flight = weakref.WeakValueDictionary()  # frames, by unique: kept weakly

    def reconfigure(self, options):
        self.reconfigured += 1

    def fini(self):
        self.log.info("fini of behaviour in %s", self.name)

    def lookup_fop(self, frame, this, loc, xdata):
        name = loc.name or ""
        if name.startswith("missing-"):
            frame.error(errno.ENOENT)  # short-circuit: never reaches the brick
        elif name == "eacces":
            raise glupy.FopError(errno.EACCES)
        elif name == "eperm-oserror":
            raise PermissionError(errno.EPERM, "not here")
        elif name == "boom":
            raise RuntimeError("boom in lookup_fop")
        elif name == "dropped":
            return  # neither wound nor unwound: the host answers EIO
        elif name == "answer-then-raise":
            frame.error(errno.ENOENT)
            raise RuntimeError("raised after answering in lookup_fop")
        elif name.startswith("late-"):
            threading.Timer(0.3, frame.wind, (loc, xdata)).start()
        else:
            frame.local = name
            frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        if frame.local == "cbkboom":
            raise ValueError("boom in lookup_cbk")
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)
        if frame.local == "cbk-answer-then-raise":
            raise ValueError("raised after answering in lookup_cbk")

    def _answer(self, frame, name, value):
        # op_ret 0, as posix answers one named xattr: gfapi returns a positive
        # op_ret as the size without copying the value.
        frame.unwind(0, 0, glupy.Dict({name: value}), None)

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.glupy.option":
            self._answer(frame, name, self.options.get("greeting", "").encode())
        elif name == "user.glupy.reconfigured":
            self._answer(frame, name, str(self.reconfigured).encode())
        elif name == "user.glupy.instance":
            self._answer(frame, name, this.name.encode())
        elif name == "user.glupy.thread." + this.name:
            # The kernel's name of the thread running Python right now.
            with open(f"/proc/self/task/{threading.get_native_id()}/comm", "rb") as comm:
                self._answer(frame, name, comm.read().strip())
        elif name in ("user.glupy.deep", "user.glupy.deep." + this.name):
            self._answer(frame, name, str(deep(0)).encode())
        elif name == "user.glupy.sleep":
            with self.lock:
                self.sleeping += 1
            time.sleep(2)  # a slow, blocking translator
            with self.lock:
                self.sleeping -= 1
            self._answer(frame, name, b"awake")
        elif name == "user.glupy.nap":
            time.sleep(0.2)
            self._answer(frame, name, b"rested")
        elif name == "user.glupy.sleeping":
            with self.lock:
                self._answer(frame, name, str(self.sleeping).encode())
        elif name == "user.glupy.late":
            threading.Timer(0.3, self._answer, (frame, name, b"answered from a thread")).start()
        elif name == "user.glupy.local":
            frame.local = ("token", loc.path)
            frame.wind(loc, name, xdata)
        elif name == "user.glupy.weak":
            # A weak reference neither keeps the frame nor answers for it.
            self.in_flight[frame.unique] = frame
            frame.local = f"weak {weakref.ref(frame)() is frame}"
            frame.wind(loc, name, xdata)
        elif name == "user.glupy.change_after_answer":
            answered = glupy.Dict({name: b"as answered"})
            frame.unwind(0, 0, answered, None)
            try:
                answered[name] = b"changed after"  # the answer is still to go up
            except RuntimeError as e:
                self.refused_change = str(e)
            try:
                del answered[name]
            except RuntimeError as e:
                self.refused_change += " / " + str(e)
            copy = answered.copy()
            copy[name] = b"a copy may change"
        elif name == "user.glupy.in_flight":
            self._answer(frame, name, str(len(self.in_flight)).encode())
        elif name == "user.glupy.refused_change":
            self._answer(frame, name, getattr(self, "refused_change", "").encode())
        else:
            frame.wind(loc, name, xdata)

    def getxattr_cbk(self, frame, cookie, this, op_ret, op_errno, dict, xdata):
        if isinstance(frame.local, str) and frame.local.startswith("weak "):
            frame.unwind(0, 0, glupy.Dict({"user.glupy.weak": frame.local.encode()}), xdata)
            return
        if frame.local is not None:
            value = repr(frame.local).encode()
            frame.unwind(len(value), 0, glupy.Dict({"user.glupy.local": value}), xdata)
            return
        frame.unwind(op_ret, op_errno, dict, xdata)
