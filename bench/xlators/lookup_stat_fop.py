"""lookup and stat fops in Python, no callbacks: the reply goes straight up
without entering Python (a translator that only looks at requests)."""
import glupy


class xlator(glupy.Translator):
    def lookup_fop(self, frame, this, loc, xdata):
        frame.wind(loc, xdata)

    def stat_fop(self, frame, this, loc, xdata):
        frame.wind(loc, xdata)
