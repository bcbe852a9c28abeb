"""Per-request validation cost: ``python tests/perf/validation_cost.py``.

Times ``schemas.validate`` (the shortcut for plain requests) and the full
jsonschema validator on a few request shapes, best of 5, with whatever
jsonschema is installed. The Responses rows use a request shaped like the
Codex CLI's (``CODEX``); ``--profile`` prints which parts of the schema the
full validation of it spends its time in.
"""
import sys
import timeit

from ollama_gateway import schemas

try:
    from importlib.metadata import version
except ImportError:  # Python < 3.8
    from importlib_metadata import version  # type: ignore

V = schemas._validator("chat_completions.request")
R = schemas._validator("responses.request")
user = {"role": "user", "content": "Hello there"}
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
         {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]
conv = [{"role": "system", "content": "Use tools."}, user,
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny"}]
img = "data:image/png;base64," + "iVBORw0KGgo" * 90


# -- a Responses request as the Codex CLI sends it ------------------------------

def _function(name: str, properties: dict, required: list) -> dict:
    return {"type": "function", "name": name, "description": "Runs %s. " % name * 6,
            "strict": False, "parameters": {"type": "object", "properties": properties,
                                            "required": required, "additionalProperties": False}}


STRING = {"type": "string"}
GRAMMAR = "\n".join([  # ~2 KB of lark, like Codex's apply_patch grammar
    'start: begin_patch hunk+ end_patch',
    'begin_patch: "*** Begin Patch" LF',
    'end_patch: "*** End Patch" LF?',
    'hunk: add_hunk | delete_hunk | update_hunk',
    'add_hunk: "*** Add File: " filename LF add_line+',
    'delete_hunk: "*** Delete File: " filename LF',
    'update_hunk: "*** Update File: " filename LF change_move? change?',
    'filename: /(.+)/',
    'add_line: "+" /(.*)/ LF -> line',
    'change_move: "*** Move to: " filename LF',
    'change: (change_context | change_line)+ eof_line?',
    'change_context: ("@@" | "@@ " /(.+)/) LF',
    'change_line: ("+" | "-" | " ") /(.*)/ LF',
    'eof_line: "*** End of File" LF',
    '%import common.LF',
] * 4)
CODEX_TOOLS = [
    _function("shell", {"command": {"type": "array", "items": STRING}, "workdir": STRING,
                        "timeout_ms": {"type": "number"}, "justification": STRING}, ["command"]),
    _function("read_file", {"path": STRING, "offset": {"type": "integer"},
                            "limit": {"type": "integer"}}, ["path"]),
    _function("list_dir", {"path": STRING, "depth": {"type": "integer"}}, ["path"]),
    _function("grep_files", {"pattern": STRING, "include": STRING, "path": STRING,
                             "limit": {"type": "integer"}}, ["pattern"]),
    _function("update_plan", {"explanation": STRING, "plan": {"type": "array", "items": {
        "type": "object", "properties": {"step": STRING, "status": {
            "type": "string", "enum": ["pending", "in_progress", "completed"]}},
        "required": ["step", "status"], "additionalProperties": False}}}, ["plan"]),
    _function("view_image", {"path": STRING}, ["path"]),
    _function("write_stdin", {"session_id": {"type": "integer"}, "chars": STRING}, ["session_id"]),
    _function("exec_command", {"cmd": STRING, "yield_time_ms": {"type": "integer"}}, ["cmd"]),
    _function("list_mcp_resources", {"server": STRING, "cursor": STRING}, []),
    {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.",
     "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR}},
    {"type": "web_search", "external_web_access": False},
    {"type": "namespace", "name": "mcp__docs", "description": "Docs server tools.", "tools": [
        {"type": "function", "name": n, "description": "Docs " + n, "strict": False,
         "parameters": {"type": "object", "properties": {"q": STRING}, "required": ["q"]}}
        for n in ("search", "fetch", "list")]},
]


def _text(role: str, text: str) -> dict:
    kind = "output_text" if role == "assistant" else "input_text"
    part = {"type": kind, "text": text}
    if kind == "output_text":
        part.update(annotations=[], logprobs=[])  # required by the spec
    return {"type": "message", "role": role, "content": [part]}


def _codex_input() -> list:
    items = [_text("developer", "<permissions instructions>sandbox: workspace-write</permissions"
                                " instructions>" * 20)]
    items += [_text("user", "<environment_context>cwd: /repo</environment_context>"),
              _text("user", "Fix the failing test in tests/test_app.py")]
    items.append({"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAA" + "x" * 1500,
                  "summary": [{"type": "summary_text", "text": "Looking at the test."}]})
    for i, (name, args, out) in enumerate([
            ("shell", '{"command":["bash","-lc","pytest -x"]}', "1 failed\n" * 40),
            ("read_file", '{"path":"tests/test_app.py"}', "def test():\n    ...\n" * 60),
            ("grep_files", '{"pattern":"def handler"}', "app.py:12\n" * 10),
            ("shell", '{"command":["bash","-lc","git diff"]}', "+x\n-y\n" * 50)]):
        items.append({"type": "function_call", "call_id": "call_%d" % i, "name": name,
                      "arguments": args})
        items.append({"type": "function_call_output", "call_id": "call_%d" % i, "output": out})
        if i == 1:
            items.append({"type": "reasoning", "id": "rs_2", "encrypted_content": "gAAAA" + "y" * 900,
                          "summary": []})
    for role, text in (("assistant", "The handler returns None."), ("user", "Go ahead."),
                       ("assistant", "Patched; tests pass."), ("user", "Thanks, commit it.")):
        message = _text(role, text)
        if role == "assistant":
            message.update(id="msg_%d" % len(items), status="completed")  # required by the spec
        items.append(message)
    return items


CODEX = {
    "model": "gpt-5-codex", "instructions": "You are Codex, a coding agent. " * 270,
    "input": _codex_input(), "tools": CODEX_TOOLS, "tool_choice": "auto",
    "parallel_tool_calls": False, "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False, "stream": True, "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199-session", "text": {"verbosity": "medium"},
}

cases = {
    "plain chat (shortcut)": ("chat_completions.request", {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, user], "temperature": 0.7, "max_tokens": 512}),
    "minimal chat, full validator": ("chat_completions.request", {"model": "m", "messages": [user]}),
    "4-message tool conversation": ("chat_completions.request", {"model": "m", "messages": conv, "tools": tools, "stream": True, "stream_options": {"include_usage": True}}),
    "text + 2 images": ("chat_completions.request", {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "Compare"}, {"type": "image_url", "image_url": {"url": img}}, {"type": "image_url", "image_url": {"url": img}}]}]}),
    "151 messages + 20 tools": ("chat_completions.request", {"model": "m", "messages": [user, {"role": "assistant", "content": "ok"}] * 75 + [user], "tools": tools * 10}),
    "responses: input 'hi'": ("responses.request", {"model": "m", "input": "hi"}),
    "responses: Codex-style request": ("responses.request", CODEX),
    "responses: Codex, input only": ("responses.request", {"model": "m", "input": CODEX["input"]}),
    "responses: Codex, tools only": ("responses.request", {"model": "m", "tools": CODEX["tools"]}),
}


def main() -> None:
    print("jsonschema", version("jsonschema"), "python", sys.version.split()[0])
    assert R.is_valid(CODEX), schemas.validate("responses.request", CODEX)
    for name, (schema, doc) in cases.items():
        full = schemas._validator(schema)
        fn = (lambda d=doc: schemas.validate(schema, d)) if "shortcut" in name else (lambda d=doc, f=full: f.is_valid(d))
        fn()
        n = 20 if "151" in name or "Codex" in name else 500
        print("%-34s %.3f ms" % (name, min(timeit.repeat(fn, number=n, repeat=5)) / n * 1000))
    if "--profile" in sys.argv:
        import cProfile
        import pstats
        profile = cProfile.Profile()
        profile.runcall(lambda: [R.is_valid(CODEX) for _ in range(20)])
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
