"""JSON bodies in and out of the views: the request's, read, decoded and validated; ours, rendered.

Clients such as LangChain send ``null`` for every unset option; OpenAI treats
that as "not given", and so do we.

Before any schema sees a body, :func:`parse_json` refuses what no request
may hold and what would break the code after it (R-limits): containers nested
more than ``MAX_DEPTH`` deep (jsonschema and every walker recurse), NaN and
infinite numbers (``json.dumps`` would write ``NaN`` upstream), integers of
more than 20 digits (beyond every 64-bit field, and slow to convert), and
lone UTF-16 surrogates (no UTF-8 encoding exists for them, so echoing or
forwarding one fails). Each is a 400 naming the JSON path where it was found.

Request bodies may come compressed (``Content-Encoding``): OpenAI's Codex CLI
sends ``zstd``. :func:`decode_body` undoes the codings over plain bytes, in
steps of bounded output, so a small body that inflates without end (a "zip
bomb") is refused at ``MAX_BODY_BYTES`` of output before memory grows past it.
"""
import json
import logging
import re
import threading
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from flask import Response, request

from . import schemas, state
from .errors import APIError, InvalidRequest, RequestTooLarge, UnsupportedMediaType

log = logging.getLogger("ollama_gateway")

_JSON = "application/json"


def json_response(body: Dict[str, Any], status: int = 200, headers: Any = None) -> Response:
    """Return a JSON response (compact, UTF-8) without Flask's sorting or pretty-printing."""
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                    status=status, headers=headers, mimetype=_JSON)


def error_response(exc: APIError) -> Response:
    """Return the OpenAI-shaped JSON response for ``exc``."""
    return json_response(exc.to_body(), status=exc.status, headers=exc.headers())


