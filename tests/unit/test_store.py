"""The key-value store: one contract run on SQLite and on a real redis-server."""
import multiprocessing
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import warnings

import pytest

from ollama_gateway.config import ConfigError
from ollama_gateway.store import (REDIS_EXTRA_HINT, REDIS_PREFIX, RedisStore, SQLiteStore,
                                  StoreError, default_store_url, open_store)

from ..redis_server import RedisServer, redis_client, redis_url  # noqa: F401 (fixture)


class Clock:
    """A clock the SQLite tests move by hand."""

    def __init__(self) -> None:
        self.now = 1700000000.0

    def __call__(self) -> float:
        return self.now


class SQLiteBackend:
    def __init__(self, tmp_path) -> None:
        self.clock = Clock()
        self.path = tmp_path / "store.db"
        self.store = open_store("sqlite:///store.db", str(tmp_path), clock=self.clock)

    def expire_all(self) -> None:
        self.clock.now += 10 ** 6

    def raw(self, key):
        with sqlite3.connect(str(self.path)) as conn:
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row and row[0]


class RedisBackend:
    def __init__(self, url, tmp_path) -> None:
        self.client = redis_client(url)
        self.client.flushdb()
        self.store = open_store(url, str(tmp_path))

    def expire_all(self) -> None:
        # PEXPIREAT in the past expires a key at once: Redis's own expiry, no waiting.
        for key in self.client.keys(REDIS_PREFIX + "*"):
            self.client.pexpireat(key, 1)

    def raw(self, key):
        value = self.client.get(REDIS_PREFIX + key)
        return value and value.decode("utf-8")


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        made = SQLiteBackend(tmp_path)
    else:
        made = RedisBackend(request.getfixturevalue("redis_url"), tmp_path)
    yield made
    made.store.close()


@pytest.fixture
def store(backend):
    return backend.store


def test_put_get_delete(store):
    store.put("resp:1", {"id": "resp_1", "n": 1}, 60)
    assert store.get("resp:1") == {"id": "resp_1", "n": 1}
    store.put("resp:1", {"id": "resp_1", "n": 2}, 60)
    assert store.get("resp:1") == {"id": "resp_1", "n": 2}
    assert store.delete("resp:1") is True
    assert store.delete("resp:1") is False
    assert store.get("resp:1") is None


def test_missing_keys(store):
    assert store.get("nope") is None
    assert store.get_many(["nope", "neither"]) == {}
    assert store.delete("nope") is False
    assert store.delete_many(["nope"]) == 0


def test_many(store):
    store.put_many({"item:%d" % i: {"i": i} for i in range(5)}, 60)
    assert store.get_many(["item:0", "item:4", "item:9"]) == {"item:0": {"i": 0},
                                                              "item:4": {"i": 4}}
    assert store.delete_many(["item:0", "item:0", "item:1", "item:9"]) == 2
    assert sorted(store.get_many(["item:%d" % i for i in range(5)])) == ["item:2", "item:3",
                                                                         "item:4"]


def test_empty_many_calls(store):
    store.put_many({}, 60)
    assert store.get_many([]) == {}
    assert store.delete_many([]) == 0


def test_more_keys_than_one_statement_takes(store):
    entries = {"k:%d" % i: {"i": i} for i in range(1200)}
    store.put_many(entries, 60)
    assert store.get_many(list(entries)) == entries
    assert store.delete_many(list(entries)) == 1200


def test_values_are_compact_json(backend):
    backend.store.put("k", {"a": [1, 2], "b": {"c": None}}, 60)
    assert backend.raw("k") == '{"a":[1,2],"b":{"c":null}}'


def test_expired_entries_are_gone(backend):
    backend.store.put("old", {"v": 1}, 60)
    backend.expire_all()
    assert backend.store.get("old") is None
    assert backend.store.get_many(["old"]) == {}
    assert backend.store.delete("old") is False


def test_sqlite_expiry_follows_the_clock(tmp_path):
    backend = SQLiteBackend(tmp_path)
    store, clock = backend.store, backend.clock
    store.put("k", {"v": 1}, 10)
    clock.now += 9.999
    assert store.get("k") == {"v": 1}
    clock.now += 0.001
    assert store.get("k") is None
    assert store.delete("k") is False
    assert backend.raw("k") is not None  # still on disk until a purge


