"""Chunked framing and line splitting over arbitrarily cut byte streams."""
import json

import pytest

from ollama_gateway.errors import UpstreamError
from ollama_gateway.wire import Dechunker, FramingError, LineSplitter, decode_line

LINES = [json.dumps({"n": i, "text": "é" * i}).encode() + b"\n" for i in range(5)]
BODY = b"".join(b"%x\r\n%s\r\n" % (len(line), line) for line in LINES) + b"0\r\n\r\n"


def cuts(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(BODY)])
def test_dechunk_and_split_any_cut(size):
    dechunk, split, lines = Dechunker(), LineSplitter(), []
    for piece in cuts(BODY, size):
        lines.extend(split.feed(dechunk.feed(piece)))
    assert dechunk.done
    assert [json.loads(line) for line in lines] == [json.loads(line) for line in LINES]
    assert split.rest() is None


def test_chunk_extensions_and_trailers():
    dechunk = Dechunker()
    out = dechunk.feed(b"5;name=value\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n")
    assert (out, dechunk.done) == (b"hello", True)


def test_stops_at_last_chunk():
    dechunk = Dechunker()
    assert dechunk.feed(b"2\r\nab\r\n0\r\n\r\nGARBAGE") == b"ab"
    assert dechunk.done


@pytest.mark.parametrize("body", [b"zz\r\nab\r\n", b"1" * 5000])
def test_bad_framing(body):
    with pytest.raises(FramingError):
        Dechunker().feed(body)


def test_splitter_keeps_partial_line_and_skips_blank_lines():
    split = LineSplitter()
    assert split.feed(b'{"a":1}\n\n{"b"') == [b'{"a":1}']
    assert split.feed(b':2}\n{"c":3}') == [b'{"b":2}']
    assert split.rest() == b'{"c":3}'


@pytest.mark.parametrize("raw, message", [
    (b'{"error":"model crashed"}', "Ollama reported an error: model crashed"),
    (b'{"broken', "not JSON"),
    (b'[1,2]', "unexpected stream line"),
])
def test_decode_line_failures(raw, message):
    with pytest.raises(UpstreamError, match=message):
        decode_line(raw)


def test_decode_line():
    assert decode_line(b'{"done":false}') == {"done": False}
