"""What the host (glupy.so) calls: loading and checking a translator module.

Shared with ``glupy check``, so the command reports exactly what init would.
"""

import datetime
import difflib
import functools
import hashlib
import importlib.machinery
import importlib.util
import inspect
import logging
import os
import subprocess
import sys
import traceback

from . import FOPS, Translator, _loader, _trust
from ._aio import current_log_id

# Where Glupy 1 looked for modules, searched after module-path; then the
# directories of PYTHONPATH (environment_dirs).
ETC_DIR = "/etc/glusterfs/glupy"

HOOKS = ("reconfigure", "notify", "dump", "fini", "forget", "release", "releasedir")


@functools.lru_cache(maxsize=1)
def xlatordir():
    """The translator directory of the GlusterFS glupy.so was built for (in
    the host), else of the installed GlusterFS (glupy check); or None."""
    try:
        from ._glupy import XLATORDIR

        return XLATORDIR
    except ImportError:
        pass
    try:
        out = subprocess.run(["glusterfs", "--print-xlatordir"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def default_dirs():
    """/etc/glusterfs/glupy, then <xlatordir>/features/glupy (where Glupy 1
    and GlusterFS 3.5-5.x installed translator modules)."""
    found = xlatordir()
    return (ETC_DIR,) + ((os.path.join(found, "features", "glupy"),) if found else ())


class LoadError(Exception):
    """The module cannot be used; the message says what to fix."""


def _checked_dir(path, what, trusted):
    try:
        return _trust.check_dir(os.path.abspath(path), trusted)
    except NotADirectoryError:
        raise LoadError(f"{what} is not a directory") from None
    except _trust.Untrusted as e:
        raise LoadError(f"{what} cannot be used, as translators run as root: {e}") from None
    except OSError as e:
        raise LoadError(f"{what} cannot be used: {e.strerror}") from None


def module_dirs(module_path, trusted):
    """The directories a translator's modules come from, each checked."""
    dirs = [_checked_dir(module_path, f"option module-path {module_path!r}", trusted)] if module_path else []
    for default in default_dirs():
        if os.path.lexists(default):
            dirs.append(_checked_dir(default, f"{default} (searched after module-path)", trusted))
    return dirs


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Compiles the module's source as it is now, never a cached .pyc: that
    cache is checked by the source's size and mtime (whole seconds), so a
    reload of an edit of the same size, within the same second or with its
    mtime kept (rsync -t, configuration tools), would run the old code."""

    def get_code(self, fullname):
        return self.source_to_code(self.get_data(self.path), self.path)


def environment_dirs(trusted, environ=os.environ):
    """([directories], [why each other entry was skipped]) of PYTHONPATH.

    Glupy 1 let the process's PYTHONPATH make translator modules importable.
    Its directories are module directories like module-path (read through
    the same checks), not sys.path entries: the interpreter itself ignores
    the environment. Skipped, as Python skips what it cannot use: empty and
    missing entries, those already on sys.path (the installation's modules,
    imported as usual) and, with the reason kept for the log and for a
    module not found, those another user could change.
    """
    on_sys_path = {os.path.abspath(p) for p in sys.path if p}
    dirs, skipped = [], []
    for entry in environ.get("PYTHONPATH", "").split(os.pathsep):
        path = os.path.abspath(entry) if entry else None
        if path is None or path in on_sys_path or path in dirs or not os.path.isdir(path):
            continue
        try:
            dirs.append(_trust.check_dir(path, trusted))
        except _trust.Untrusted as e:
            skipped.append(f"PYTHONPATH entry {entry} is not searched, as translators run as root: {e}")
        except OSError as e:
            skipped.append(f"PYTHONPATH entry {entry} is not searched: {e.strerror}")
    return dirs, skipped


def import_fresh(name, module_path=None, trusted=None):
    """Executes the module in a namespace of its own (see _loader), so two
    translators loading the same module share no state by accident."""
    trusted = _trust.trusted_uids() if trusted is None else trusted
    dirs = module_dirs(module_path, trusted)
    from_environment, skipped = environment_dirs(trusted)
    for reason in skipped:
        logging.getLogger("glupy").warning("%s", reason)
    dirs += [d for d in from_environment if d not in dirs]
    namespace = _loader.Namespace(dirs, trusted)
    if namespace.owns(name.partition(".")[0]):
        module = _run_import(name, lambda: namespace.load(name))
        module.__glupy_sources__ = dict(namespace.sources)
        return module
    where = dirs + sys.path
    if "." in name:
        spec = _run_import(name, lambda: importlib.util.find_spec(name))
    else:
        spec = importlib.machinery.PathFinder.find_spec(name, sys.path)
    if spec is None or spec.loader is None:
        shown = ", ".join(where[:4]) + (", ..." if len(where) > 4 else "")
        raise LoadError(
            f"Python module {name!r} not found (searched {shown}): check option module-name, "
            f"or set option module-path to the directory holding {name}.py"
            + "".join(f"; {reason}" for reason in skipped)
        )
    module = _run_import(name, lambda: _execute_installed(name, spec))
    module.__glupy_sources__ = _installed_source(spec)
    return module


def _installed_source(spec):
    """{file: sha256} of an installed module's source file, if it has one."""
    origin = getattr(spec, "origin", None)
    try:
        with open(origin, "rb") as source:
            return {origin: hashlib.sha256(source.read()).hexdigest()}
    except (OSError, TypeError):
        return {}


def origin_info(module):
    """What the statedump shows about the code a translator runs: the
    module's file and sha256 (of its source bytes), the helper modules it
    imported from its module directories (name:sha256), and when it loaded."""
    sources = dict(getattr(module, "__glupy_sources__", {}))
    main = getattr(module, "__file__", None)
    main_hash = sources.pop(main, "") if main else ""
    helpers = " ".join(f"{os.path.basename(f)}:{h}" for f, h in sources.items())
    loaded = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    return {"module-file": str(main or "?"), "module-sha256": main_hash,
            "module-helpers": helpers or "-", "loaded-at": loaded}


def _execute_installed(name, spec):
    """A module of the Python installation (sys.path), run fresh; what it
    imports is shared through sys.modules."""
    if isinstance(spec.loader, importlib.machinery.SourceFileLoader):
        spec.loader = _SourceOnlyLoader(spec.name, spec.origin)
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module  # dataclasses, pickle and friends look here
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
    return module


def _run_import(name, run):
    try:
        return run()
    except SyntaxError as e:
        raise LoadError(
            f"syntax error in {e.filename} line {e.lineno}: {e.msg}\n"
            + "".join(traceback.format_exception_only(type(e), e))
        ) from None
    except _trust.Untrusted as e:
        raise LoadError(f"module {name} cannot be used, as translators run as root: {e}") from None
    except BaseException:
        raise LoadError(f"importing {name} failed:\n{traceback.format_exc()}") from None


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
    cbk_method)}, {hook: method}, {origin key: text} (see origin_info))."""
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
    return obj, methods, hooks, origin_info(module)


class GlusterLogHandler(logging.Handler):
    """Python logging into a GlusterFS log: the log of the translator's own
    graph for a translator's logger (``self.log``), else of the translator
    the thread or coroutine works for, else of the process."""

    def emit(self, record):
        try:
            from . import _glupy

            domain = record.name[6:] if record.name.startswith("glupy.") else None
            log_id = getattr(record, "glupy_log_id", None) or current_log_id.get()
            _glupy.log(
                record.levelno, self.format(record), domain,
                os.path.basename(record.pathname or "python"), record.funcName or "-", record.lineno or 0,
                log_id,
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
