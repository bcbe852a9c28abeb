"""Table tests of model names: canonical form, aliases, allow-list, hosts, /v1/models shapes."""
import pytest

from ollama_gateway import translate
from ollama_gateway.errors import ModelNotFound

from ..schema_check import assert_matches

A, B = "http://a:11434", "http://b:11434"


@pytest.mark.parametrize("name, key", [
    pytest.param("llama3.2", "llama3.2:latest", id="default-tag"),
    pytest.param("Llama3.2:Latest", "llama3.2:latest", id="case-insensitive"),
    pytest.param("library/llama3.2", "llama3.2:latest", id="default-namespace"),
    pytest.param("registry.ollama.ai/library/llama3.2:1b", "llama3.2:1b", id="default-registry"),
    pytest.param("user/model", "user/model:latest", id="namespace-kept"),
    pytest.param("hf.co/org/repo:Q4_K_M", "hf.co/org/repo:q4_k_m", id="hf-tag-kept"),
    pytest.param("localhost:5000/m", "localhost:5000/m:latest", id="port-is-not-a-tag"),
])
def test_canonical_model(name, key):
    assert translate.canonical_model(name) == key


@pytest.mark.parametrize("text, seconds", [
    pytest.param("2026-08-01T09:30:12.482915073+02:00", 1785569412, id="offset-nanoseconds"),
    pytest.param("2026-08-01T07:30:12Z", 1785569412, id="utc-z"),
    pytest.param("2026-08-01T02:30:12-05:00", 1785569412, id="negative-offset"),
    pytest.param("yesterday", 0, id="unreadable"),
    pytest.param(None, 0, id="missing"),
])
def test_ollama_time_to_unix(text, seconds):
    assert translate.ollama_time_to_unix(text) == seconds


@pytest.mark.parametrize("model_id, owner", [
    pytest.param("llama3.2:latest", "library", id="plain"),
    pytest.param("user/model:tag", "user", id="user"),
    pytest.param("hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M", "bartowski", id="hf-org"),
])
def test_owned_by(model_id, owner):
    assert translate.owned_by(model_id) == owner


def test_model_object_matches_schema():
    out = translate.ollama_model_to_openai("gpt-4o", {"modified_at": "2026-08-01T07:30:12Z",
                                                      "details": {}})
    assert out == {"id": "gpt-4o", "object": "model", "created": 1785569412,
                   "owned_by": "library"}
    assert_matches("models.model", out)


def mapping(aliases=None, allowed=None, upstreams=None):
    return translate.ModelMap(aliases or {}, allowed, upstreams or {}, A)


# (map, requested name, (ollama model, url))
RESOLVED = [
    pytest.param(mapping(), "llama3.2", ("llama3.2", A), id="plain-default-host"),
    pytest.param(mapping({"gpt-4o": "llama3.2:latest"}), "gpt-4o", ("llama3.2:latest", A),
                 id="alias"),
    pytest.param(mapping({"gpt-4o": "llama3.2:latest"}), "GPT-4o:latest",
                 ("llama3.2:latest", A), id="alias-matched-like-ollama-names"),
    pytest.param(mapping(upstreams={"qwen3": B}), "qwen3:latest", ("qwen3:latest", B),
                 id="model-on-other-host"),
    pytest.param(mapping({"coder": "qwen3"}, upstreams={"qwen3": B}), "coder", ("qwen3", B),
                 id="alias-follows-its-target-host"),
    pytest.param(mapping({"coder": "qwen3"}, upstreams={"coder": B}), "coder", ("qwen3", B),
                 id="alias-own-host"),
    pytest.param(mapping({"coder": "qwen3"}, upstreams={"coder": B}), "qwen3", ("qwen3", A),
                 id="alias-host-does-not-move-target"),
    pytest.param(mapping(allowed=["llama3.2"]), "llama3.2:latest", ("llama3.2:latest", A),
                 id="allowed"),
    pytest.param(mapping({"gpt-4o": "qwen3"}, allowed=["llama3.2"]), "gpt-4o", ("qwen3", A),
                 id="aliases-always-allowed"),
]


