"""The package's type stubs check real translators (mypy, as pyfuse3 does)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def mypy(*files):
    return subprocess.run(
        ["mypy", "--python-executable", "/usr/bin/python3", "--no-incremental", "--ignore-missing-imports", *map(str, files)],
        env={"MYPYPATH": str(ROOT / "python"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_examples_and_test_translators_type_check():
    # Glupy 1 translators (glupy1_*) are ctypes code written before type hints.
    translators = [p for p in sorted((ROOT / "tests/xlators").glob("*.py")) if not p.name.startswith("glupy1_")]
    files = sorted(ROOT.glob("examples/*.py")) + translators
    result = mypy(ROOT / "python/glupy/__init__.pyi", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stubs_catch_a_wrong_translator(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import glupy\n"
        "class xlator(glupy.Translator):\n"
        "    async def lookup_fop(self, frame: glupy.Frame[glupy.LookupReply], this: glupy.Xlator,\n"
        "                         loc: glupy.Loc, xdata: glupy.Dict | None) -> object:\n"
        "        reply = await frame.wind(loc, xdata)\n"
        "        return reply.no_such_field + loc.no_such_attribute\n"
    )
    result = mypy(bad)
    assert result.returncode != 0
    assert "no_such_field" in result.stdout and "no_such_attribute" in result.stdout
