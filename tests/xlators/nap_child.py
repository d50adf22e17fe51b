"""Python time in the statedump is Python's own: role lower sleeps `nap`
seconds in getxattr_fop (for user.nap) before winding on; role upper
winds every getxattr synchronously, so the nap is spent inside its wind."""
import time

import glupy


class xlator(glupy.Translator):
    def getxattr_fop(self, frame, this, loc, name, xdata):
        if self.options.get("role") == "lower" and name == "user.nap":
            time.sleep(float(self.options.get("nap", "1")))
        frame.wind(loc, name, xdata)
