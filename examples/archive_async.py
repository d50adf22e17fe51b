"""examples/archive.py with its retrieval written as coroutines.

Same stubs, options, statedump and archiving command as archive.py (it
inherits its size reporting, protected xattrs and option checks); only the
way content comes back differs:

- the store is a glupy.archive.AsyncStore, awaited on the glupy event loop:
  `dir:` is AsyncLocalDirectoryStore; a store-class may be an AsyncStore
  (aiohttp, aiobotocore...) or a sync Store, whose calls then run on the
  download threads (AsyncStoreAdapter);
- each content fop is one coroutine: it awaits the download of its file -
  one asyncio task per gfid, shared by every request for that file - and
  then `return await frame.wind(...)`; opening a stub for reading starts
  that task;
- with `option async-timeout`, a request waiting longer is answered
  ETIMEDOUT, and a download is cancelled after download-timeout seconds
  (default: async-timeout), so the next access starts a fresh one.

Options: those of archive.py (store, store-class, store-*, brick-path,
download-threads: downloads at once, and the threads that do their work on
the backend files), and
    download-timeout  seconds before a download is cancelled (default:
                      async-timeout; 0 or unset: no limit)
"""

import asyncio
import errno
import os

import glupy
from glupy import archive as cold

from archive import CONTENT_FOPS, _gfid
from archive import xlator as _SyncArchive

# truncate/ftruncate to 0 throw the content away: nothing to download.
TRUNCATING_FOPS = ("truncate", "ftruncate")


def download_timeout_of(options):
    """download-timeout, else async-timeout (which the host checks), else None."""
    raw = options.get("download-timeout")
    if not raw:
        try:
            fallback = float(options.get("async-timeout") or 0)
        except ValueError:
            return None  # the host logs it and runs without a deadline
        return fallback if fallback > 0 else None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"option download-timeout: {raw!r} is not a number of seconds") from None
    if value < 0:
        raise ValueError(f"option download-timeout: {raw!r} must not be negative")
    return value or None


def _consume_failure(task):
    """A download nobody awaited (an open without reads) fails quietly:
    restore() has logged it already."""
    if not task.cancelled():
        task.exception()


def _make_content_fop(fop, names):
    positions = [names.index(n) for n in CONTENT_FOPS[fop]]
    offset_at = names.index("offset") if fop in TRUNCATING_FOPS else None

    async def fop_method(self, frame, this, *args):
        downloads = []
        for position in positions:
            gfid = _gfid(args[position])
            # stub_key is a getxattr on the brick's own disk, as quick as the
            # posix fop that follows: not worth a trip to a thread.
            if gfid is None or self.stub_key(gfid) is None:
                continue
            if offset_at is not None and args[offset_at] == 0:
                self.discard(gfid)
                continue
            downloads.append(self.restored(gfid))
        await asyncio.gather(*downloads)
        return await frame.wind(*args)

    fop_method.__name__ = fop + "_fop"
    return fop_method


class xlator(_SyncArchive):
    def __init__(self, xl):
        super().__init__(xl)  # checks the options, opens the store with open_store below
        self.store.executor = self.executor
        # At most download-threads downloads at once (archive.py checked it).
        self.slots = asyncio.Semaphore(int(self.options.get("download-threads", "4")))
        self.download_timeout = download_timeout_of(self.options)
        self.loop = None  # the glupy event loop, once a coroutine has run

    @staticmethod
    def open_store(options):
        return cold.store_from_volfile(options, cold.open_async_store)

    def reconfigure(self, options):
        timeout = download_timeout_of(options)
        store = self.open_store(options)
        store.executor = self.executor
        old, self.store, self.download_timeout = self.store, store, timeout
        self.close_store(old)

    def fini(self):
        if self.loop is not None:
            for task in list(self.pending.values()):
                self.loop.call_soon_threadsafe(task.cancel)
        self.close_store(self.store)
        self.executor.shutdown(wait=False)

    def close_store(self, store):
        """Closes store on the loop its sessions belong to."""
        if self.loop is None:
            asyncio.run(store.close())  # no coroutine has used it: no loop yet
        else:
            asyncio.run_coroutine_threadsafe(store.close(), self.loop)

    # -- on the loop -------------------------------------------------------------
    async def open_fop(self, frame, this, loc, flags, fd, xdata):
        self.loop = asyncio.get_running_loop()
        gfid = _gfid(loc)
        if gfid is not None and self.stub_key(gfid) is not None:
            mode = flags & os.O_ACCMODE
            if mode != os.O_RDONLY and flags & os.O_TRUNC:
                self.discard(gfid)  # the content is thrown away: nothing to fetch
            elif mode != os.O_WRONLY:
                self.download(gfid)  # reads follow: start now, they await it
        return await frame.wind(loc, flags, fd, xdata)

    def download(self, gfid, waiting=False):
        """The task of gfid's download, started unless one runs already.
        Only the loop's thread calls it: no lock needed for pending."""
        self.loop = asyncio.get_running_loop()
        task = self.pending.get(gfid)
        if task is None:
            task = self.loop.create_task(self.restore(gfid))
            task.add_done_callback(_consume_failure)
            self.pending[gfid] = task
        elif waiting:
            with self.lock:
                self.waiters += 1
        return task

    async def restored(self, gfid):
        """Returns once gfid's content is back; FopError(EIO or ETIMEDOUT) if
        its download failed. Shielded: a request that gives up (async-timeout)
        does not cancel the download the others wait for."""
        try:
            await asyncio.shield(self.download(gfid, waiting=True))
        except asyncio.TimeoutError:
            raise glupy.FopError(errno.ETIMEDOUT) from None
        except Exception:
            raise glupy.FopError(errno.EIO) from None  # logged once, by restore

    async def restore(self, gfid):
        """The one download of gfid; failures are logged here, once."""
        path = self.backend(gfid)
        try:
            async with self.slots:
                restored = await asyncio.wait_for(
                    cold.restore_file_async(path, self.store, self.executor), self.download_timeout)
            if restored:
                with self.lock:
                    self.downloads += 1
                self.log.info("restored %s from %s", path, self.store)
        except asyncio.TimeoutError:
            self.failed(f"cannot restore {path} from {self.store}: "
                        f"no answer within download-timeout {self.download_timeout}s")
            raise
        except Exception as error:
            self.failed(f"cannot restore {path} from {self.store}: {error}")
            raise
        finally:
            self.pending.pop(gfid, None)

    def failed(self, message):
        with self.lock:
            self.failures += 1
        self.log.error("%s", message)

    def dump(self):
        return {**super().dump(), "download-timeout": self.download_timeout or 0}


for _fop in CONTENT_FOPS:
    setattr(xlator, _fop + "_fop", _make_content_fop(_fop, glupy.FOPS[_fop][0]))