@pytest.mark.parametrize("models, name, expected", RESOLVED)
def test_resolve(models, name, expected):
    assert models.resolve(name) == expected


@pytest.mark.parametrize("name", [
    pytest.param("qwen3", id="outside"),
    pytest.param("", id="empty"),
])
def test_outside_allow_list_is_model_not_found(name):
    with pytest.raises(ModelNotFound) as info:
        mapping({"gpt-4o": "qwen3"}, allowed=["llama3.2"]).resolve(name)
    assert (info.value.status, info.value.code, info.value.param) == (404, "model_not_found",
                                                                      "model")


def test_urls_distinct_default_first():
    assert mapping(upstreams={"x": B, "y": B, "z": A}).urls == [A, B]


def tag(name, modified="2026-08-01T07:30:12Z"):
    return {"name": name, "model": name, "modified_at": modified, "details": {}}


def ids(listing):
    assert_matches("models.list", listing)
    return [m["id"] for m in listing["data"]]


# (map, [(url, tags)], listed ids)
LISTINGS = [
    pytest.param(mapping(), [(A, [])], [], id="empty-is-empty-list"),
    pytest.param(mapping(), [(A, [tag("llama3.2:latest"), tag("qwen3:latest")])],
                 ["llama3.2:latest", "qwen3:latest"], id="one-host"),
    pytest.param(mapping({"gpt-4o": "llama3.2"}), [(A, [tag("llama3.2:latest")])],
                 ["llama3.2:latest", "gpt-4o"], id="alias-listed-after-models"),
    pytest.param(mapping({"gpt-4o": "missing"}), [(A, [tag("llama3.2:latest")])],
                 ["llama3.2:latest"], id="alias-without-target-hidden"),
    pytest.param(mapping({"llama3.2": "qwen3"}),
                 [(A, [tag("llama3.2:latest"), tag("qwen3:latest")])],
                 ["qwen3:latest", "llama3.2"], id="alias-shadows-model-of-same-name"),
    pytest.param(mapping(allowed=["qwen3"]),
                 [(A, [tag("llama3.2:latest"), tag("qwen3:latest")])],
                 ["qwen3:latest"], id="allow-list-filters"),
    pytest.param(mapping({"gpt-4o": "llama3.2"}, allowed=["qwen3"]),
                 [(A, [tag("llama3.2:latest"), tag("qwen3:latest")])],
                 ["qwen3:latest", "gpt-4o"], id="allow-list-keeps-aliases"),
    pytest.param(mapping(upstreams={"qwen3": B}),
                 [(A, [tag("llama3.2:latest"), tag("qwen3:latest")]), (B, [tag("qwen3:latest")])],
                 ["llama3.2:latest", "qwen3:latest"],
                 id="two-hosts-model-listed-once-where-routed"),
    pytest.param(mapping({"coder": "qwen3"}, upstreams={"qwen3": B}),
                 [(A, [tag("qwen3:latest")])], [], id="host-down-hides-its-models-and-aliases"),
    pytest.param(mapping(), [(A, [tag("x"), {"details": {}}, tag("x:latest")])], ["x"],
                 id="nameless-and-duplicate-entries-skipped"),
]


@pytest.mark.parametrize("models, hosts, expected", LISTINGS)
def test_openai_list(models, hosts, expected):
    assert ids(models.openai_list(hosts)) == expected


def test_alias_entry_takes_target_dates():
    listing = mapping({"gpt-4o": "llama3.2"}).openai_list(
        [(A, [tag("llama3.2:latest", "2026-08-01T07:30:12Z")])])
    assert listing["data"][1] == {"id": "gpt-4o", "object": "model", "created": 1785569412,
                                  "owned_by": "library"}
