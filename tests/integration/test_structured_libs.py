"""Structured-output libraries that force a tool call, against the gateway under
gunicorn (deploy config) with the Ollama emulator behind it.

LangChain's ``with_structured_output(method="function_calling")`` and
instructor's TOOLS mode send ``tool_choice`` naming their one tool; the gateway
enforces it with a native ``format`` instead of native tools.

Both libraries need Python >= 3.9: only there are they test requirements (see
the ``test`` extra), so only on 3.8 may they be missing. instructor runs in
the venv ``make test`` makes for it (see ``instructor_probe.py``).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from ..servers import ROOT

if sys.version_info < (3, 9):
    langchain_openai = pytest.importorskip("langchain_openai")
else:
    import langchain_openai

INSTRUCTOR_PYTHON = Path(os.environ.get("OLLAMA_GATEWAY_TEST_INSTRUCTOR_PYTHON",
                                        str(ROOT / ".venv" / "instructor" / "bin" / "python")))

pytestmark = pytest.mark.integration


class Person(pydantic.BaseModel):
    """A person somebody made up."""

    name: str
    age: int


def person_prompt():
    return [{"role": "user", "content": "Invent a person"}]


def assert_forced_request(recorded):
    """The tool reached Ollama as a format constraint, never as native tools."""
    sent = recorded.json
    assert "tools" not in sent
    assert set(sent["format"]["properties"]) == {"name", "age"}
    assert sent["messages"][0]["role"] == "system" and "Person" in sent["messages"][0]["content"]


def test_langchain_with_structured_output_function_calling(gunicorn_url, ollama):
    model = langchain_openai.ChatOpenAI(base_url=gunicorn_url, api_key="unused", model="llama3.2",
                                        max_retries=0, timeout=20)
    structured = model.with_structured_output(Person, method="function_calling")
    person = structured.invoke("Invent a person")
    assert isinstance(person, Person)
    assert (person.name, person.age) == ("example", 42)  # the emulator's plausible values
    recorded = ollama.last("/api/chat")
    assert_forced_request(recorded)
    assert recorded.json["stream"] is False


def test_langchain_with_structured_output_streamed(gunicorn_url, ollama):
    model = langchain_openai.ChatOpenAI(base_url=gunicorn_url, api_key="unused", model="llama3.2",
                                        max_retries=0, timeout=20, streaming=True)
    structured = model.with_structured_output(Person, method="function_calling")
    person = structured.invoke("Invent a person")
    assert isinstance(person, Person)
    recorded = ollama.last("/api/chat")
    assert_forced_request(recorded)
    assert recorded.json["stream"] is True


def run_instructor(base_url, case):
    """Return what instructor built from the gateway's answer, run in its own venv."""
    if not INSTRUCTOR_PYTHON.exists():
        if sys.version_info < (3, 9):
            pytest.skip("instructor needs Python 3.9+")
        pytest.fail("no instructor venv at %s: run make test (or set "
                    "OLLAMA_GATEWAY_TEST_INSTRUCTOR_PYTHON)" % INSTRUCTOR_PYTHON)
    result = subprocess.run([str(INSTRUCTOR_PYTHON), str(Path(__file__).with_name(
        "instructor_probe.py")), base_url, case], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


def test_instructor_tools_mode(gunicorn_url, ollama):
    person = run_instructor(gunicorn_url, "person")
    assert person["type"] == "Person"
    assert person["value"] == {"name": "example", "age": 42}  # the emulator's plausible values
    assert_forced_request(ollama.last("/api/chat"))
    assert len(ollama.requests) == 1  # valid at the first try: no re-ask


def test_instructor_tools_mode_schema_reaches_ollama_whole(gunicorn_url, ollama):
    pet = run_instructor(gunicorn_url, "pet")
    assert pet["value"]["species"] == "cat"
    sent_format = ollama.last("/api/chat").json["format"]
    assert json.dumps(sent_format["properties"]["species"]["enum"]) == '["cat", "dog"]'
