"""A TCP proxy on 127.0.0.1 for faults no real server shows on demand:

- `silent` keeps every connection open and forwards what clients send, but drops what the server answers (a broker
  that accepts and never confirms);
- `cut()` drops every open connection and closes each new one at once, as a server whose host went away would
  (a database unreachable for a while); `restore()` lets connections through again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class SilenceableProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.silent = threading.Event()
        self.sent_while_silent = 0  # bytes clients sent while the server's answers were dropped
        self.refused = 0  # connections closed at once while cut: how often clients tried
        self._cut = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> SilenceableProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self._closing.set()
        self._listener.close()
        self._drop_all()

    def cut(self) -> None:
        """The server becomes unreachable: open connections are reset, new ones closed at once."""
        self._cut.set()
        self._drop_all()

    def restore(self) -> None:
        self._cut.clear()

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the pipe threads blocked in recv
            sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                self.refused += 1
                client.close()
                continue
            try:
                server = socket.create_connection(self._upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, from_server: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if from_server and self.silent.is_set():
                    continue  # the answer (a confirm, a heartbeat) never reaches the client
                if not from_server and self.silent.is_set():
                    self.sent_while_silent += len(chunk)
                target.sendall(chunk)
        except OSError:
            return
        finally:
            # One side ended: end the other too, so the client sees the connection go (PostgreSQL's clients do).
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
