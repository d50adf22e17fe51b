"""Has two children: xattrs named user.second.* go to the second (winding
by name), everything else to the first."""
import glupy


class xlator(glupy.Translator):
    def child_for(self, name):
        return self.children[1] if (name or "").startswith("user.second.") else None

    def setxattr_fop(self, frame, this, loc, dict, flags, xdata):
        frame.wind(loc, dict, flags, xdata, child=self.child_for(next(iter(dict.keys()), None)))

    def getxattr_fop(self, frame, this, loc, name, xdata):
        frame.wind(loc, name, xdata, child=self.child_for(name))
