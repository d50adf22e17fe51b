#!/usr/bin/python3
"""The main job, end to end: a brick running examples/helloworld.py and a
FUSE client running examples/negative.py, on loopback, in a temporary
directory. Prints what the translators did, then stops everything.

    make demo        (installs what it needs first)
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import glusterlib  # noqa: E402  (the test harness: processes stopped by pid)

EXAMPLES = str(ROOT / "examples")


def glupy(module, **options):
    return ("features/glupy", {"module-name": module, "module-path": EXAMPLES, **options})


def main():
    with tempfile.TemporaryDirectory(prefix="glupy-demo-") as tmp:
        cluster = glusterlib.Cluster(tmp)
        try:
            brick = cluster.brick([glupy("helloworld")], name="demo")
            print(f"brick running on 127.0.0.1:{brick.port} with examples/helloworld.py")
            mount = cluster.mount(brick, layers=[glupy("negative", **{"cache-timeout": "30"})],
                                  extra_args=("--negative-timeout=0",))
            print(f"FUSE client mounted at {mount.mountpoint} with examples/negative.py")
            data = os.urandom(1 << 20)
            (mount.mountpoint / "hello.bin").write_bytes(data)
            same = (mount.mountpoint / "hello.bin").read_bytes() == data
            print(f"wrote and read back 1 MiB through both translators: {'identical' if same else 'DIFFERENT'}")
            for _ in range(5):
                os.path.exists(mount.mountpoint / "not-there.py")
            section = glusterlib.statedump_sections(mount.statedump())
            stats = next(v for k, v in section.items() if k.endswith(".priv") and "glupy" in k)
            print("negative cache on the client:",
                  ", ".join(f"{k[7:]}={v}" for k, v in stats.items() if k.startswith("python.")))
            print("helloworld in the brick log:")
            for line in brick.log_text().splitlines():
                if "hello" in line and "glupy" in line:
                    print("   ", line.split("] ", 2)[-1])
            return 0 if same else 1
        finally:
            cluster.cleanup()


if __name__ == "__main__":
    sys.exit(main())
