"""Has getxattr in Python: records every name its getxattr_fop sees and
answers `user.glupy.seen` with them (space-separated); other names wind on.
The host's status key must never reach it."""
import glupy


class xlator(glupy.Translator):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.glupy.seen":
            value = " ".join(self.seen).encode() or b"-"
            frame.unwind(len(value), 0, glupy.Dict({name: value}), None)
            return
        self.seen.append(name or "")
        frame.wind(loc, name, xdata)
