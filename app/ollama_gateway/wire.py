"""HTTP/1.1 body framing and NDJSON line splitting, over bytes; no I/O.

Ollama streams one JSON object per line in chunked transfer-encoding. The
gateway reads whatever the socket has (one ``recv`` may hold many chunks, or
part of one), so both the chunk framing and the lines are reassembled here.
"""
import json
from typing import Any, Dict, List, Optional

from .errors import UpstreamError


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
                line = self._head + data[pos:nl] if self._head else data[pos:nl]
                self._head = b""
                pos = nl + 1
                if self._trailer:
                    self.done = not line.strip()
                    continue
                size = self._size(line)
                if not size:
                    self._trailer = True
                elif pos + size + 2 <= end:
                    # The usual case: the whole chunk and its CRLF are here.
                    out.append(data[pos:pos + size])
                    pos += size + 2
                else:
                    self._left = size
        return b"".join(out)

    @staticmethod
    def _size(line: bytes) -> int:
        try:
            return int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise FramingError("invalid chunk size %r" % line[:40]) from None


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


def decode_line(line: bytes) -> Dict[str, Any]:
    """Return the object of one native NDJSON line.

    :raises UpstreamError: for an ``{"error": ...}`` line (Ollama reports
        failures this way once its 200 is out) or a line that is not a JSON object.
    """
    try:
        obj = json.loads(line)
    except ValueError:
        raise UpstreamError("Ollama sent a stream line that is not JSON.") from None
    if not isinstance(obj, dict):
        raise UpstreamError("Ollama sent an unexpected stream line.")
    if "error" in obj:
        raise UpstreamError("Ollama reported an error: %s" % obj["error"])
    return obj
