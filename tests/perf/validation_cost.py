"""Per-request validation cost: ``python tests/perf/validation_cost.py``.

Times ``schemas.validate`` (the shortcut for plain requests) and the full
jsonschema validator on a few request shapes, best of 5, with whatever
jsonschema is installed.
"""
import timeit
from importlib.metadata import version

from ollama_gateway import schemas
V = schemas._validator("chat_completions.request")
user = {"role": "user", "content": "Hello there"}
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
         {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]
conv = [{"role": "system", "content": "Use tools."}, user,
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny"}]
img = "data:image/png;base64," + "iVBORw0KGgo" * 90
cases = {
    "plain chat (shortcut)": {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, user], "temperature": 0.7, "max_tokens": 512},
    "minimal chat, full validator": {"model": "m", "messages": [user]},
    "4-message tool conversation": {"model": "m", "messages": conv, "tools": tools, "stream": True, "stream_options": {"include_usage": True}},
    "text + 2 images": {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "Compare"}, {"type": "image_url", "image_url": {"url": img}}, {"type": "image_url", "image_url": {"url": img}}]}]},
    "151 messages + 20 tools": {"model": "m", "messages": [user, {"role": "assistant", "content": "ok"}] * 75 + [user], "tools": tools * 10},
}
print("jsonschema", version("jsonschema"))
for name, doc in cases.items():
    fn = (lambda d=doc: schemas.validate("chat_completions.request", d)) if "shortcut" in name else (lambda d=doc: V.is_valid(d))
    fn()
    n = 20 if "151" in name else 500
    print("%-32s %.3f ms" % (name, min(timeit.repeat(fn, number=n, repeat=5)) / n * 1000))
