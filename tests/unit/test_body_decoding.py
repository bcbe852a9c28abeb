"""decode_body: every Content-Encoding over plain bytes, its limits, bombs and bad input."""
import functools
import gzip
import struct
import tracemalloc
import zlib

import pytest
import zstandard

from ollama_gateway.body import decode_body
from ollama_gateway.errors import InvalidRequest, RequestTooLarge, UnsupportedMediaType

MiB = 1024 * 1024
JSON = b'{"model":"llama3.2","messages":[{"role":"user","content":"' + b"Hi there. " * 300 + b'"}]}'


@functools.lru_cache(maxsize=None)
def deflate_zeros(size, wrapper):
    """Return ``size`` zero bytes (a multiple of 1 MiB) deflated into one stream.

    :param wrapper: ``"gzip"``, ``"zlib"`` or ``"raw"``.

    A full flush resets the compressor, so every middle MiB compresses to the
    same bytes: 1 GiB is built in a few milliseconds, not the ~8 s of feeding
    it all to zlib, and is still a single valid stream (see the round-trip test).
    """
    block = bytes(MiB)
    count = size // MiB
    assert count >= 3 and size % MiB == 0
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = deflater.compress(block) + deflater.flush(zlib.Z_FULL_FLUSH)
    middle = deflater.compress(block) + deflater.flush(zlib.Z_FULL_FLUSH)
    last = deflater.compress(block) + deflater.flush()
    stream = first + middle * (count - 2) + last
    if wrapper == "raw":
        return stream
    if wrapper == "zlib":
        adler = 1
        for _ in range(count):
            adler = zlib.adler32(block, adler)
        return b"\x78\xda" + stream + struct.pack(">I", adler)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + stream
            + struct.pack("<II", crc, size & 0xFFFFFFFF))


