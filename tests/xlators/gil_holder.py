"""getxattr user.gil.hold: answers "held", then a thread of its own takes
the GIL and keeps it (a ctypes PyDLL call holds it across a blocking read)
until a byte arrives on the FIFO of option `fifo`; it creates the file of
option `marker` just before. Other getxattrs pass through. Run it with
python-thread pool: the answer must not wait for the GIL."""
import ctypes
import os
import threading

import glupy

LIBC = ctypes.PyDLL(None)  # PyDLL: the GIL stays held across its calls
LIBC.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
LIBC.read.restype = ctypes.c_ssize_t


class xlator(glupy.Translator):
    def hold_gil(self, answered):
        answered.wait(60)
        # O_RDWR: a FIFO with a writer (ourselves), so read blocks for data.
        fd = os.open(self.options["fifo"], os.O_RDWR)
        buf = ctypes.create_string_buffer(1)
        open(self.options["marker"], "w").close()
        LIBC.read(fd, buf, 1)
        os.close(fd)

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name != "user.gil.hold":
            frame.wind(loc, name, xdata)
            return
        answered = threading.Event()
        threading.Thread(target=self.hold_gil, args=(answered,), name="gil-holder").start()
        value = b"held"
        frame.unwind(len(value), 0, {name: value}, None)
        answered.set()
