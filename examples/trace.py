"""Logs every fop and callback with its arguments (a Python debug/trace).

Options:
    trace-level    Python logging level name for the lines (default INFO)
    trace-fops     comma-separated fops to trace (default: all)
"""

import logging

import glupy


def _fmt(value):
    if isinstance(value, (bytes, bytearray)) and len(value) > 64:
        return f"<{len(value)} bytes>"
    return repr(value)


def _make_fop(fop, names):
    def fop_method(self, frame, this, *args):
        if fop in self.traced:
            shown = ", ".join(f"{n}={_fmt(v)}" for n, v in zip(names, args))
            self.log.log(self.level, "%s_fop(unique=%d pid=%d: %s)", fop, frame.unique, frame.pid, shown)
        frame.wind(*args)

    fop_method.__name__ = fop + "_fop"
    return fop_method


def _make_cbk(fop, names):
    def cbk_method(self, frame, cookie, this, op_ret, op_errno, *args):
        if fop in self.traced:
            shown = ", ".join(f"{n}={_fmt(v)}" for n, v in zip(names, args))
            self.log.log(
                self.level, "%s_cbk(op_ret=%d, op_errno=%s: %s)", fop, op_ret, glupy.errno_name(op_errno), shown
            )
        frame.unwind(op_ret, op_errno, *args)

    cbk_method.__name__ = fop + "_cbk"
    return cbk_method


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.reconfigure(self.options)

    def reconfigure(self, options):
        self.level = logging.getLevelName(options.get("trace-level", "INFO").upper())
        if not isinstance(self.level, int):
            raise ValueError(f"trace-level {options['trace-level']!r} is not a logging level")
        wanted = {f.strip() for f in options.get("trace-fops", "").split(",") if f.strip()}
        unknown = sorted(wanted - set(glupy.FOPS))
        if unknown:
            raise ValueError(f"trace-fops names unknown fops: {', '.join(unknown)}")
        self.traced = wanted or set(glupy.FOPS)


for _fop, (_args, _cbk_args, _) in glupy.FOPS.items():
    setattr(xlator, _fop + "_fop", _make_fop(_fop, _args))
    setattr(xlator, _fop + "_cbk", _make_cbk(_fop, _cbk_args))
