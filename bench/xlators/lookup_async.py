"""Bench: the same lookup as lookup_sync.py, as one coroutine."""
import glupy


class xlator(glupy.Translator):
    async def lookup_fop(self, frame, this, loc, xdata):
        return await frame.wind(loc, xdata)
