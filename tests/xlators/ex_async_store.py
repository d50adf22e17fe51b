"""An AsyncLocalDirectoryStore that counts its downloads and can be held, so a
test can see how many times concurrent readers made the brick download, and
what a store that hangs does.

- every get appends its key to ROOT/gets.log when it starts;
- while the file ROOT/hold exists, gets wait (a hanging store; the wait is
  an asyncio sleep, so a deadline cancels it);
- option store-delay: seconds every get takes (default 0).
"""
import asyncio
import os

from glupy.archive import AsyncLocalDirectoryStore

GETS_FILE = "gets.log"
HOLD_FILE = "hold"
POLL_SECONDS = 0.05


class CountingStore(AsyncLocalDirectoryStore):
    async def get(self, key, target):
        # The loop is the only writer: appends need no lock.
        with open(os.path.join(self.root, GETS_FILE), "a") as log:
            log.write(key + "\n")
        while os.path.exists(os.path.join(self.root, HOLD_FILE)):
            await asyncio.sleep(POLL_SECONDS)
        await asyncio.sleep(float(self.options.get("delay", 0)))
        await super().get(key, target)
