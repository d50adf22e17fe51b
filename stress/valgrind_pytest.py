#!/usr/bin/python3
"""pytest with every brick glusterlib starts run through the wrapper named
by GLUPY_VALGRIND_WRAPPER (valgrind; see stress/valgrind.py)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import glusterlib  # noqa: E402  (the module the tests' conftest uses)

PATIENCE = 300  # seconds: a brick under valgrind starts and stops slowly


class Valgrind:
    def pytest_configure(self, config):
        glusterlib.GLUSTERFSD = os.environ["GLUPY_VALGRIND_WRAPPER"]
        glusterlib.Brick.start.__defaults__ = (PATIENCE,)
        glusterlib.Brick.stop.__defaults__ = (PATIENCE,)


if __name__ == "__main__":
    sys.exit(pytest.main(sys.argv[1:], plugins=[Valgrind()]))
