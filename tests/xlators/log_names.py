"""Log lines that carry a name that is not UTF-8 (Python gets its bytes as
lone surrogates): a lookup of /log-... logs the name through self.log,
another logger and print(); /log-raise... also raises it in an exception
(sync), and getxattr ``user.log`` on such a file raises it off the first
step of a coroutine (async)."""

import asyncio
import logging

import glupy


class xlator(glupy.Translator):
    def lookup_fop(self, frame, this, loc, xdata):
        name = loc.name or ""
        if name.startswith("log-"):
            self.log.error("self.log says %s", name)
            logging.getLogger("log_names").error("a logger says %s", name)
            print("print says", name)
            if name.startswith("log-raise"):
                raise ValueError(f"sync raised {name}")
        frame.wind(loc, xdata)

    async def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.log":
            await asyncio.sleep(0)
            raise ValueError(f"async raised {loc.path}")
        return await frame.wind(loc, name, xdata)
