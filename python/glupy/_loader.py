"""The modules of one translator instance.

Each instance imports its module, and the helper modules and packages found
in its module directories, through a Namespace of its own: fresh module
objects, kept by the Namespace rather than in the process-wide sys.modules,
compiled from source read through _trust (no bytecode cache is read or
written). The module directories are never put on sys.path, so the other
translators of the process do not see them. The namespace's modules get a
``__builtins__`` whose ``__import__`` resolves names found in the module
directories to the namespace's modules, including imports run later inside
functions; every other import (the standard library, site-packages, glupy)
goes through the normal import system and is shared by the whole process.
"""

import builtins
import hashlib
import importlib.machinery
import os
import sys
import threading
import types

from . import _trust

_system_import = builtins.__import__

# Loads run one at a time in the process: a module being executed is entered
# in sys.modules for that time (dataclasses, pickle and typing look there).
_LOCK = threading.RLock()

# Always the installation's: a translator must subclass the host's own
# glupy.Translator, whatever a module directory (PYTHONPATH may name a
# checkout) holds.
HOST_PACKAGES = frozenset({"glupy", "gluster"})


class Namespace:
    def __init__(self, dirs, trusted):
        self.dirs = list(dirs)  # checked by _trust.check_dir
        self.trusted = trusted
        self.modules = {}
        # {file: sha256 hex} of every source this namespace executed, in
        # load order: what the translator runs (the statedump shows it).
        self.sources = {}
        self._executing = set()
        self._not_ours = set()
        self.builtins = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import

    def find(self, name, search):
        """(file, package directory or None) of module name in search, or None.

        A package directory comes before a module file, as in Python's own
        finder; only Python source is looked for.
        """
        for directory in search:
            package = os.path.join(directory, name)
            init = os.path.join(package, "__init__.py")
            if os.path.isfile(init):
                return init, package
            if os.path.isfile(package + ".py"):
                return package + ".py", None
        return None

    def owns(self, top):
        """Whether top-level module top comes from the module directories."""
        if top in self.modules:
            return True
        if top in self._not_ours or top in HOST_PACKAGES:
            return False
        if self.find(top, self.dirs):
            return True
        self._not_ours.add(top)
        return False

    def load(self, name):
        """Module name (a dotted name: its packages first) of this namespace."""
        module = self.modules.get(name)
        if module is not None and name not in self._executing:
            return module
        with _LOCK:
            parent = None
            parts = name.split(".")
            for i, part in enumerate(parts):
                full = ".".join(parts[: i + 1])
                module = self.modules.get(full)
                if module is None:
                    search = self.dirs if parent is None else getattr(parent, "__path__", None)
                    found = self.find(part, search) if search is not None else None
                    if found is None:
                        where = ", ".join(search) if search is not None else f"{parent.__name__}, not a package"
                        raise ModuleNotFoundError(f"No module named {full!r} (searched {where})", name=full)
                    module = self._execute(full, *found)
                    if parent is not None:
                        setattr(parent, part, module)
                parent = module
            return module

    def _execute(self, name, file, package):
        if package is not None:
            package = _trust.check_dir(package, self.trusted)
        _real, source = _trust.read_file(file, self.trusted)
        self.sources[file] = hashlib.sha256(source).hexdigest()
        code = compile(source, file, "exec", dont_inherit=True)
        module = types.ModuleType(name)
        spec = importlib.machinery.ModuleSpec(name, None, origin=file, is_package=package is not None)
        spec.has_location = True
        if package is not None:
            spec.submodule_search_locations = [package]
            module.__path__ = [package]
        module.__spec__ = spec
        module.__file__ = file
        module.__loader__ = None
        module.__package__ = name if package is not None else name.rpartition(".")[0]
        module.__builtins__ = self.builtins
        self.modules[name] = module  # before it runs: circular imports find it
        self._executing.add(name)
        # Entered in sys.modules only where no other module has that name.
        registered = sys.modules.setdefault(name, module) is module
        try:
            exec(code, module.__dict__)
        except BaseException:
            del self.modules[name]
            raise
        finally:
            self._executing.discard(name)
            if registered and sys.modules.get(name) is module:
                del sys.modules[name]
        return module

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        """builtins.__import__ for the namespace's modules."""
        absolute = name
        if level:
            package = (globals or {}).get("__package__") or ""
            if package.partition(".")[0] not in self.modules:
                return _system_import(name, globals, locals, fromlist, level)
            base = package.rsplit(".", level - 1)
            if len(base) < level:
                raise ImportError("attempted relative import beyond top-level package")
            absolute = f"{base[0]}.{name}" if name else base[0]
        elif not self.owns(name.partition(".")[0]):
            return _system_import(name, globals, locals, fromlist, level)
        module = self.load(absolute)
        if not fromlist:
            return module if level else self.modules[absolute.partition(".")[0]]
        if hasattr(module, "__path__"):
            wanted = [n for n in fromlist if n != "*"]
            if "*" in fromlist:
                wanted += list(getattr(module, "__all__", ()))
            for item in wanted:
                if not hasattr(module, item) and self.find(item, module.__path__):
                    self.load(f"{module.__name__}.{item}")
        return module

