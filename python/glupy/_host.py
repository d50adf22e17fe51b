"""What the host (glupy.so) calls: loading and checking a translator module.

Shared with ``glupy check``, so the command reports exactly what init would.
"""

import difflib
import importlib.machinery
import importlib.util
import inspect
import logging
import os
import stat
import sys
import traceback

from . import FOPS, Translator

# Where Glupy 1 looked for modules, then ours; module-path comes first.
DEFAULT_DIRS = ("/etc/glusterfs/glupy",)

HOOKS = ("reconfigure", "notify", "dump", "fini", "forget", "release", "releasedir")


class LoadError(Exception):
    """The module cannot be used; the message says what to fix."""


def _check_module_path(path):
    if not path:
        return
    try:
        st = os.stat(path)
    except OSError as e:
        raise LoadError(f"option module-path {path!r} cannot be used: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise LoadError(f"option module-path {path!r} is not a directory")
    if st.st_mode & stat.S_IWOTH:
        raise LoadError(
            f"option module-path {path!r} is writable by other users, and translators run as root: "
            f"run 'chmod o-w {path}' or choose another directory"
        )


def _search_path(module_path):
    dirs = [module_path] if module_path else []
    dirs += [d for d in DEFAULT_DIRS if os.path.isdir(d)]
    for d in reversed(dirs):  # helper modules next to the translator import too
        if d not in sys.path:
            sys.path.insert(0, d)
    return dirs + [p for p in sys.path if p not in dirs]


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Compiles the module's source as it is now, never a cached .pyc: that
    cache is checked by the source's size and mtime (whole seconds), so a
    reload of an edit of the same size, within the same second or with its
    mtime kept (rsync -t, configuration tools), would run the old code."""

    def get_code(self, fullname):
        return self.source_to_code(self.get_data(self.path), self.path)


def import_fresh(name, module_path=None):
    """Executes the module in a namespace of its own, so two translators
    loading the same module share no state by accident."""
    _check_module_path(module_path)
    where = _search_path(module_path)
    top = name.partition(".")[0]
    if "." in name:
        spec = importlib.util.find_spec(name)
    else:
        spec = importlib.machinery.PathFinder.find_spec(top, where)
    if spec is None or spec.loader is None:
        shown = ", ".join(where[:4]) + (", ..." if len(where) > 4 else "")
        raise LoadError(
            f"Python module {name!r} not found (searched {shown}): check option module-name, "
            f"or set option module-path to the directory holding {name}.py"
        )
    if isinstance(spec.loader, importlib.machinery.SourceFileLoader):
        spec.loader = _SourceOnlyLoader(spec.name, spec.origin)
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module  # dataclasses, pickle and friends look here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise LoadError(
            f"syntax error in {e.filename} line {e.lineno}: {e.msg}\n"
            + "".join(traceback.format_exception_only(type(e), e))
        ) from None
    except BaseException:
        raise LoadError(f"importing {name} ({spec.origin}) failed:\n{traceback.format_exc()}") from None
    finally:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
    return module


def _arity_problem(cls, attr, expected):
    func = inspect.getattr_static(cls, attr)
    if isinstance(func, (staticmethod, classmethod)):
        return f"{attr} must be a plain method, not a {type(func).__name__}"
    if not callable(func):
        return f"{attr} is not a method"
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(required) <= len(expected) <= len(positional):
        return None
    return (
        f"{attr}({', '.join(p.name for p in positional)}) takes {len(positional)} arguments, "
        f"but GlusterFS calls it with {len(expected)}: {attr}({', '.join(expected)})"
    )


def expected_args(fop, side):
    args, cbk_args, _ = FOPS[fop]
    if side == "fop":
        return ["self", "frame", "this", *args]
    return ["self", "frame", "cookie", "this", "op_ret", "op_errno", *cbk_args]


def check_class(cls):
    """Returns ({fop: (has_fop, has_cbk)}, [problems])."""
    found, problems = {}, []
    base_names = set(dir(Translator))
    for attr in sorted(dir(cls)):
        if attr in base_names or not (attr.endswith("_fop") or attr.endswith("_cbk")):
            continue
        if getattr(cls, attr, None) is None:
            continue  # `lookup_cbk = None` switches off an inherited method
        fop, side = attr[:-4], attr[-3:]
        if fop not in FOPS:
            hint = difflib.get_close_matches(fop, FOPS, n=1)
            problems.append(
                f"method {attr}: GlusterFS has no fop {fop!r}"
                + (f" (did you mean {hint[0]}_{side}?)" if hint else "")
            )
            continue
        problem = _arity_problem(cls, attr, expected_args(fop, side))
        if problem:
            problems.append(problem)
            continue
        has_fop, has_cbk = found.get(fop, (False, False))
        found[fop] = (has_fop or side == "fop", has_cbk or side == "cbk")
    return found, problems


def find_class(module):
    cls = getattr(module, "xlator", None)
    origin = getattr(module, "__file__", module.__name__)
    if cls is None:
        raise LoadError(
            f"module {module.__name__} ({origin}) defines no class named xlator: "
            f"add 'class xlator(glupy.Translator):' with the fop methods"
        )
    if not inspect.isclass(cls) or not issubclass(cls, Translator):
        raise LoadError(
            f"{module.__name__}.xlator must be a class deriving from glupy.Translator "
            f"(or gluster.glupy.Translator), not {cls!r}"
        )
    return cls


def _construct(cls, xl):
    try:
        try:
            inspect.signature(cls).bind(xl)
            obj = cls(xl)
        except TypeError:
            obj = cls()
    except BaseException:
        raise LoadError(f"creating {cls.__module__}.xlator failed:\n{traceback.format_exc()}") from None
    if not hasattr(obj, "options"):  # an __init__ that skipped Translator's
        Translator.__init__(obj, xl)
    return obj


def load(name, module_path, xl):
    """Called by the host's init: returns (translator, {fop: (fop_method,
    cbk_method)}, {hook: method})."""
    install_logging()
    module = import_fresh(name, module_path)
    cls = find_class(module)
    found, problems = check_class(cls)
    if problems:
        raise LoadError(f"module {name} ({module.__file__}): " + "; ".join(problems))
    obj = _construct(cls, xl)
    methods = {
        fop: (getattr(obj, fop + "_fop") if f else None, getattr(obj, fop + "_cbk") if c else None)
        for fop, (f, c) in found.items()
    }
    base = set(dir(Translator))
    hooks = {h: getattr(obj, h) for h in HOOKS if h not in base and callable(getattr(obj, h, None))}
    return obj, methods, hooks


class GlusterLogHandler(logging.Handler):
    """Python logging into the GlusterFS log of the process."""

    def emit(self, record):
        try:
            from . import _glupy

            domain = record.name[6:] if record.name.startswith("glupy.") else None
            _glupy.log(
                record.levelno, self.format(record), domain,
                os.path.basename(record.pathname or "python"), record.funcName or "-", record.lineno or 0,
            )
        except Exception:  # never let logging break a fop
            pass


class _LogStream:
    """print() in a translator goes to the log (Glupy 1 translators print)."""

    def __init__(self, level):
        self.level = level
        self.pending = ""

    def write(self, text):
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            logging.getLogger("print").log(self.level, line)
        return len(text)

    def flush(self):
        if self.pending:
            logging.getLogger("print").log(self.level, self.pending)
            self.pending = ""

    def isatty(self):
        return False


_installed = False


def install_logging():
    global _installed
    if _installed:
        return
    _installed = True
    root = logging.getLogger()
    root.addHandler(GlusterLogHandler())
    root.setLevel(logging.DEBUG)  # GlusterFS's own log level filters
    sys.stdout = _LogStream(logging.INFO)
    sys.stderr = _LogStream(logging.WARNING)
