"""Logs and raises on every kind of thread the host runs Python on, each
line carrying the instance's option `tag`, so a test can tell which
GlusterFS log (which glfs instance) each line reached."""
import threading

import glupy


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.tag = self.options.get("tag", "untagged")
        self.log.info("own line at init from %s", self.tag)

    def notify(self, event, info):
        if event == "child_up":
            self.log.info("own line at notify from %s", self.tag)

    def lookup_fop(self, frame, this, loc, xdata):
        name = loc.name or ""
        if name == "boom":
            self.log.info("own line in lookup from %s", self.tag)
            raise RuntimeError(f"boom from {self.tag}")
        if name == "async-boom":
            return self._async_boom()
        if name == "thread-log":
            worker = threading.Thread(target=self.log.info, args=("own line on a Python thread from %s", self.tag))
            worker.start()
            worker.join()
        frame.wind(loc, xdata)

    async def _async_boom(self):
        self.log.info("own line in a coroutine from %s", self.tag)
        raise RuntimeError(f"async boom from {self.tag}")
