"""Faults for real (a read of address 0) on the thread named by the looked-up
name, so a test can see what GlusterFS reports when a translator crashes."""
import asyncio
import ctypes
import threading

import glupy


def fault():
    ctypes.string_at(0)  # SIGSEGV


class xlator(glupy.Translator):
    def lookup_fop(self, frame, this, loc, xdata):
        name = loc.name or ""
        if name == "segv-here":
            fault()
        elif name == "segv-coroutine":
            return self._fault_soon()
        elif name == "segv-thread":
            threading.Thread(target=fault).start()
        frame.wind(loc, xdata)

    async def _fault_soon(self):
        await asyncio.sleep(0)
        fault()