def test_sqlite_purges_expired_rows_lazily(tmp_path):
    backend = SQLiteBackend(tmp_path)
    store, clock = backend.store, backend.clock
    store.put_many({"a": {}, "b": {}}, 5)  # this put purges: the first in the process
    clock.now += 30
    store.put("c", {}, 3600)  # within the minute: no purge yet
    assert backend.raw("a") is not None
    clock.now += 31
    store.put("d", {}, 3600)
    assert (backend.raw("a"), backend.raw("b")) == (None, None)
    assert store.get_many(["c", "d"]) == {"c": {}, "d": {}}


def test_redis_uses_native_expiry(redis_url, tmp_path):  # noqa: F811 (the fixture)
    backend = RedisBackend(redis_url, tmp_path)
    backend.store.put("k", {}, 30)
    assert 29000 < backend.client.pttl(REDIS_PREFIX + "k") <= 30000
    backend.store.put_many({"a": {}, "b": {}}, 2.5)
    for key in ("a", "b"):
        assert 0 < backend.client.pttl(REDIS_PREFIX + key) <= 2500
    backend.store.put("tiny", {}, 0.0001)  # rounds up to Redis's smallest: 1 ms
    assert backend.client.pttl(REDIS_PREFIX + "tiny") in (-2, 0, 1)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf")])
def test_bad_ttl_refused(store, ttl):
    with pytest.raises(ValueError, match="ttl"):
        store.put("k", {}, ttl)


@pytest.mark.parametrize("value", [
    pytest.param({"x": float("nan")}, id="nan"),
    pytest.param({"x": [float("inf")]}, id="inf"),
    pytest.param({"x": {"y": -float("inf")}}, id="minus-inf"),
])
def test_nan_refused(store, value):
    with pytest.raises(ValueError):
        store.put("k", value, 60)
    with pytest.raises(ValueError):
        store.put_many({"ok": {}, "bad": value}, 60)
    assert store.get_many(["k", "ok", "bad"]) == {}  # nothing of the batch was written


def test_only_dicts_stored(store):
    with pytest.raises(TypeError):
        store.put("k", ["not", "a", "dict"], 60)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [
    pytest.param({"text": "héllo wörld"}, id="latin"),
    pytest.param({"text": "日本語のテキスト", "ключ": "значение"}, id="cjk-cyrillic"),
    pytest.param({"text": "שלום عربى"}, id="rtl"),
    pytest.param({"text": "🦙🚀 \U0010ffff"}, id="astral"),
    pytest.param({"text": "nul\x00and\ttabs\n\u2028"}, id="controls"),
    pytest.param({"text": "lone \ud800 surrogate"}, id="lone-surrogate"),
])
def test_unicode_round_trips(store, value):
    store.put("unicode:ключ🦙", value, 60)
    assert store.get("unicode:ключ🦙") == value


def test_keys_must_be_utf8(store):
    # Ids come from clients: a key that could never be stored is simply absent.
    with pytest.raises(ValueError, match="UTF-8"):
        store.put_many({"ok": {}, "bad\udc80": {}}, 60)
    assert store.get("ok") is None  # nothing of the batch was written
    store.put("ok", {}, 60)
    assert store.get("bad\udc80") is None
    assert store.get_many(["bad\udc80", "ok"]) == {"ok": {}}
    assert store.delete("bad\udc80") is False
    assert store.delete_many(["bad\udc80", "ok"]) == 1


def test_one_megabyte_value(store):
    value = {"output": "x" * (1024 * 1024), "more": "é" * 1000}
    store.put("big", value, 60)
    assert store.get("big") == value


def test_threads_write_and_read_back(store):
    threads, count = 8, 200
    start = threading.Barrier(threads)
    errors = []

    def write(n):
        try:
            start.wait(10)
            for i in range(count):
                store.put("t%d:%d" % (n, i), {"n": n, "i": i}, 600)
            mine = ["t%d:%d" % (n, i) for i in range(count)]
            assert len(store.get_many(mine)) == count
        except Exception as exc:  # reported below, with the others
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    keys = ["t%d:%d" % (n, i) for n in range(threads) for i in range(count)]
    found = store.get_many(keys)
    assert found == {"t%d:%d" % (n, i): {"n": n, "i": i}
                     for n in range(threads) for i in range(count)}


