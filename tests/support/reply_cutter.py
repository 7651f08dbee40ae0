"""A TCP proxy in front of a Redis server that can lose one reply on purpose.

The worst moment for a client is a connection dropped after the server applied a command but
before its reply arrived: the client cannot tell whether the command ran. Restarting the server
rarely lands there; this proxy does, every time it is armed.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

from bus.backend.embedded import free_port


class ReplyCutter:
    """Forwards ``127.0.0.1:port`` to ``target_port``; ``arm(marker)`` loses the reply to the next
    request holding ``marker`` (and ``EXEC``) by closing that client's connection instead."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.cuts = 0
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arm(self, marker: bytes) -> None:
        with self._lock:
            self._marker = marker

    @property
    def armed(self) -> bool:
        with self._lock:
            return self._marker is not None

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            cut = threading.Event()
            threading.Thread(target=self._requests, args=(client, server, cut), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client, cut), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket, cut: threading.Event) -> None:
        with suppress(OSError):
            while data := client.recv(65536):
                with self._lock:
                    if self._marker is not None and self._marker in data and b"EXEC" in data:
                        self._marker = None
                        self.cuts += 1
                        cut.set()  # before forwarding: the reply to this request is the one to lose
                server.sendall(data)
        _close(client, server)

    def _replies(self, server: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        with suppress(OSError):
            while data := server.recv(65536):
                if cut.is_set():
                    break  # the server applied the request; its reply is lost with the connection
                client.sendall(data)
        _close(client, server)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
