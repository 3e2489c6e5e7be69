"""A TCP proxy on 127.0.0.1 for broker faults no real broker shows on demand: `silent` keeps every connection open
and forwards what clients send, but drops what the server answers (a broker that accepts and never confirms)."""

from __future__ import annotations

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
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> SilenceableProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self._closing.set()
        for sock in [self._listener, *self._sockets]:
            sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
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
