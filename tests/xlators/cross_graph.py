"""Values of one graph offered to another (two volumes in one gfapi
process, tests/gfapi_two_graphs.c): getxattr ``user.cross.keep`` keeps the
request's loc, its inode and a Dict made in it where every instance of this
module in the process sees them; ``user.cross.use`` then makes a loc with
that inode (``loc.copy``) and winds the kept loc; ``user.cross.dict``
answers with the kept Dict. Each answers what happened: ``allowed`` or
``refused`` (RuntimeError) per step; a wind that went down answers from its
callback."""

import sys

import glupy

# One store for the whole process: every graph's instance of this module.
STORE = sys.modules.setdefault("cross_graph_store", type(sys)("cross_graph_store"))


def refused(step, error):
    """The step's outcome, and whether the error says why (another graph)."""
    return f"{step}:refused" + (":graph" if "another GlusterFS graph" in str(error) else "")


def attempt(step, call):
    try:
        call()
    except RuntimeError as e:
        return refused(step, e)
    return f"{step}:allowed"


class xlator(glupy.Translator):
    @staticmethod
    def answer(frame, name, text):
        data = text.encode()
        frame.unwind(len(data), 0, glupy.Dict({name: data}), None)

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.cross.keep":
            STORE.loc, STORE.inode = loc, loc.inode
            STORE.dict = glupy.Dict({"user.cross.dict": b"foreign"})
            self.answer(frame, name, "kept")
        elif name == "user.cross.use":
            steps = [attempt("copy", lambda: loc.copy(inode=STORE.inode))]
            frame.local = steps
            try:
                frame.wind(STORE.loc, name, xdata)  # answered by getxattr_cbk
            except RuntimeError as e:
                steps.append(refused("wind", e))
                self.answer(frame, name, ",".join(steps))
        elif name == "user.cross.dict":
            try:
                frame.unwind(len(b"foreign"), 0, STORE.dict, None)
            except RuntimeError as e:
                self.answer(frame, name, refused("dict", e))
        else:
            frame.wind(loc, name, xdata)

    def getxattr_cbk(self, frame, cookie, this, op_ret, op_errno, dict_, xdata):
        steps = frame.local
        if isinstance(steps, list):
            self.answer(frame, "user.cross.use", ",".join([*steps, "wind:allowed"]))
        else:
            frame.unwind(op_ret, op_errno, dict_, xdata)
