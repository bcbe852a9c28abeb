"""Settings for model aliases, the allow-list and several hosts: forms, precedence, errors."""
import json

import pytest
from flask import Flask

from ollama_gateway import OllamaGateway
from ollama_gateway.config import KEYS, ConfigError, load_settings

P = "OLLAMA_GATEWAY_"


def test_defaults():
    conf = load_settings({}, {})
    assert conf.model_aliases == {} and conf.allowed_models is None and conf.upstreams == {}


def test_keys_listed():
    for name in ("MODEL_ALIASES", "MODEL_ALIASES_FILE", "ALLOWED_MODELS", "ALLOWED_MODELS_FILE",
                 "UPSTREAMS", "UPSTREAMS_FILE", "NUM_CTX_BY_MODEL_FILE"):
        assert P + name in KEYS


# (environment, expected settings fields)
FORMS = [
    pytest.param({P + "MODEL_ALIASES": '{"gpt-4o": " llama3.2:latest "}'},
                 {"model_aliases": {"gpt-4o": "llama3.2:latest"}}, id="aliases-json"),
    pytest.param({P + "ALLOWED_MODELS": '["llama3.2", "qwen3"]'},
                 {"allowed_models": ("llama3.2", "qwen3")}, id="allowed-json"),
    pytest.param({P + "ALLOWED_MODELS": "llama3.2, qwen3"},
                 {"allowed_models": ("llama3.2", "qwen3")}, id="allowed-comma-separated"),
    pytest.param({P + "ALLOWED_MODELS": ""}, {"allowed_models": None}, id="allowed-empty-is-unset"),
    pytest.param({P + "UPSTREAMS": '{"qwen3": "gpu2", "bge": "https://emb.internal/ollama/"}'},
                 {"upstreams": {"qwen3": "http://gpu2:11434",
                                "bge": "https://emb.internal:443/ollama"}},
                 id="upstreams-parsed-like-OLLAMA_HOST"),
    pytest.param({P + "NUM_CTX_BY_MODEL": '{"qwen3:latest": "4096"}'},
                 {"num_ctx_by_model": {"qwen3:latest": 4096}}, id="num-ctx-map"),
]


@pytest.mark.parametrize("environ, expected", FORMS)
def test_forms(environ, expected):
    conf = load_settings(environ, {})
    assert {field: getattr(conf, field) for field in expected} == expected


def test_app_config_takes_python_values_and_beats_env():
    conf = load_settings({P + "MODEL_ALIASES": '{"a": "b"}'},
                         {P + "MODEL_ALIASES": {"gpt-4o": "llama3.2"},
                          P + "ALLOWED_MODELS": ["qwen3"]})
    assert conf.model_aliases == {"gpt-4o": "llama3.2"}
    assert conf.allowed_models == ("qwen3",)


def test_file_forms(tmp_path):
    aliases = tmp_path / "aliases.json"
    aliases.write_text(json.dumps({"gpt-4o": "llama3.2"}))
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps({"qwen3": "http://10.0.0.2:11434"}))
    allowed = tmp_path / "allowed.json"
    allowed.write_text(json.dumps(["qwen3"]))
    conf = load_settings({P + "MODEL_ALIASES_FILE": str(aliases),
                          P + "ALLOWED_MODELS_FILE": str(allowed)},
                         {P + "UPSTREAMS_FILE": str(hosts)})
    assert conf.model_aliases == {"gpt-4o": "llama3.2"}
    assert conf.upstreams == {"qwen3": "http://10.0.0.2:11434"}
    assert conf.allowed_models == ("qwen3",)
    # A higher source's plain form beats a lower source's file form.
    assert load_settings({P + "MODEL_ALIASES_FILE": str(aliases)}, {},
                         {"model_aliases": {"x": "y"}}).model_aliases == {"x": "y"}
    assert load_settings({}, {}, {"model_aliases_file": str(aliases)}).model_aliases == {
        "gpt-4o": "llama3.2"}


# (environment, words the error must contain)
BAD = [
    pytest.param({P + "MODEL_ALIASES": "{not json"}, [P + "MODEL_ALIASES"], id="aliases-not-json"),
    pytest.param({P + "MODEL_ALIASES": '["a"]'}, [P + "MODEL_ALIASES", "object"],
                 id="aliases-not-object"),
    pytest.param({P + "MODEL_ALIASES": '{"gpt-4o": ""}'}, [P + "MODEL_ALIASES", "gpt-4o"],
                 id="alias-empty-target"),
    pytest.param({P + "MODEL_ALIASES": '{"gpt-4o": 3}'}, [P + "MODEL_ALIASES", "gpt-4o"],
                 id="alias-target-not-string"),
    pytest.param({P + "ALLOWED_MODELS": "[]"}, [P + "ALLOWED_MODELS", "unset"],
                 id="allowed-empty-list"),
    pytest.param({P + "ALLOWED_MODELS": '{"a": 1}'}, [P + "ALLOWED_MODELS", "array"],
                 id="allowed-object"),
    pytest.param({P + "ALLOWED_MODELS": '["a", 2]'}, [P + "ALLOWED_MODELS"], id="allowed-number"),
    pytest.param({P + "UPSTREAMS": '{"qwen3": "ftp://x"}'}, [P + "UPSTREAMS", "qwen3", "ftp"],
                 id="upstream-bad-scheme"),
    pytest.param({P + "UPSTREAMS": '{"qwen3": ""}'}, [P + "UPSTREAMS", "qwen3"],
                 id="upstream-empty-url"),
    pytest.param({P + "NUM_CTX_BY_MODEL": '{"m": -1}'}, [P + "NUM_CTX_BY_MODEL", "'m'"],
                 id="num-ctx-negative"),
    pytest.param({P + "MODEL_ALIASES_FILE": "no/such/file.json"},
                 [P + "MODEL_ALIASES_FILE", "no/such/file.json"], id="file-missing"),
    pytest.param({P + "UPSTREAMS": "{}", P + "UPSTREAMS_FILE": "x.json"},
                 [P + "UPSTREAMS", P + "UPSTREAMS_FILE", "not both"], id="both-forms"),
]


@pytest.mark.parametrize("environ, words", BAD)
def test_bad_values_name_the_key(environ, words):
    with pytest.raises(ConfigError) as info:
        load_settings(environ, {})
    for word in words:
        assert word in str(info.value)


def test_file_with_bad_json_names_key_and_path(tmp_path):
    path = tmp_path / "aliases.json"
    path.write_text("{oops")
    with pytest.raises(ConfigError) as info:
        load_settings({P + "MODEL_ALIASES_FILE": str(path)}, {})
    assert P + "MODEL_ALIASES_FILE" in str(info.value) and str(path) in str(info.value)


def test_unknown_override_refused():
    with pytest.raises(ConfigError):
        load_settings({}, {}, {"upstreams_path": "x"})


def test_init_app_builds_one_client_per_distinct_host():
    app = Flask(__name__)
    OllamaGateway(app, ollama_url="http://a:1", upstreams={"x": "http://b:2", "y": "http://b:2/",
                                                           "z": "a:1"},
                  model_aliases={"gpt-4o": "x"})
    state = app.extensions["ollama_gateway"]
    assert list(state.clients) == ["http://a:1", "http://b:2"]
    assert state.client is state.clients["http://a:1"]
    route = state.route("gpt-4o")
    assert (route.name, route.ollama_model, route.client) == ("gpt-4o", "x",
                                                              state.clients["http://b:2"])
    assert len({id(c.manager) for c in state.clients.values()}) == 2
