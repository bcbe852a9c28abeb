"""Assertions on what the gateway sends, shared by the HTTP and SDK tests."""
import json

from ..schema_check import assert_matches


def assert_error(resp, status, param=None, code=None):
    """Return the error object of ``resp`` after checking its status and OpenAI shape."""
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert_matches("error", body)
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] == param
    if code is not None:
        assert body["error"]["code"] == code
    assert len(body["error"]["message"]) < 400  # a message, never a dump of the input
    return body["error"]


def assert_completion_chunk(chunk, final=False):
    """Check one streamed ``text_completion`` chunk against ``completions.response``.

    The bundled schema describes the whole response; OpenAI's streams send
    ``finish_reason: null`` before the last text chunk and ``usage: null`` on
    every chunk but the usage one, which the schema does not allow. Those two
    nulls are checked here and the rest of the chunk against the schema.
    """
    if isinstance(chunk, str):
        chunk = json.loads(chunk)
    assert chunk["object"] == "text_completion"
    doc = dict(chunk)
    if doc.get("usage", 0) is None:
        del doc["usage"]
    choices = []
    for choice in chunk["choices"]:
        if not final:
            assert choice["finish_reason"] is None, choice
            choice = dict(choice, finish_reason="stop")
        choices.append(choice)
    assert_matches("completions.response", dict(doc, choices=choices))
    return chunk
