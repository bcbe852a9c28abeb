"""HTTP/1.1 body framing and NDJSON line splitting, over bytes; no I/O.

Ollama streams one JSON object per line in chunked transfer-encoding. The
gateway reads whatever the socket has (one ``recv`` may hold many chunks, or
part of one), so both the chunk framing and the lines are reassembled here.
"""
from typing import List, Optional


class FramingError(ValueError):
    """The body does not follow HTTP/1.1 chunked framing."""


class Dechunker:
    """Decodes a chunked body fed in arbitrary pieces; :attr:`done` after the last chunk."""

    def __init__(self) -> None:
        self.done = False
        self._left = 0          # payload bytes still due in the current chunk
        self._crlf = 0          # bytes of the CRLF after a chunk's payload still due
        self._head = b""        # an incomplete chunk-size line
        self._trailer = False   # reading trailers after the zero-size chunk

    def feed(self, data: bytes) -> bytes:
        """Return the payload bytes contained in ``data``."""
        out = []
        pos, end = 0, len(data)
        while pos < end and not self.done:
            if self._left:
                take = min(self._left, end - pos)
                out.append(data[pos:pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._crlf = 2
            elif self._crlf:
                skip = min(self._crlf, end - pos)
                pos += skip
                self._crlf -= skip
            else:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    self._head += data[pos:]
                    if len(self._head) > 4096:
                        raise FramingError("chunk-size line too long")
                    break
                line = self._head + data[pos:nl]
                self._head = b""
                pos = nl + 1
                if self._trailer:
                    self.done = not line.strip()
                    continue
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise FramingError("invalid chunk size %r" % line[:40]) from None
                if size:
                    self._left = size
                else:
                    self._trailer = True
        return b"".join(out)


class LineSplitter:
    """Splits a byte stream into complete lines, keeping a partial last line."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> List[bytes]:
        """Return the non-blank complete lines that ``data`` finishes."""
        if self._pending:
            data = self._pending + data
        lines = data.split(b"\n")
        self._pending = lines.pop()
        return [line for line in lines if line.strip()]

    def rest(self) -> Optional[bytes]:
        """Return an unterminated last line, if any, at the end of the body."""
        rest, self._pending = self._pending, b""
        return rest if rest.strip() else None
