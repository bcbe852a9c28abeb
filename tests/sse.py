"""Decode server-sent events the way the OpenAI SDKs do (frames, not strings)."""
from typing import Iterable, List


def iter_events(lines: Iterable[str]) -> Iterable[str]:
    """Yield the ``data`` of each event; fail on fields other than data and comments."""
    data = []  # type: List[str]
    for line in lines:
        if line == "":
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # comment (keep-alive)
        field, _, value = line.partition(":")
        assert field == "data", "unexpected SSE field %r" % field
        data.append(value[1:] if value.startswith(" ") else value)
    assert not data, "stream ended inside an event (no blank line)"


def iter_lines(chunks: Iterable[bytes]) -> Iterable[str]:
    """Yield the lines of a byte stream, however it was cut into chunks."""
    pending = b""
    for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line.rstrip(b"\r").decode("utf-8")
    assert pending == b"", "stream ended inside a line"


def read_events(resp) -> List[str]:
    """Return the data of every event of a streamed `requests` response."""
    with resp:
        return list(iter_events(iter_lines(resp.iter_content(chunk_size=None))))