#: One writer process: opens the store, says "ready", waits for "go" on stdin
#: (so all write at once), then writes its own keys, one by one and in batches.
WRITER = r"""
import sys
from ollama_gateway.store import open_store
path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_store("sqlite:///" + path, ".")
print("ready", flush=True)
sys.stdin.readline()
for i in range(count):
    store.put("%s:%d" % (name, i), {"by": name, "i": i}, 600)
    if i % 50 == 0:
        store.put_many({"%s:batch%d:%d" % (name, i, j): {"j": j} for j in range(20)}, 600)
        assert store.get("%s:%d" % (name, i)) == {"by": name, "i": i}
print("done", flush=True)
"""


def _clean_env():
    return {key: value for key, value in os.environ.items()
            if not key.startswith("OLLAMA_GATEWAY_") and key != "OLLAMA_HOST"}


def test_processes_share_one_sqlite_file(tmp_path):
    path, count, names = str(tmp_path / "shared" / "store.db"), 300, ["p0", "p1", "p2"]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, path, name, str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=_clean_env())
             for name in names]
    try:
        for proc in procs:  # all three opened the (new) file at once
            assert proc.stdout.readline() == b"ready\n", proc.communicate(timeout=60)[1]
        for proc in procs:
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, results):
        assert (proc.returncode, out, err) == (0, b"done\n", b"")
    store = open_store("sqlite:///" + path, ".")
    keys = ["%s:%d" % (name, i) for name in names for i in range(count)]
    keys += ["%s:batch%d:%d" % (name, i, j) for name in names
             for i in range(0, count, 50) for j in range(20)]
    assert len(store.get_many(keys)) == len(keys) == 3 * (300 + 6 * 20)
    store.close()


def _fork(target):
    """Return the exit code of ``target`` run in a forked child."""
    context = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a threaded process; forking a
        # process that already used the store is exactly what is tested here.
        warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)
        proc = context.Process(target=target)
        proc.start()
    proc.join(60)
    if proc.exitcode is None:
        proc.kill()
        proc.join()
    return proc.exitcode


def test_forked_child_uses_the_parents_store(store):
    store.put("parent", {"v": 1}, 60)
    assert store.get("parent") == {"v": 1}  # the parent holds open connections now

    def child():
        assert store.get("parent") == {"v": 1}
        store.put("child", {"v": 2}, 60)
        assert store.delete("parent") is True
        store.close()

    assert _fork(child) == 0
    assert store.get("child") == {"v": 2}
    assert store.get("parent") is None
    store.put("parent", {"v": 3}, 60)  # the parent's own connections still work
    assert store.get("parent") == {"v": 3}


def test_fork_while_another_thread_holds_the_pool(tmp_path):
    store = SQLiteBackend(tmp_path).store
    store.put("k", {"v": 1}, 60)
    # As if another parent thread were taking a connection at the moment of
    # fork(): the child must not wait for a lock nobody will release.
    with store._pool.lock:
        code = _fork(lambda: store.put("child", store.get("k"), 60))
    assert code == 0
    assert store.get("child") == {"v": 1}


def test_redis_down_raises_store_error(tmp_path):
    with RedisServer(tmp_path) as server:
        store = open_store(server.url, str(tmp_path))
        store.put("k", {}, 60)
        store.ping()
    for call in (store.ping, lambda: store.put("k", {}, 60), lambda: store.get("k"),
                 lambda: store.get_many(["k"]), lambda: store.delete("k")):
        with pytest.raises(StoreError) as caught:
            call()
        assert caught.value.__cause__ is not None  # the redis exception, kept


def test_unusable_sqlite_file_raises_store_error(tmp_path):
    (tmp_path / "garbage.db").write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(StoreError) as caught:
        open_store("sqlite:///garbage.db", str(tmp_path))
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StoreError):
        open_store("sqlite:///a-file/store.db", str(tmp_path))


def test_close_then_reuse(store):
    store.put("k", {"v": 1}, 60)
    store.close()
    store.close()
    assert store.get("k") == {"v": 1}
    store.ping()


