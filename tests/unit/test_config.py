"""Settings: OLLAMA_HOST parsing, precedence, casts whose errors name the key."""
import pytest
from flask import Flask

from ollama_gateway import OllamaGateway, create_app
from ollama_gateway.config import ConfigError, load_settings, parse_ollama_host


@pytest.mark.parametrize("value, url", [
    ("", "http://127.0.0.1:11434"),
    ("0.0.0.0", "http://0.0.0.0:11434"),
    ("gpu-box", "http://gpu-box:11434"),
    ("gpu-box:9999", "http://gpu-box:9999"),
    (":8080", "http://127.0.0.1:8080"),
    ("http://gpu-box", "http://gpu-box:80"),
    ("https://ollama.example.com/base/", "https://ollama.example.com:443/base"),
    ("[::1]:5000", "http://[::1]:5000"),
])
def test_ollama_host_parsed_like_ollama(value, url):
    assert parse_ollama_host(value) == url


def test_defaults_match_ollama_clients():
    conf = load_settings({}, {})
    assert conf.ollama_url == "http://127.0.0.1:11434"
    assert (conf.connect_timeout, conf.read_timeout) == (5.0, 300.0)
    assert (conf.num_ctx, conf.keep_alive, conf.sse_keepalive) == (8192, None, 15.0)


def test_precedence_default_env_config_kwargs():
    env = {"OLLAMA_HOST": "envhost", "OLLAMA_GATEWAY_NUM_CTX": "1000",
           "OLLAMA_GATEWAY_READ_TIMEOUT": "10", "OLLAMA_GATEWAY_KEEP_ALIVE": "5m"}
    config = {"OLLAMA_GATEWAY_NUM_CTX": 2000, "OLLAMA_GATEWAY_READ_TIMEOUT": 20}
    conf = load_settings(env, config, {"read_timeout": 30})
    assert conf.ollama_url == "http://envhost:11434"  # OLLAMA_HOST when nothing else names it
    assert (conf.num_ctx, conf.read_timeout, conf.keep_alive) == (2000, 30.0, "5m")
    named = load_settings(env, {"OLLAMA_GATEWAY_OLLAMA_URL": "other:1"})
    assert named.ollama_url == "http://other:1"


@pytest.mark.parametrize("key, value", [
    ("OLLAMA_GATEWAY_READ_TIMEOUT", "soon"),
    ("OLLAMA_GATEWAY_CONNECT_TIMEOUT", "-1"),
    ("OLLAMA_GATEWAY_NUM_CTX", "lots"),
    ("OLLAMA_GATEWAY_TRUST_ENV", "maybe"),
    ("OLLAMA_GATEWAY_REASONING_FIELD", "thoughts"),
    ("OLLAMA_GATEWAY_OLLAMA_URL", "ftp://x"),
])
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        load_settings({key: value}, {})


@pytest.mark.parametrize("raw, expected", [("0", None), ("", None), ("4096", 4096)])
def test_num_ctx_zero_turns_it_off(raw, expected):
    assert load_settings({"OLLAMA_GATEWAY_NUM_CTX": raw}, {}).num_ctx == expected


def test_init_app_twice_raises_and_prefix_is_free():
    app = Flask("host")
    gateway = OllamaGateway()
    gateway.init_app(app, url_prefix="/api/llm/v1")
    assert any(rule.rule == "/api/llm/v1/chat/completions" for rule in app.url_map.iter_rules())
    with pytest.raises(RuntimeError):
        gateway.init_app(app)


def test_nothing_reaches_out_at_creation(dead_url):
    # With the start-up check off, building the app reads settings only: a
    # connection attempt to this refusing port would raise right here.
    app = create_app(ollama_url=dead_url, startup_check=False)
    assert app.extensions["ollama_gateway"].settings.ollama_url == dead_url
