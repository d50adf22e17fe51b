"""Where translator modules come from (issue 11): only files root alone can
change are run, and each translator instance has modules of its own.

The test's temp dir lies under /tmp (root's, sticky): passing through it is
allowed, so the module directories made here are safe unless a test makes
them otherwise.
"""

import os
import py_compile
import shutil
import subprocess
import textwrap

import pytest

import glusterlib

PYTHON = "/usr/bin/python3"
NOBODY = 65534
STAFF = 50

PROBE = """\
import glupy
{imports}


class xlator(glupy.Translator):
    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name != "user.probe." + this.name:
            frame.wind(loc, name, xdata)
            return
        {lazy}
        value = str({answer}).encode()
        frame.unwind(len(value), 0, glupy.Dict({{name: value}}), None)
"""


def probe(imports="", answer="'loaded'", lazy="pass"):
    """A translator answering getxattr user.probe.<its name> with answer."""
    return PROBE.format(imports=imports, answer=answer, lazy=lazy)


def write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def layer(module, path, name):
    return ("features/glupy", {"module-name": module, "module-path": str(path)}, name)


def ask(client, layer_name):
    return client.getxattr("/", f"user.probe.{layer_name}").decode()


def glupy_check(module, module_path, wrapper=()):
    done = subprocess.run([*wrapper, PYTHON, "-m", "glupy", "check", module, "--module-path", str(module_path)],
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


# ------------------------------------------------------ unsafe locations

def group_writable_dir(root):
    mods = root / "mods"
    write(mods / "m.py", probe())
    os.chown(mods, 0, STAFF)
    mods.chmod(0o775)
    return mods, f"{mods} is writable by its group (mode 0775): run 'chmod g-w,o-w {mods}'"


def dir_of_another_user(root):
    mods = root / "mods"
    write(mods / "m.py", probe())
    os.chown(mods, NOBODY, 0)
    return mods, f"{mods} is owned by uid {NOBODY} (nobody), not by root: run 'chown root {mods}'"


def module_of_another_user(root):
    mods = root / "mods"
    module = write(mods / "m.py", probe())
    os.chown(module, NOBODY, 0)
    return mods, f"run 'chown root {module}'"


def group_writable_module(root):
    mods = root / "mods"
    module = write(mods / "m.py", probe(), mode=0o664)
    return mods, f"{module} is writable by its group (mode 0664): run 'chmod g-w,o-w {module}'"


def helper_of_another_user(root):
    mods = root / "mods"
    write(mods / "m.py", probe("import helper"))
    helper = write(mods / "helper.py", "")
    os.chown(helper, NOBODY, 0)
    return mods, f"run 'chown root {helper}'"


def writable_parent(root):
    parent = root / "shared"
    mods = parent / "mods"
    write(mods / "m.py", probe())
    parent.chmod(0o777)
    return mods, f"{parent} is writable by its group and other users (mode 0777): run 'chmod g-w,o-w {parent}'"


def sticky_module_dir(root):
    mods = root / "mods"
    write(mods / "m.py", probe())
    mods.chmod(0o1777)  # others may not replace m.py, but may add helpers
    return mods, f"{mods} is writable by its group and other users (mode 1777): run 'chmod g-w,o-w {mods}'"


def symlink_into_a_writable_place(root):
    parent = root / "shared"
    write(parent / "mods" / "m.py", probe())
    os.chown(parent, 0, STAFF)
    parent.chmod(0o775)
    link = root / "link"
    link.symlink_to(parent / "mods")
    return link, f"{parent} is writable by its group (mode 0775): run 'chmod g-w,o-w {parent}'"


def symlink_of_another_user(root):
    write(root / "real" / "m.py", probe())
    link = root / "link"
    link.symlink_to(root / "real")
    os.lchown(link, NOBODY, 0)
    return link, f"{link} is owned by uid {NOBODY} (nobody), not by root: run 'chown -h root {link}'"


def module_symlinked_to_another_users_file(root):
    mods = root / "mods"
    mods.mkdir(parents=True)
    theirs = write(root / "theirs" / "m.py", probe())
    os.chown(theirs, NOBODY, 0)
    (mods / "m.py").symlink_to(theirs)
    return mods, f"run 'chown root {theirs}'"


UNSAFE = {f.__name__: f for f in (
    group_writable_dir, dir_of_another_user, module_of_another_user, group_writable_module,
    helper_of_another_user, writable_parent, sticky_module_dir, symlink_into_a_writable_place,
    symlink_of_another_user, module_symlinked_to_another_users_file,
)}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_module_location_is_refused_with_the_path_and_the_fix(workdir, case):
    module_path, refusal = UNSAFE[case](workdir / "place")
    brick = glusterlib.Brick(workdir / "b", [layer("m", module_path, "b-glupy")], name="b")
    log = brick.start_expect_failure()
    assert "cannot start glupy translator b-glupy" in log
    assert refusal in log
    status, output = glupy_check("m", module_path)
    assert status == 1 and refusal in output, output


def test_safe_module_location_loads(gluster):
    # Its chain: / and /tmp (sticky, root's) down to the test's own dirs.
    mods = write(gluster.workdir / "mods" / "m.py", probe("import helper", "helper.ANSWER")).parent
    write(mods / "helper.py", "ANSWER = 'from the helper'\n")
    brick = gluster.brick([layer("m", mods, "safe")])
    assert ask(gluster.gfapi(brick), "safe") == "from the helper"
    status, output = glupy_check("m", mods)
    assert status == 0 and "ok: init would accept it" in output, output


def test_bytecode_cache_is_never_run(gluster):
    """A writable __pycache__ is harmless: bytecode caches are not read."""
    mods = gluster.workdir / "mods"
    write(mods / "m.py", probe(answer="'source'"))
    evil = write(gluster.workdir / "evil" / "m.py", probe(answer="'bytecode'"))
    cache = mods / "__pycache__"
    cache.mkdir()
    # An unchecked-hash .pyc is used by Python's importer without looking at the source.
    py_compile.compile(str(evil), cfile=str(cache / "m.cpython-311.pyc"),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    os.chown(cache, NOBODY, 0)
    cache.chmod(0o777)
    brick = gluster.brick([layer("m", mods, "cached")])
    assert ask(gluster.gfapi(brick), "cached") == "source"


def etc_glusterfs_in_view_of(fake_etc):
    """A wrapper that runs a command with fake_etc mounted on /etc/glusterfs
    in a mount namespace of its own (the command keeps the pid)."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/glusterfs && exec "$@"', str(fake_etc)]


def test_etc_glusterfs_glupy_is_checked_too(gluster):
    fake_etc = gluster.workdir / "etc"
    default = fake_etc / "glupy"
    write(default / "m.py", probe(answer="'from /etc/glusterfs/glupy'"))
    os.chown(default, 0, STAFF)
    default.chmod(0o775)
    elsewhere = write(gluster.workdir / "mods" / "other.py", probe()).parent
    wrapper = etc_glusterfs_in_view_of(fake_etc)
    refusal = "run 'chmod g-w,o-w /etc/glusterfs/glupy'"

    # Refused even for a module found in module-path: helpers may come from it.
    brick = gluster.brick([layer("other", elsewhere, "b-glupy")], name="b", start=False, wrapper=wrapper)
    log = brick.start_expect_failure()
    assert "/etc/glusterfs/glupy (searched after module-path) cannot be used" in log and refusal in log
    status, output = glupy_check("other", elsewhere, wrapper)
    assert status == 1 and refusal in output, output

    default.chmod(0o755)
    brick = gluster.brick([("features/glupy", {"module-name": "m"}, "etc")], wrapper=wrapper)
    assert ask(gluster.gfapi(brick), "etc") == "from /etc/glusterfs/glupy"


# -------------------------------------------------- a namespace per instance

def test_module_path_does_not_shadow_the_standard_library_for_other_translators(gluster):
    shadowing = gluster.workdir / "shadowing"
    write(shadowing / "json.py", "SHADOW = True\n")
    write(shadowing / "uses_own.py", probe("import json", "json.__file__"))
    plain = write(gluster.workdir / "plain" / "uses_stdlib.py", probe(lazy="import json", answer="json.__file__"))
    brick = gluster.brick([layer("uses_own", shadowing, "own"), layer("uses_stdlib", plain.parent, "stdlib")])
    client = gluster.gfapi(brick)
    assert ask(client, "own") == str(shadowing / "json.py")  # module-path comes first for its translator
    import json

    assert ask(client, "stdlib") == json.__file__


HELPER_USERS = {
    "module": ("probe", "probe.py", "import helper", "helper.py"),
    "package": ("pkg.probe", "pkg/probe.py", "from . import helper", "pkg/helper.py"),
}


@pytest.mark.parametrize("kind", sorted(HELPER_USERS))
def test_two_instances_each_see_their_own_helper_version(gluster, kind):
    module, module_file, import_line, helper_file = HELPER_USERS[kind]
    layers = []
    for version in ("one", "two"):
        root = gluster.workdir / version
        # Imported at load and again inside the fop: both must be this instance's.
        write(root / module_file, probe(import_line, "helper.VERSION + ' ' + again.VERSION",
                                        lazy=import_line.replace("helper", "helper as again")))
        write(root / helper_file, f"VERSION = {version!r}\n")
        if kind == "package":
            write(root / "pkg" / "__init__.py", f"PACKAGE = {version!r}\n")
        layers.append(layer(module, root, version))
    brick = gluster.brick(layers)
    client = gluster.gfapi(brick)
    assert ask(client, "one") == "one one"
    assert ask(client, "two") == "two two"


# ------------------------------------------------------ Glupy 1's places (issue 12, item 5)

XLATORDIR = subprocess.check_output(["glusterfs", "--print-xlatordir"], text=True).strip()
FEATURES = os.path.join(XLATORDIR, "features")


def features_glupy_in_view_of(workdir, modules):
    """A wrapper that runs a command seeing a copy of <xlatordir>/features
    (this build's glupy.so included) with a glupy/ directory holding modules
    ({file name: text}), in a mount namespace of its own: the machine's
    translator directory is not changed. Returns (wrapper, that glupy/)."""
    copy = workdir / "features"
    shutil.copytree(FEATURES, copy, symlinks=True)
    copy.chmod(0o755)
    for name, text in modules.items():
        write(copy / "glupy" / name, text)
    return (["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount --bind "$0" "$1" && shift && exec "$@"', str(copy), FEATURES],
            copy / "glupy")


def test_xlatordir_features_glupy_is_searched_and_checked(gluster):
    """Glupy 1 installed translator modules in <xlatordir>/features/glupy."""
    wrapper, glupy_dir = features_glupy_in_view_of(
        gluster.workdir, {"m.py": probe("import helper", "helper.ANSWER"),
                          "helper.py": "ANSWER = 'from features/glupy'\n"})
    brick = gluster.brick([("features/glupy", {"module-name": "m"}, "fg")], wrapper=wrapper)
    assert ask(gluster.gfapi(brick), "fg") == "from features/glupy"
    brick.stop()

    os.chown(glupy_dir, 0, STAFF)
    glupy_dir.chmod(0o775)
    brick = gluster.brick([("features/glupy", {"module-name": "m"}, "fg")], name="b", start=False,
                          wrapper=wrapper)
    log = brick.start_expect_failure()
    assert (f"{FEATURES}/glupy (searched after module-path) cannot be used" in log
            and f"run 'chmod g-w,o-w {FEATURES}/glupy'" in log), log


def test_pythonpath_directories_are_searched_after_module_path(gluster, monkeypatch):
    """Glupy 1 honoured PYTHONPATH; its directories are module directories,
    but never replace the host's own glupy and gluster packages."""
    env_dir = gluster.workdir / "from-env"
    write(env_dir / "m.py", probe("import helper", "helper.ANSWER"))
    write(env_dir / "helper.py", "ANSWER = 'from PYTHONPATH'\n")
    write(env_dir / "glupy" / "__init__.py", "raise SystemExit('not the host glupy')\n")
    first = write(gluster.workdir / "first" / "m.py", probe(answer="'from module-path'")).parent
    monkeypatch.setenv("PYTHONPATH", f"/nonexistent::{env_dir}")
    brick = gluster.brick([("features/glupy", {"module-name": "m"}, "env"), layer("m", first, "first")])
    client = gluster.gfapi(brick)
    assert ask(client, "env") == "from PYTHONPATH"
    assert ask(client, "first") == "from module-path"


@pytest.mark.parametrize("case", ["group_writable_dir", "group_writable_module"])
def test_pythonpath_gets_the_same_checks(workdir, monkeypatch, case):
    env_dir, refusal = UNSAFE[case](workdir / "place")
    monkeypatch.setenv("PYTHONPATH", str(env_dir))
    brick = glusterlib.Brick(workdir / "b", [("features/glupy", {"module-name": "m"}, "b-glupy")], name="b")
    log = brick.start_expect_failure()
    assert "cannot start glupy translator b-glupy" in log and refusal in log, log
    if case == "group_writable_dir":  # skipped, as Python skips what it cannot use, and said why
        assert f"PYTHONPATH entry {env_dir} is not searched" in log
