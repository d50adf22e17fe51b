"""A LocalDirectoryStore that downloads slowly and counts its downloads, so a
test can see how many times concurrent readers made the brick download.

Options (volfile store-KEY): delay (seconds per get, default 0.5).
"""
import os
import threading
import time

from glupy.archive import LocalDirectoryStore

GETS_FILE = "gets.log"  # in the store's root, one key per download
THREADS_FILE = "threads.log"  # the name of the thread that ran each get


class SlowStore(LocalDirectoryStore):
    lock = threading.Lock()

    def get(self, key, target):
        time.sleep(float(self.options.get("delay", 0.5)))
        with self.lock, open(os.path.join(self.root, GETS_FILE), "a") as log:
            log.write(key + "\n")
        with self.lock, open(os.path.join(self.root, THREADS_FILE), "a") as log:
            log.write(threading.current_thread().name + "\n")
        super().get(key, target)
