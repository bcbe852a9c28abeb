"""Server-sent events as the OpenAI SDKs read them.

Each event is ``data: <one-line JSON>`` and a blank line; a finished stream
ends with ``data: [DONE]``. Once headers are out the status cannot change, so
a failure becomes one ``data: {"error": {...}}`` event (the SDKs raise on it)
and the stream ends without ``[DONE]``. Never reads ``flask.request`` and
never calls Ollama: everything arrives as arguments.
"""
import json
import logging
from typing import Any, Callable, Dict, Iterable, Iterator, List

from .errors import APIError, UpstreamError
from .wire import decode_line

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"

#: Headers for every SSE response. ``X-Accel-Buffering: no`` makes nginx pass
#: each event on at once even where its config buffers responses.
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def frame(obj: Dict[str, Any]) -> bytes:
    """Return one SSE event carrying ``obj`` as compact JSON."""
    return b"data: " + _dumps(obj).encode("utf-8") + b"\n\n"


def sse_events(batches: Iterable[List[bytes]], translator: Any,
               close: Callable[[], None], meter: Any = None) -> Iterator[bytes]:
    """Yield the SSE bytes for a native stream: one write per batch of lines.

    :param batches: native NDJSON lines as they arrive; an empty list means
        the upstream is silent and a keep-alive comment is due.
    :param translator: has ``feed(native) -> [chunk, ...]`` and ``done``, and
        may have ``fast_chunk(line) -> bytes | None`` (a whole frame's bytes
        after ``data: ``, or for a translator with ``encode`` the whole frame;
        ``b""`` for nothing, ``None`` to take the ``feed`` path), ``encode``,
        ``trailer`` and ``fail(exc) -> [event, ...]``.
    :param close: releases the upstream response; called on every exit path,
        including a client that went away (the server then closes this
        generator, which raises ``GeneratorExit`` at the pending ``yield``).
    :param meter: if given, told what happened, as it happens:
        ``started()``, ``first_line()`` (the first native line),
        ``counted(native)`` (the final object, before it is translated),
        ``failed(exc)`` and, last of all, ``ended()`` (after ``close``): a
        meter that got neither ``counted`` nor ``failed`` lost its client.
    """
    fast = getattr(translator, "fast_chunk", None)
    # A translator may frame its own events (the Responses API's ``event:``
    # lines), end without [DONE], and turn a failure into its own terminal events.
    encode = getattr(translator, "encode", None)
    head, tail = (b"", b"") if encode else (b"data: ", b"\n\n")
    encode = encode or frame
    trailer = getattr(translator, "trailer", DONE)
    fail = getattr(translator, "fail", lambda exc: [exc.to_body()])
    unseen = meter is not None  # the first line is still to be noted
    if meter is not None:
        meter.started()
    try:
        for batch in batches:
            if not batch:
                # A real write: it keeps proxies from timing out, and it is how
                # a gone client is noticed while Ollama is still thinking.
                yield KEEPALIVE
                continue
            if unseen:
                unseen = False
                meter.first_line()
            out = []
            try:
                for line in batch:
                    chunk = fast(line) if fast is not None else None
                    if chunk is not None:
                        if chunk:
                            out.append(head + chunk + tail)
                        continue
                    native = decode_line(line)
                    if meter is not None and native.get("done"):
                        meter.counted(native)
                    out.extend(encode(c) for c in translator.feed(native))
                    if translator.done:
                        out.append(trailer)
                        return
            finally:
                if out:  # what came before a failing line still goes out first
                    yield b"".join(out)
        raise UpstreamError("Ollama ended the stream before it finished.")
    except APIError as exc:
        log.warning("stream failed after headers were sent: %s", exc.message)
        if meter is not None:
            meter.failed(exc)
        yield b"".join(encode(e) for e in fail(exc))
    except Exception:  # a bug of ours must still reach the client as an error event
        log.exception("stream failed after headers were sent")
        error = APIError("The gateway failed while streaming.")
        if meter is not None:
            meter.failed(error)
        yield b"".join(encode(e) for e in fail(error))
    finally:
        try:
            close()
        finally:
            if meter is not None:
                meter.ended()
