"""lookup and stat as async def fops: await the wind, answer with the reply
(the async counterpart of lookup_stat.py)."""
import glupy


class xlator(glupy.Translator):
    async def lookup_fop(self, frame, this, loc, xdata):
        return await frame.wind(loc, xdata)

    async def stat_fop(self, frame, this, loc, xdata):
        return await frame.wind(loc, xdata)
