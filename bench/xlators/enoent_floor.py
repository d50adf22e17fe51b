"""The least a Python negative cache can cost: lookup_fop answers ENOENT for
the benchmark's missing names (not-here-*) without any cache, and winds the
rest. What it reaches against nl-cache is the ceiling for any translator
that answers a hit in Python."""
import errno

import glupy


class xlator(glupy.Translator):
    def lookup_fop(self, frame, this, loc, xdata):
        if loc.name.startswith("not-here"):
            frame.error(errno.ENOENT)
        else:
            frame.wind(loc, xdata)
