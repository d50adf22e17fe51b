"""A brick whose network can be cut: it runs in a network namespace of its
own (only its loopback, 127.0.0.1), and clients reach it through a relay
that listens on 127.0.0.1 in ours and connects inside the brick's namespace.
Cutting takes the namespace's loopback down: packets to and from the brick
are dropped (no reset, no close), as when a cable is pulled; restoring takes
it up again. Nothing outside 127.0.0.0/8 is involved, and the namespace goes
away with the brick process.
"""

import ctypes
import os
import socket
import subprocess
import threading

CLONE_NEWNET = 0x40000000
# unshare makes the namespace and execs sh, sh brings lo up and execs
# glusterfsd: one pid throughout, so the harness stops the brick by pid.
NAMESPACE_WRAPPER = ("unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"')
LOCALHOST = "127.0.0.1"

_libc = ctypes.CDLL(None, use_errno=True)


def enter_namespace_of(pid):
    """Moves the calling thread (only) into pid's network namespace."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"setns into the network namespace of {pid}: {os.strerror(code)}")
    finally:
        os.close(fd)


def set_link(pid, up):
    """Takes the loopback of pid's network namespace up or down."""
    subprocess.run(["nsenter", "--target", str(pid), "--net", "ip", "link", "set", "lo",
                    "up" if up else "down"], check=True, capture_output=True, timeout=30)


class Relay:
    """Accepts on 127.0.0.1:port here and forwards each connection to
    127.0.0.1:target_port inside the namespace of the process target_pid."""

    def __init__(self, target_pid, target_port):
        self.target_pid, self.target_port = target_pid, target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((LOCALHOST, 0))
        self.listener.listen(64)
        self.listener.settimeout(0.5)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.sockets = set()
        self.lock = threading.Lock()
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, name="relay", daemon=True)
        self.thread.start()

    def _serve(self):
        # Sockets this thread creates from now on live in the brick's namespace.
        enter_namespace_of(self.target_pid)
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.settimeout(5)
            try:
                upstream.connect((LOCALHOST, self.target_port))
            except OSError:
                # The link is cut (or the brick is gone): refuse, the client retries.
                upstream.close()
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets.update((client, upstream))
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(1 << 16)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stopping.set()
        self.listener.close()
        self.thread.join(5)
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.close()
                except OSError:
                    pass
