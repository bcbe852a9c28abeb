"""The body of a streamed native response, read straight off its socket.

A stream must notice silence (to send keep-alives, and to learn that its own
client left) without a thread per stream, and take everything that has
arrived in one read. urllib3's public reads block until their size is met (and
1.26 has no ``read1``), so the body is read from the socket the response came
on, through our own chunk decoder (:class:`~ollama_gateway.wire.Dechunker`).
That touches three attributes no public API offers; the unit tests
(``tests/unit/test_upstream_unit.py``) prove them on urllib3 1.26 and 2.x, over
TCP and TLS::

    resp._fp              urllib3's http.client.HTTPResponse (1.26 and 2.x)
    resp._fp.fp           http.client's BufferedReader; holds what came with the headers
    resp._fp.fp.raw._sock socket.SocketIO's socket. resp.connection.sock is None
                          for a ``Connection: close`` answer (a proxy's, say):
                          http.client hands the socket to the response then.

Bytes wait in up to three places: that reader's buffer (only right after the
headers), the TLS layer's decrypted record (``SSLSocket.pending()``, which
``poll()`` cannot see), and the kernel (``poll()``).
"""
import select
import socket
import ssl
import time
from typing import Any, Iterator, List, Optional

from .wire import Dechunker, FramingError, LineSplitter

_READ = 65536


class NDJSONBody:
    """The NDJSON lines of one streamed response, a list per socket read.

    Raises the transport's own exceptions (``OSError``, ``socket.timeout``,
    :class:`~ollama_gateway.wire.FramingError`); the client maps them.
    """

    def __init__(self, resp: Any, read_timeout: float) -> None:
        native = resp._fp
        self._fp = native.fp
        self._sock = self._fp.raw._sock  # type: socket.socket
        # Set for TLS only, so a plain socket pays nothing per read.
        self._pending = getattr(self._sock, "pending", None)
        self._read_timeout = read_timeout
        self._dechunk = Dechunker() if native.chunked else None
        self._left = native.length  # type: Optional[int]  # None: to EOF (or the last chunk)
        self._lines = LineSplitter()
        self._fresh = True  # the reader may hold bytes that came with the headers
        #: The whole body has been read: the connection may serve another request.
        self.complete = False

    def _size(self) -> int:
        return _READ if self._left is None else min(self._left, _READ)

    def _take(self, data: bytes) -> List[bytes]:
        """Return the lines that ``data`` completes; notes the end of the body."""
        if self._left is not None:
            self._left -= len(data)
        if self._dechunk is not None:
            data = self._dechunk.feed(data)
        batch = self._lines.feed(data)
        if self._left == 0 or (self._dechunk is not None and self._dechunk.done):
            self.complete = True
            rest = self._lines.rest()
            if rest is not None:
                batch.append(rest)
        return batch

    def _read_buffered(self) -> Optional[bytes]:
        """Return bytes that are already in user space (no syscall blocks), or ``None``."""
        if self._fresh:
            self._fresh = False
            # One read1 empties the reader's buffer (it holds at most 8 KiB);
            # with the socket non-blocking it cannot wait when that is empty.
            timeout = self._sock.gettimeout()
            self._sock.settimeout(0)
            try:
                data = self._fp.read1(self._size())
            except ssl.SSLWantReadError:  # TLS: no whole record yet (TCP gives b"")
                data = b""
            finally:
                self._sock.settimeout(timeout)
            if data:
                return data
        if self._pending is not None and self._pending():
            # A TLS record read with the headers (or with an earlier read) can
            # hold more than that read took; the kernel no longer has it.
            return self._fp.read1(self._size())
        return None

    def _end(self) -> List[bytes]:
        """Return the last line at EOF; a body that promised more is broken."""
        if self._dechunk is not None or self._left:
            raise FramingError("the body ended early")
        self.complete = True
        rest = self._lines.rest()
        return [] if rest is None else [rest]

    def batches(self, idle: Optional[float] = None) -> Iterator[List[bytes]]:
        """Yield the lines of the body, a list per socket read.

        With ``idle`` set, an empty list is yielded whenever the upstream has
        been silent that long, so the caller can send a keep-alive.

        :raises socket.timeout: after ``read_timeout`` seconds of silence.
        :raises FramingError: for bad chunking or a body that ends early.
        """
        read_timeout = self._read_timeout
        wait = min(idle, read_timeout) if idle else read_timeout
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        silent = 0.0
        data = self._read_buffered()
        while not self.complete:
            if data is None:
                if not poller.poll(wait * 1000):
                    silent += wait
                    if silent >= read_timeout:
                        raise socket.timeout()
                    yield []
                    continue
                silent = 0.0
                # Readable: this returns at once (bytes, or b"" at EOF). A TLS
                # record still in flight is waited for, bounded by the
                # socket's read timeout.
                data = self._fp.read1(self._size())
            batch = self._take(data) if data else self._end()
            if batch:
                yield batch
            data = self._read_buffered() if self._pending is not None else None

    def finish(self, wait: float = 0.05) -> bool:
        """Return whether the body is read to its end, waiting ``wait`` seconds at most.

        After Ollama's last line the end of the chunked body follows at once
        (the server writes it when its handler returns); taking it lets the
        connection be reused. A body that does not end that soon is left, and
        the connection closed.
        """
        deadline = time.monotonic() + wait
        try:
            poller = select.poll()
            poller.register(self._sock.fileno(), select.POLLIN)
            while not self.complete:
                data = self._read_buffered()
                if data is None:
                    left = deadline - time.monotonic()
                    if left <= 0 or not poller.poll(left * 1000):
                        return False
                    data = self._fp.read1(self._size())
                    if not data:
                        return False  # EOF before the end of the body
                self._take(data)
        except (OSError, ValueError):  # ValueError: FramingError, or a closed socket
            return False
        return True
