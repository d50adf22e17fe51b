"""A gfapi reader in a process of its own, for a test to stop and continue
(SIGSTOP/SIGCONT) so the brick's replies to it queue in its socket layer.

    slow_reader.py VOLFILE LOG EXPECTED_DIR THREADS SECONDS

Reads every file of EXPECTED_DIR (the bytes the volume must return for it,
under the same name) in 1 MiB preads from THREADS threads until SECONDS
have passed; prints one JSON line: reads done and every mismatch."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glusterlib  # noqa: E402

CHUNK = 1 << 20


def main(volfile, log, expected_dir, threads, seconds):
    expected = {name: open(os.path.join(expected_dir, name), "rb").read()
                for name in sorted(os.listdir(expected_dir))}
    client = glusterlib.Gfapi(volfile, log)
    deadline = time.monotonic() + float(seconds)
    reads, mismatches, lock = [0], [], threading.Lock()

    def run(seed):
        names = list(expected)
        n = seed
        while time.monotonic() < deadline:
            name = names[n % len(names)]
            n += 1
            data = expected[name]
            with client.open("/" + name) as f:
                for offset in range(0, len(data), CHUNK):
                    got = f.pread(CHUNK, offset)
                    want = data[offset:offset + CHUNK]
                    with lock:
                        reads[0] += 1
                        if got != want:
                            first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                                         min(len(got), len(want)))
                            mismatches.append([name, offset, first])

    workers = [threading.Thread(target=run, args=(i,)) for i in range(int(threads))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"reads": reads[0], "mismatches": mismatches[:20]}), flush=True)
    client.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