def read_json(schema_name: str) -> Dict[str, Any]:
    """Return the request's JSON object, decoded, top-level nulls removed, validated."""
    limit = state.current().settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge("The request body is larger than %d bytes." % limit)
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise RequestTooLarge("The request body is larger than %d bytes." % limit)
    codings = request.headers.get("Content-Encoding")
    if codings:
        raw = decode_body(raw, codings, limit)
    doc = parse_json(raw)
    if not isinstance(doc, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    doc = {key: value for key, value in doc.items() if value is not None}
    schemas.validate(schema_name, doc)
    return doc


# --- what no JSON body may hold -------------------------------------------------------

#: Arrays and objects may nest this deep, the body itself being level 1.
#: OpenAI's own shapes need 8; client JSON Schemas (tool parameters,
#: response formats) rarely 20.
MAX_DEPTH = 64
#: Most items one array or object may hold (messages, input items, embedding inputs,
#: token ids): far above what any context window takes.
MAX_ITEMS = 16384
#: Integer literals longer than this are refused: every integer field is at
#: most 64 bits, and on Python < 3.11 converting a long literal is quadratic.
MAX_INT_DIGITS = 20
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # pairs were joined by the decoder


class _Refused:
    """A value :func:`parse_json` refuses, left in the decoded tree to find its path."""

    def __init__(self, why: str) -> None:
        self.why = why


def _long_int(literal: str, keep: Callable[[_Refused], _Refused]) -> Any:
    digits = len(literal.lstrip("-"))
    if digits <= MAX_INT_DIGITS:
        return int(literal)
    return keep(_Refused("an integer of %d digits is out of range (at most %d digits)"
                         % (digits, MAX_INT_DIGITS)))


def _short(text: str, limit: int = 200) -> str:
    """Return ``text`` cut to ``limit`` characters and an ellipsis."""
    return text if len(text) <= limit else text[:limit] + "\u2026"


def _path_param(path: List[Union[str, int]]) -> Optional[str]:
    """Return a JSON path as an OpenAI ``param`` (``messages[0].content``), None at the root."""
    out = ""
    for part in path:
        if isinstance(part, str):
            # A key may be what holds the lone surrogate: shown as its escape.
            part = part.encode("utf-8", "backslashreplace").decode("utf-8")
        out += "[%d]" % part if isinstance(part, int) else ("." + part if out else part)
    return _short(out) if out else None


def _refuse(path: List[Union[str, int]], why: str) -> InvalidRequest:
    param = _path_param(path)
    return InvalidRequest("Invalid %s: %s." % ("'%s'" % param if param else "request body", why),
                          param=param, code="invalid_value")


def parse_json(raw: bytes) -> Any:
    """Return the JSON value of a request body, refusing what no request may hold.

    Cheap on ordinary bodies: the tree is walked only if it holds more than
    ``MAX_DEPTH`` brackets, a ``\\u`` escape of a surrogate, or a refused number.

    :raises InvalidRequest: code ``invalid_json`` if it does not parse, else
        ``invalid_value`` naming where it is too deep, not finite, or not Unicode.
    """
    encoding = json.detect_encoding(raw)
    try:
        text = raw.decode(encoding)
        surrogates = "\\ud" in text or "\\uD" in text
    except UnicodeDecodeError:
        # Surrogates encoded as bytes (CESU-8) get a param too; anything else is no JSON.
        try:
            text, surrogates = raw.decode(encoding, "surrogatepass"), True
        except UnicodeDecodeError as exc:
            raise InvalidRequest("We could not parse the JSON body of your request: it is "
                                 "not valid %s (%s)." % (encoding.upper(), exc.reason),
                                 code="invalid_json") from None
    if not text.strip():
        raise InvalidRequest("The request body is empty; expected a JSON object.",
                             code="invalid_json")
    refused = []  # type: List[_Refused]

    def keep(value: _Refused) -> _Refused:
        refused.append(value)
        return value

    def checked_float(literal: str) -> Any:
        value = float(literal)
        if value - value == 0:  # inf - inf is nan, as is nan - nan
            return value
        return keep(_Refused("%s is out of the range of a double" % _short(literal, 40)))
    try:
        doc = json.loads(
            text, parse_constant=lambda literal: keep(_Refused("%s is not a JSON number" % literal)),
            parse_int=lambda literal: int(literal) if len(literal) <= MAX_INT_DIGITS
            else _long_int(literal, keep), parse_float=checked_float)
    except RecursionError:
        raise _refuse(_deep_path(text), "JSON nested more than %d levels deep" % MAX_DEPTH) \
            from None
    except ValueError as exc:
        raise InvalidRequest("We could not parse the JSON body of your request: %s."
                             % _short(str(exc), 120), code="invalid_json") from None
    if type(doc) is _Refused:
        raise _refuse([], doc.why)
    if type(doc) is str and surrogates and _LONE_SURROGATE.search(doc):
        raise _refuse([], "the string holds a lone UTF-16 surrogate")
    if type(doc) in (dict, list):
        if refused or surrogates:
            _walk(doc, bool(refused), surrogates)
        elif len(text) > MAX_ITEMS or text.count("[") + text.count("{") > MAX_DEPTH:
            problem = _shape_problem(doc)
            if problem is _DEEP:
                raise _refuse(_deep_path(text),
                              "JSON nested more than %d levels deep" % MAX_DEPTH)
            if problem is not None:
                raise _refuse(_path_to(doc, problem), "it holds %d items, more than the %d "
                              "allowed" % (len(problem), MAX_ITEMS))
    return doc


_DEEP = object()


def _path_to(doc: Any, target: Any) -> List[Union[str, int]]:
    """Return the path of the container ``target`` (by identity) inside ``doc``."""
    stack = [(doc, [])]  # type: List[Tuple[Any, List[Union[str, int]]]]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        for key, value in (node.items() if type(node) is dict else enumerate(node)):
            if type(value) is dict or type(value) is list:
                stack.append((value, path + [key]))
    return []


def _shape_problem(doc: Any) -> Any:
    """Return ``_DEEP`` if containers in ``doc`` nest more than ``MAX_DEPTH`` levels,
    the first container holding more than ``MAX_ITEMS`` items, else None.

    Level by level, touching each value once and building no paths: the
    common case (many containers, none deep) stays close to ``json.loads``'s
    own cost; the path is found from the text only when it is too deep. Long
    arrays are refused because jsonschema spends ~12 us on each item of a
    union-typed array (a 32 MiB token-id prompt took 49 s).
    """
    level, depth = [doc], 1
    while level:
        if depth > MAX_DEPTH:
            return _DEEP
        below = []  # type: List[Any]
        for node in level:
            if len(node) > MAX_ITEMS:
                return node
            below += [v for v in (node.values() if type(node) is dict else node)
                      if type(v) is dict or type(v) is list]
        level, depth = below, depth + 1
    return None


def _walk(doc: Any, refused: bool, surrogates: bool) -> None:
    """Raise for the first container too deep, refused number or lone surrogate in ``doc``.

    Iterative, so that no depth can exhaust the stack.
    """
    stack = [(doc, 1, [])]  # type: List[Tuple[Any, int, List[Union[str, int]]]]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise _refuse(path, "JSON nested more than %d levels deep" % MAX_DEPTH)
        items = node.items() if type(node) is dict else enumerate(node)
        for key, value in items:
            if surrogates and type(key) is str and _LONE_SURROGATE.search(key):
                raise _refuse(path + [key], "the key holds a lone UTF-16 surrogate, which "
                                            "is not valid Unicode")
            kind = type(value)
            if kind is dict or kind is list:
                stack.append((value, depth + 1, path + [key]))
            elif kind is str:
                if surrogates and _LONE_SURROGATE.search(value):
                    raise _refuse(path + [key], "the string holds a lone UTF-16 surrogate, "
                                                "which is not valid Unicode")
            elif refused and kind is _Refused:
                raise _refuse(path + [key], value.why)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')


def _deep_path(text: str) -> List[Union[str, int]]:
    """Return the path to the first container deeper than ``MAX_DEPTH`` in JSON ``text``.

    For text too deep for the decoder itself; only read up to that container.
    """
    frames = []  # type: List[List[Any]]  # [is_object, key or index, expecting a key]
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            if len(frames) >= MAX_DEPTH:
                break
            frames.append([token == "{", None if token == "{" else 0, token == "{"])
        elif token in "]}":
            if frames:
                frames.pop()
        elif token == ",":
            if frames and frames[-1][0]:
                frames[-1][2] = True
            elif frames:
                frames[-1][1] += 1
        elif token != ":" and frames and frames[-1][0] and frames[-1][2]:
            frames[-1][1], frames[-1][2] = json.loads(token), False
    return [frame[1] for frame in frames]


# --- Content-Encoding ------------------------------------------------------------------------

#: The codings undone, as listed in a 415's message and ``Accept-Encoding``.
ACCEPTED_CODINGS = ("zstd", "gzip", "x-gzip", "deflate", "identity")
#: Bytes of output per decompression call: the unit in which the limit is checked.
_STEP = 64 * 1024
#: urllib3 refuses longer chains (a stack of codings only multiplies the work).
_MAX_CODINGS = 5
#: RFC 8878 3.1.1.1.2: decoders should allow windows of at least 8 MB.
_MIN_ZSTD_WINDOW = 8 * 1024 * 1024
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

_zstandard_lock = threading.Lock()
_zstandard_found = []  # type: List[Any]  # [the module, or None], once looked for


def _zstandard() -> Any:
    """Return the ``zstandard`` module, or None (warned about once) if it is not installed."""
    with _zstandard_lock:
        if not _zstandard_found:
            try:
                import zstandard
            except ImportError:
                zstandard = None
                # Not a start-up error: the gateway serves every other body
                # without it; only zstd ones (Codex CLI) are refused.
                log.warning("a request body came with Content-Encoding: zstd, but the "
                            "zstandard package is not installed; such requests get 415 "
                            "until you install ollama-gateway[zstd]")
            _zstandard_found.append(zstandard)
        return _zstandard_found[0]


def decode_body(raw: bytes, codings: str, limit: int) -> bytes:
    """Return ``raw`` with the codings of a ``Content-Encoding`` value undone.

    The codings are listed in the order they were applied, so they are undone
    from the last. No step produces more than ``limit + 1`` bytes. A body of
    zero bytes has nothing to undo and stays empty.

    :raises UnsupportedMediaType: an unknown coding, too many, or zstd without ``zstandard``.
    :raises RequestTooLarge: a step's output is longer than ``limit``.
    :raises InvalidRequest: the data is not valid for its coding (code ``invalid_body``).
    """
    names = [name.strip().lower() for name in codings.split(",")]
    names = [name for name in names if name and name != "identity"]
    unknown = [name for name in names if name not in _DECODERS]
    if unknown:
        raise _unsupported("We cannot decode a request body with Content-Encoding %r; "
                           "accepted codings: %s." % (unknown[0][:40], ", ".join(_accepted())))
    if len(names) > _MAX_CODINGS:
        raise _unsupported("The request body has %d content codings; at most %d are accepted."
                           % (len(names), _MAX_CODINGS))
    if "zstd" in names and _zstandard() is None:
        raise _unsupported("This gateway cannot decode Content-Encoding zstd: the zstandard "
                           "package is not installed (pip install 'ollama-gateway[zstd]'). "
                           "Send the body uncompressed or as %s." % ", ".join(_accepted()[:-1]))
    body = raw
    for name in reversed(names):
        if body:
            body = _DECODERS[name](body, limit, name)
    return body


def _accepted() -> List[str]:
    """Return the codings this process can undo (zstd only with ``zstandard``)."""
    if _zstandard_found and _zstandard_found[0] is None:
        return [name for name in ACCEPTED_CODINGS if name != "zstd"]
    return list(ACCEPTED_CODINGS)


def _unsupported(message: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(message, accept_encoding=", ".join(_accepted()))


def _too_large(limit: int, coding: str) -> RequestTooLarge:
    return RequestTooLarge("The request body is larger than %d bytes once decoded "
                           "(Content-Encoding %s)." % (limit, coding))


def _corrupt(coding: str, reason: str) -> InvalidRequest:
    return InvalidRequest("The request body could not be decoded as Content-Encoding %s: %s."
                          % (coding, reason[:120]), code="invalid_body")


class _Output:
    """Decompressed pieces, refused as soon as they add up to more than the limit."""

    def __init__(self, limit: int, coding: str) -> None:
        self.limit, self.coding, self.size = limit, coding, 0
        self.pieces = []  # type: List[bytes]

    def room(self) -> int:
        """Return how much the next call may produce: a step, or one byte past the limit."""
        return min(_STEP, self.limit + 1 - self.size)

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self.limit:
            raise _too_large(self.limit, self.coding)
        self.pieces.append(piece)

    def join(self) -> bytes:
        return self.pieces[0] if len(self.pieces) == 1 else b"".join(self.pieces)


def _inflate(source: memoryview, start: int, out: _Output, wbits: int) -> int:
    """Inflate the zlib, gzip or raw deflate stream at ``source[start:]``; return where it ends."""
    inflater = zlib.decompressobj(wbits)
    pos = start
    tail = b""  # type: Any
    while not inflater.eof:
        if not tail:
            # Input goes in by steps as well: unconsumed_tail is a fresh copy
            # of what is left of the input after every call.
            tail = source[pos:pos + _STEP]
            pos += len(tail)
        # max_length bounds the output; what it leaves unread waits in unconsumed_tail.
        piece = inflater.decompress(tail, out.room())
        if not piece and not tail and not inflater.eof:
            raise _corrupt(out.coding, "the compressed data ends early")
        tail = inflater.unconsumed_tail
        out.add(piece)
    return pos - len(inflater.unused_data) - len(tail)


def _gunzip(data: bytes, limit: int, coding: str) -> bytes:
    out = _Output(limit, coding)
    source = memoryview(data)
    try:
        end = _inflate(source, 0, out, 16 + zlib.MAX_WBITS)
        # RFC 1952 2.2: a gzip file may hold several members, read one after another.
        while source[end:end + 2] == b"\x1f\x8b":
            end = _inflate(source, end, out, 16 + zlib.MAX_WBITS)
    except zlib.error as exc:
        raise _corrupt(coding, str(exc)) from None
    if end < len(data):
        raise _corrupt(coding, "there is data after the end of the compressed stream")
    return out.join()


def _is_zlib_header(data: bytes) -> bool:
    """Return whether ``data`` starts with a zlib header (RFC 1950 2.2) without a preset dictionary."""
    return (len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7
            and not data[1] & 0x20 and (data[0] << 8 | data[1]) % 31 == 0)


def _inflate_deflate(data: bytes, limit: int, coding: str) -> bytes:
    # HTTP's deflate is zlib-wrapped (RFC 9110 8.4.1.2), but early servers sent
    # raw deflate; browsers take both by sniffing the two header bytes, as we do.
    out = _Output(limit, coding)
    wbits = zlib.MAX_WBITS if _is_zlib_header(data) else -zlib.MAX_WBITS
    try:
        end = _inflate(memoryview(data), 0, out, wbits)
    except zlib.error as exc:
        raise _corrupt(coding, str(exc)) from None
    if end < len(data):
        raise _corrupt(coding, "there is data after the end of the compressed stream")
    return out.join()


def _unzstd(data: bytes, limit: int, coding: str) -> bytes:
    zstandard = _zstandard()
    out = _Output(limit, coding)
    max_window = max(_MIN_ZSTD_WINDOW, limit)
    frames = _zstd_frames(memoryview(data), coding)
    declared = 0
    for _, content_size, window in frames:
        # The headers' promise is checked first: it is cheap, and the decoder
        # refuses a frame whose content differs from it anyway.
        declared += content_size or 0
        if declared > limit:
            raise _too_large(limit, coding)
        if window > max_window:
            raise RequestTooLarge("The zstd request body asks for a %d-byte window; at most %d "
                                  "is accepted." % (window, max_window))
    decompressor = zstandard.ZstdDecompressor(max_window_size=max_window)
    try:
        for frame, _, _ in frames:
            # Never decompress(): it sizes its output from the frame header.
            with decompressor.stream_reader(frame) as reader:
                while True:
                    piece = reader.read(out.room())
                    if not piece:
                        break
                    out.add(piece)
    except zstandard.ZstdError as exc:
        raise _corrupt(coding, str(exc)) from None
    return out.join()


def _zstd_frames(data: memoryview, coding: str) -> List[Tuple[memoryview, Optional[int], int]]:
    """Return the zstd frames of ``data`` as (bytes, declared content size, window size).

    The stream reader stops quietly where the input ends, so the frame layout
    (RFC 8878 3.1) is walked here to tell a whole stream from a truncated one.
    Skippable frames are left out.
    """
    frames = []  # type: List[Tuple[memoryview, Optional[int], int]]
    pos = 0
    while pos < len(data):
        magic = bytes(data[pos:pos + 4])
        if len(magic) == 4 and magic[1:] == b"\x2a\x4d\x18" and magic[0] & 0xF0 == 0x50:
            if pos + 8 > len(data):
                raise _corrupt(coding, "the compressed data ends early")
            pos += 8 + int.from_bytes(data[pos + 4:pos + 8], "little")
            if pos > len(data):
                raise _corrupt(coding, "the compressed data ends early")
            continue
        if magic != _ZSTD_MAGIC:
            raise _corrupt(coding, "bad frame header" if pos == 0 else
                           "there is data after the end of the compressed stream")
        end, content_size, window = _zstd_frame_end(data, pos, coding)
        frames.append((data[pos:end], content_size, window))
        pos = end
    return frames


def _zstd_frame_end(data: memoryview, start: int, coding: str) -> Tuple[int, Optional[int], int]:
    """Return where the frame at ``start`` ends, its declared content size and its window size."""
    def need(end: int) -> int:
        if end > len(data):
            raise _corrupt(coding, "the compressed data ends early")
        return end

    need(start + 5)
    descriptor = data[start + 4]  # after the 4-byte magic
    if descriptor & 0x08:
        raise _corrupt(coding, "bad frame header")
    single_segment = bool(descriptor & 0x20)
    pos = start + 5
    window = 0
    if not single_segment:
        need(pos + 1)
        base = 1 << (10 + (data[pos] >> 3))
        window = base + (base >> 3) * (data[pos] & 7)
        pos += 1
    pos += (0, 1, 2, 4)[descriptor & 3]  # dictionary id
    size_bytes = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
    content_size = None  # type: Optional[int]
    if size_bytes:
        content_size = int.from_bytes(data[pos:need(pos + size_bytes)], "little")
        content_size += 256 if size_bytes == 2 else 0
        pos += size_bytes
    if single_segment:
        window = content_size or 0
    while True:
        header = int.from_bytes(data[pos:need(pos + 3)], "little")
        kind = header >> 1 & 3
        if kind == 3:
            raise _corrupt(coding, "bad block header")
        pos += 3 + (1 if kind == 1 else header >> 3)  # an RLE block stores one byte
        if header & 1:
            break
    if descriptor & 0x04:
        pos += 4  # content checksum
    return need(pos), content_size, window


_DECODERS = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _inflate_deflate,
    "zstd": _unzstd,
}  # type: Dict[str, Callable[[bytes, int, str], bytes]]