def test_sqlite_paths_and_directory_mode(tmp_path):
    relative = open_store("sqlite:///sub/dir/rel.db", str(tmp_path))
    assert isinstance(relative, SQLiteStore)
    assert relative.path == str(tmp_path / "sub" / "dir" / "rel.db")
    assert stat.S_IMODE(os.stat(str(tmp_path / "sub" / "dir")).st_mode) == 0o700
    absolute = open_store("sqlite:///" + str(tmp_path / "abs.db"), "/nonexistent")
    assert absolute.path == str(tmp_path / "abs.db")
    assert (tmp_path / "abs.db").exists()
    with sqlite3.connect(absolute.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    relative.close()
    absolute.close()


@pytest.mark.parametrize("url", ["off", "OFF", " off "])
def test_off_means_no_store(url, tmp_path):
    assert open_store(url, str(tmp_path)) is None


@pytest.mark.parametrize("url", [
    "postgres://db/x", "", "memcached://127.0.0.1:11211", "sqlite:///", "sqlite://host/x.db",
    "redis://127.0.0.1:notaport/0", "/var/lib/x.db",
])
def test_unusable_urls_are_config_errors(url, tmp_path):
    with pytest.raises(ConfigError, match="OLLAMA_GATEWAY_STORE"):
        open_store(url, str(tmp_path))


def test_config_error_hides_the_password(tmp_path):
    with pytest.raises(ConfigError) as caught:
        open_store("postgres://user:s3cret@db/x", str(tmp_path))
    assert "s3cret" not in str(caught.value)


def test_redis_urls_open_without_connecting(tmp_path):
    # Nothing listens on port 1: opening succeeds, the first call fails.
    for url in ("redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0"):
        store = open_store(url, str(tmp_path))
        assert isinstance(store, RedisStore)
        with pytest.raises(StoreError):
            store.ping()
    # Not pinged: redis-py 3.5 to 5.0 leak the socket of a failed unix connect
    # (a ResourceWarning), which is theirs to fix, not ours.
    assert isinstance(open_store("unix:///nonexistent.sock", str(tmp_path)), RedisStore)


def test_redis_over_a_unix_socket(tmp_path):
    with RedisServer(tmp_path, unix_socket=True) as server:
        store = open_store(server.unix_url, str(tmp_path))
        store.put_many({"a": {"v": 1}, "b": {"v": 2}}, 60)
        assert store.get_many(["a", "b"]) == {"a": {"v": 1}, "b": {"v": 2}}
        assert store.delete("a") is True
        store.ping()
        store.close()


MISSING_EXTRA = r"""
import sys
sys.modules["redis"] = None  # as if the extra were not installed
from ollama_gateway.config import ConfigError
from ollama_gateway.store import open_store
assert open_store("sqlite:///x.db", sys.argv[1]) is not None  # the default needs no extra
try:
    open_store("redis://127.0.0.1:6379/0", sys.argv[1])
except ConfigError as exc:
    print(exc)
"""


def test_missing_redis_extra_names_it(tmp_path):
    done = subprocess.run([sys.executable, "-c", MISSING_EXTRA, str(tmp_path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_clean_env(),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    message = done.stdout.decode().strip()
    assert "install the extra with pip install 'ollama-gateway[redis]'" in message
    assert REDIS_EXTRA_HINT in message and "OLLAMA_GATEWAY_STORE" in message


@pytest.mark.parametrize("environ, url", [
    ({}, "sqlite:////srv/instance/ollama-gateway.db"),
    ({"STATE_DIRECTORY": "/var/lib/ollama-gateway"},
     "sqlite:////var/lib/ollama-gateway/ollama-gateway.db"),
    ({"STATE_DIRECTORY": "/var/lib/one:/var/lib/two"}, "sqlite:////var/lib/one/ollama-gateway.db"),
    ({"STATE_DIRECTORY": ""}, "sqlite:////srv/instance/ollama-gateway.db"),
])
def test_default_store_url(environ, url):
    assert default_store_url(environ, "/srv/instance") == url


def test_default_store_is_created_on_open(tmp_path):
    url = default_store_url({"STATE_DIRECTORY": str(tmp_path / "state")}, "/unused")
    store = open_store(url, "/unused")
    store.put("k", {}, 1)
    assert (tmp_path / "state" / "ollama-gateway.db").exists()
    assert stat.S_IMODE(os.stat(str(tmp_path / "state")).st_mode) == 0o700
    store.close()

