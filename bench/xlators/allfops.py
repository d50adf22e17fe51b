"""Every fop and callback in Python, winding and unwinding what it gets
(for the memory and deadlock runs: every request enters Python twice)."""
import glupy


def _wind(self, frame, this, *args):
    frame.wind(*args)


def _unwind(self, frame, cookie, this, op_ret, op_errno, *args):
    frame.unwind(op_ret, op_errno, *args)


class xlator(glupy.Translator):
    pass


for _name in glupy.FOPS:
    setattr(xlator, _name + "_fop", _wind)
    setattr(xlator, _name + "_cbk", _unwind)