@functools.lru_cache(maxsize=None)
def zstd_zeros(size, declare_size=False):
    """Return ``size`` zero bytes zstd-compressed, fed in 1 MiB pieces.

    Without ``declare_size`` the frame header does not say how big the content
    is, so only decoding in bounded steps can stop it.
    """
    block = bytes(MiB)
    compressor = zstandard.ZstdCompressor()
    chunks = compressor.compressobj(size=size) if declare_size else compressor.compressobj()
    parts = [chunks.compress(block) for _ in range(size // MiB)]
    return b"".join(parts) + chunks.flush()


def zstd(raw, **kwargs):
    return zstandard.ZstdCompressor(**kwargs).compress(raw)


def raw_deflate(raw):
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(raw) + deflater.flush()


SKIPPABLE = b"\x50\x2a\x4d\x18" + struct.pack("<I", 5) + b"hello"


@pytest.mark.parametrize("codings, encoded", [
    pytest.param("identity", JSON, id="identity"),
    pytest.param("gzip", gzip.compress(JSON), id="gzip"),
    pytest.param("x-gzip", gzip.compress(JSON), id="x-gzip"),
    pytest.param("  GZip ", gzip.compress(JSON), id="case-and-space"),
    pytest.param("gzip", gzip.compress(JSON[:100]) + gzip.compress(JSON[100:]),
                 id="gzip-two-members"),
    pytest.param("deflate", zlib.compress(JSON), id="deflate-zlib"),
    pytest.param("deflate", raw_deflate(JSON), id="deflate-raw"),
    pytest.param("zstd", zstd(JSON), id="zstd"),
    pytest.param("zstd", zstd(JSON, write_checksum=True, write_content_size=False),
                 id="zstd-checksum-no-size"),
    pytest.param("zstd", zstd(JSON[:100]) + SKIPPABLE + zstd(JSON[100:]),
                 id="zstd-two-frames-and-skippable"),
    pytest.param("gzip, zstd", zstd(gzip.compress(JSON)), id="gzip-then-zstd"),
    pytest.param("zstd,deflate", zlib.compress(zstd(JSON)), id="zstd-then-deflate"),
    pytest.param("identity, gzip, identity", gzip.compress(JSON), id="identity-in-a-list"),
    pytest.param("gzip, gzip", gzip.compress(gzip.compress(JSON)), id="gzip-twice"),
])
def test_every_coding_decodes(codings, encoded):
    assert decode_body(encoded, codings, 1 * MiB) == JSON


def test_identity_returns_the_same_object():
    assert decode_body(JSON, "identity", 10) is JSON


@pytest.mark.parametrize("codings", ["gzip", "deflate", "zstd", "gzip, zstd"])
def test_empty_body_stays_empty(codings):
    assert decode_body(b"", codings, 100) == b""


ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": raw_deflate,
    "zstd": zstd,
    "zstd-no-size": lambda raw: zstd(raw, write_content_size=False),
}


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("size", [1, 65535, 65536, 65537, 300000])
def test_limit_is_inclusive(name, size):
    raw = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    encoded = ENCODERS[name](raw)
    coding = name.replace("-raw", "").replace("-no-size", "")
    assert decode_body(encoded, coding, size) == raw
    with pytest.raises(RequestTooLarge) as info:
        decode_body(encoded, coding, size - 1)
    assert info.value.status == 413 and info.value.code == "request_too_large"
    assert str(size - 1) in info.value.message


def test_limit_holds_for_every_layer_of_a_stack():
    raw = bytes(range(256)) * 1000
    encoded = zstd(gzip.compress(raw))
    assert decode_body(encoded, "gzip, zstd", len(raw)) == raw
    with pytest.raises(RequestTooLarge):
        decode_body(encoded, "gzip, zstd", len(raw) - 1)
    # The middle layer (gzip data) is a body too: a 1-byte body gzipped is 21
    # bytes, more than a 1-byte cap, though the result would fit.
    with pytest.raises(RequestTooLarge):
        decode_body(zstd(gzip.compress(b"x")), "gzip, zstd", 1)


def test_many_empty_gzip_members_cost_no_copies():
    members = gzip.compress(b"") * 50000  # 1 MB of headers and trailers
    assert decode_body(members + gzip.compress(JSON), "gzip", MiB) == JSON


@pytest.mark.parametrize("wrapper", ["gzip", "zlib", "raw"])
def test_the_bomb_helper_makes_one_valid_stream(wrapper):
    bomb = deflate_zeros(5 * MiB, wrapper)
    wbits = {"gzip": 31, "zlib": 15, "raw": -15}[wrapper]
    inflater = zlib.decompressobj(wbits)
    assert inflater.decompress(bomb) == bytes(5 * MiB)
    assert inflater.eof and not inflater.unused_data


BOMB_SIZE = 1024 * MiB


@pytest.fixture(scope="module")
def bombs():
    return {
        "gzip": (deflate_zeros(BOMB_SIZE, "gzip"), "gzip"),
        "deflate-zlib": (deflate_zeros(BOMB_SIZE, "zlib"), "deflate"),
        "deflate-raw": (deflate_zeros(BOMB_SIZE, "raw"), "deflate"),
        "zstd-no-size": (zstd_zeros(BOMB_SIZE), "zstd"),
        "zstd-size-declared": (zstd_zeros(BOMB_SIZE, declare_size=True), "zstd"),
        "gzip-inside-zstd": (zstd(deflate_zeros(BOMB_SIZE, "gzip")), "gzip, zstd"),
    }


@pytest.mark.parametrize("name", ["gzip", "deflate-zlib", "deflate-raw", "zstd-no-size",
                                  "zstd-size-declared", "gzip-inside-zstd"])
def test_bombs_are_refused_within_bounded_memory(bombs, name):
    bomb, coding = bombs[name]
    assert len(bomb) < 1100000  # 1 GiB of zeros in about 1 MB or (much) less
    cap = 1 * MiB
    tracemalloc.start()
    try:
        with pytest.raises(RequestTooLarge):
            decode_body(bomb, coding, cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * cap, "peak %d bytes while refusing a %d-byte cap" % (peak, cap)


def test_zstd_window_beyond_what_we_allow_is_413():
    # A frame header asking for a 1 GiB window (window descriptor 0xA0: 2^(10+20)).
    frame = b"\x28\xb5\x2f\xfd\x00\xa0" + b"\x01\x00\x00"  # one empty last raw block
    assert zstandard.get_frame_parameters(frame).window_size == 1 << 30
    with pytest.raises(RequestTooLarge) as info:
        decode_body(frame, "zstd", MiB)
    assert "window" in info.value.message


def _flip(blob, index):
    return blob[:index] + bytes([blob[index] ^ 0xFF]) + blob[index + 1:]


GZ, ZL, ZS = gzip.compress(JSON), zlib.compress(JSON), zstd(JSON, write_checksum=True)


@pytest.mark.parametrize("codings, encoded", [
    pytest.param("gzip", b"not gzip at all", id="gzip-bad-header"),
    pytest.param("gzip", GZ[:len(GZ) // 2], id="gzip-truncated"),
    pytest.param("gzip", GZ[:-4], id="gzip-no-trailer"),
    pytest.param("gzip", GZ + b"garbage", id="gzip-trailing-garbage"),
    pytest.param("gzip", GZ[:-8] + b"\x00" * 8, id="gzip-bad-crc"),
    pytest.param("x-gzip", JSON, id="x-gzip-plain-json"),
    pytest.param("deflate", b"\x78\x9c" + b"\xff" * 20, id="deflate-bad-data"),
    pytest.param("deflate", ZL[:len(ZL) // 2], id="deflate-truncated"),
    pytest.param("deflate", ZL + b"\x00", id="deflate-trailing-garbage"),
    pytest.param("deflate", ZL[:-4] + b"\x00\x00\x00\x00", id="deflate-bad-adler"),
    pytest.param("zstd", b"\x28\xb5\x2f", id="zstd-shorter-than-magic"),
    pytest.param("zstd", JSON, id="zstd-plain-json"),
    pytest.param("zstd", ZS[:len(ZS) // 2], id="zstd-truncated"),
    pytest.param("zstd", ZS[:-1], id="zstd-checksum-cut"),
    pytest.param("zstd", ZS + b"\x00", id="zstd-one-trailing-byte"),
    pytest.param("zstd", ZS + b"garbage!", id="zstd-trailing-garbage"),
    pytest.param("zstd", _flip(ZS, len(ZS) - 2), id="zstd-bad-checksum"),
    pytest.param("zstd", _flip(ZS, 4), id="zstd-bad-descriptor"),
    pytest.param("zstd", _flip(ZS, len(ZS) // 2), id="zstd-corrupt-block"),
    pytest.param("zstd", SKIPPABLE[:-1], id="zstd-skippable-cut"),
    pytest.param("gzip, zstd", zstd(b"not gzip"), id="inner-layer-corrupt"),
])
def test_corrupt_input_is_400_naming_the_coding(codings, encoded):
    with pytest.raises(InvalidRequest) as info:
        decode_body(encoded, codings, MiB)
    error = info.value
    assert (error.status, error.type, error.code) == (400, "invalid_request_error", "invalid_body")
    assert "Content-Encoding " in error.message
    assert len(error.message) < 400


@pytest.mark.parametrize("codings, named", [
    ("br", "br"), ("compress", "compress"), ("x-compress", "x-compress"),
    ("nonsense", "nonsense"), ("gzip;q=1", "gzip;q=1"), ("gzip, br", "br"),
    ("BR", "br"), ("zstd, " + "x" * 500, "x" * 40),
])
def test_unknown_coding_is_415(codings, named):
    with pytest.raises(UnsupportedMediaType) as info:
        decode_body(gzip.compress(JSON), codings, MiB)
    error = info.value
    assert (error.status, error.type, error.code, error.retryable) == (
        415, "invalid_request_error", "unsupported_content_encoding", False)
    assert repr(named) in error.message
    for accepted in ("zstd", "gzip", "deflate", "identity"):
        assert accepted in error.message
    assert len(error.message) < 400
    assert error.headers() == {"x-should-retry": "false",
                               "Accept-Encoding": "zstd, gzip, x-gzip, deflate, identity"}


def test_too_many_codings_is_415():
    encoded = JSON
    for _ in range(6):
        encoded = gzip.compress(encoded)
    assert decode_body(gzip.compress(gzip.compress(JSON)), "gzip," * 2, MiB) == JSON
    with pytest.raises(UnsupportedMediaType) as info:
        decode_body(encoded, ", ".join(["gzip"] * 6), MiB)
    assert "at most 5" in info.value.message
