#!/usr/bin/python3
"""Load on `python3 -m glupy.flow --http`: profiler records at a fixed rate over
UDP (batched as the profiler's sender does), while the page's data and
/metrics are fetched every second; reports the fetch latencies, the records
the collector read against those sent, and the collector's CPU.

    bench/flow_load.py --rate 50000 --seconds 30
Starts its own collector (PYTHONPATH = this checkout's python/).
"""

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
FOPS = {"lookup": 30, "stat": 15, "readv": 20, "writev": 20, "open": 5, "flush": 5,
        "create": 2, "unlink": 1, "getxattr": 2}
UDP_PAYLOAD = 60000


def make_records(count, seed=1):
    rng = random.Random(seed)
    fops = rng.choices(list(FOPS), weights=list(FOPS.values()), k=count)
    records = []
    for fop in fops:
        failed = fop == "lookup" and rng.random() < 0.1
        path = f"/data/d{rng.randrange(50)}/f{rng.randrange(2000)}"
        records.append(json.dumps({
            "host": f"server{rng.randrange(4)}", "volume": "vol0", "translator": "vol0-glupy",
            "source": f"brick:/bricks/b{rng.randrange(2)}", "fop": fop, "path": path,
            "gfid": "0b8a2c4e-1111-2222-3333-444455556666", "op_ret": -1 if failed else 0,
            "op_errno": 2 if failed else 0, "start": time.time(),
            "latency_us": int(rng.lognormvariate(6, 1.2)), "pid": 4242, "uid": 0},
            separators=(",", ":")))
    return records


def batches(records):
    batch, size = [], 0
    for record in records:
        if size + len(record) + 1 > UDP_PAYLOAD:
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += len(record) + 1
    if batch:
        yield batch


def send(port, rate, seconds, pool):
    """Sends rate records/s for seconds; returns how many were sent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    datagrams = [("\n".join(b).encode(), len(b)) for b in batches(pool)]
    sent, started = 0, time.monotonic()
    end = started + seconds
    index = 0
    while time.monotonic() < end:
        due = (time.monotonic() - started) * rate
        while sent < due:
            payload, count = datagrams[index % len(datagrams)]
            index += 1
            sock.sendto(payload, ("127.0.0.1", port))
            sent += count
        time.sleep(0.002)
    return sent


def fetch_loop(url, stop, timings):
    while not stop.is_set():
        for path in ("api/live", "metrics", "api/live?after=0"):
            started = time.monotonic()
            with urllib.request.urlopen(url + path, timeout=30) as response:
                response.read()
            timings.setdefault(path.split("?")[0] + ("?after" if "?" in path else ""),
                               []).append(time.monotonic() - started)
        stop.wait(1.0)


def records_read(url):
    with urllib.request.urlopen(url + "metrics", timeout=30) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "glupy_flow_records_total":
                return sample.value
    return 0


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quantiles(values):
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"p50 {pick(0.5) * 1000:.0f} ms, p99 {pick(0.99) * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50000, help="records per second")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
    collector = subprocess.Popen(
        [sys.executable, "-m", "glupy.flow", "--listen", "udp:127.0.0.1:0",
         "--http", "127.0.0.1:0", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        port = int(collector.stderr.readline().strip().rpartition(":")[2])
        url = collector.stderr.readline().split()[1]
        pool = make_records(20000)
        stop, timings = threading.Event(), {}
        fetcher = threading.Thread(target=fetch_loop, args=(url, stop, timings))
        cpu_before = cpu_seconds(collector.pid)
        fetcher.start()
        started = time.monotonic()
        sent = send(port, args.rate, args.seconds, pool)
        elapsed = time.monotonic() - started
        time.sleep(2)  # the last datagrams read
        stop.set()
        fetcher.join()
        cpu = cpu_seconds(collector.pid) - cpu_before
        read = records_read(url)
        print(f"sent {sent} records in {elapsed:.1f} s ({sent / elapsed:.0f}/s); "
              f"the collector read {read:.0f} ({100 * read / sent:.1f} %), "
              f"using {cpu / (elapsed + 2):.2f} CPU")
        for path, values in sorted(timings.items()):
            print(f"  GET /{path}: {len(values)} fetches, {quantiles(values)}")
    finally:
        collector.terminate()
        collector.wait(10)


if __name__ == "__main__":
    main()
