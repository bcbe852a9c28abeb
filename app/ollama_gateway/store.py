"""A small key-value store for state that outlives a request.

It holds stored Responses-API responses (later, rate-limit counters): one
interface, :class:`Store`, and a backend named by one URL: ``sqlite:///rel.db``
(relative to ``default_dir``) or ``sqlite:////abs.db``, the embedded default;
``redis://host:port/db``, ``rediss://`` or ``unix://`` for several hosts (the
``redis`` extra); ``off`` for none. Values are JSON objects kept as compact
JSON text until their ttl runs out; keys are the caller's (``resp:<id>``).
Nothing happens at import time; connections open on first use.

Exceptions::

    StoreError   the backend failed at run time (disk full, redis down): a 503.
                 Each backend maps its own errors to it in one place.
    ConfigError  (from .config) an unusable STORE URL or a missing extra.
    ValueError   NaN or Infinity in a value, a ttl <= 0, or a key to put that
                 is not UTF-8 text (a lone surrogate; reads find no such key).
"""
import contextlib
import json
import math
import os
import sqlite3
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Type

from .config import PREFIX, ConfigError

DB_NAME = "ollama-gateway.db"
REDIS_PREFIX = "ollama_gateway:"
REDIS_EXTRA_HINT = "install the extra with pip install 'ollama-gateway[redis]'"
_SETTING = PREFIX + "STORE"


class StoreError(Exception):
    """The store's backend failed at run time; callers answer 503."""


def _encode(value: dict) -> str:
    """Return ``value`` as compact JSON text; ValueError for NaN or Infinity."""
    if not isinstance(value, dict):
        raise TypeError("a stored value must be a dict, got %s" % type(value).__name__)
    # allow_nan=False: NaN is not JSON, and a client reading the value back
    # would choke on it. ensure_ascii (the default) escapes lone surrogates,
    # which a decoded request may hold and no UTF-8 codec would write.
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _decode(raw: Any) -> dict:
    """Return the dict stored as ``raw`` (text or bytes)."""
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise StoreError("a stored value is not valid JSON") from exc


def _keys(keys: List[str], writing: bool = False) -> List[str]:
    """Return ``keys`` without repeats or the ones no backend can hold.

    Ids come from clients, so a read of a key that can never have been stored
    finds nothing rather than failing; a write of one raises ValueError.
    """
    usable = []
    for key in dict.fromkeys(keys):
        try:
            key.encode("utf-8")
        except UnicodeEncodeError as exc:
            if writing:
                raise ValueError("a store key must be UTF-8 text, got %r" % (key,)) from exc
            continue
        usable.append(key)
    return usable


def _check_ttl(ttl: float) -> float:
    if not ttl > 0 or math.isinf(ttl):
        raise ValueError("ttl must be a positive number of seconds, got %r" % (ttl,))
    return float(ttl)


@contextlib.contextmanager
def _mapped(errors: Tuple[Type[BaseException], ...], what: str) -> Iterator[None]:
    """Return a context that turns ``errors`` into :class:`StoreError`."""
    try:
        yield
    except errors as exc:
        raise StoreError("%s store failed: %s" % (what, exc)) from exc


class Store:
    """The interface every backend implements (the ``*_many`` calls, ping, close).

    .. versionadded:: 0.2
    """

    def put(self, key: str, value: dict, ttl: float) -> None:
        """Return nothing; stores ``value`` under ``key`` for ``ttl`` seconds."""
        self.put_many({key: value}, ttl)

    def put_many(self, entries: Dict[str, dict], ttl: float) -> None:
        """Return nothing; stores all ``entries`` at once (one transaction or pipeline)."""
        raise NotImplementedError

    def get(self, key: str) -> Optional[dict]:
        """Return the value under ``key``, or None when absent or expired."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: List[str]) -> Dict[str, dict]:
        """Return ``{key: value}`` for the keys found (absent and expired ones left out)."""
        raise NotImplementedError

    def delete(self, key: str) -> bool:
        """Return whether ``key`` existed (and had not expired); removes it."""
        return self.delete_many([key]) == 1

    def delete_many(self, keys: List[str]) -> int:
        """Return how many of ``keys`` existed (and had not expired); removes them."""
        raise NotImplementedError

    def ping(self) -> None:
        """Return if the store is usable; raises :class:`StoreError` if not."""
        raise NotImplementedError

    def close(self) -> None:
        """Return nothing; releases this process's connections (the store stays usable)."""
        raise NotImplementedError


class _Pool:
    """The SQLite connections of one process: idle ones, and all it ever opened."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        #: Held by a thread while it writes: the threads of one process queue
        #: here instead of in SQLite's busy handler, which sleeps 1-100 ms a try.
        self.writing = threading.Lock()
        self.idle = []  # type: List[sqlite3.Connection]
        self.opened = []  # type: List[sqlite3.Connection]


class SQLiteStore(Store):
    """A store in one SQLite file, shared by the threads and processes of a host.

    WAL mode lets readers run beside one writer; a busy timeout makes writers
    queue instead of failing. A connection serves one thread at a time, and a
    process never touches the connections of the process it was forked from.
    """

    #: Seconds between two purges of expired rows, per process.
    purge_interval = 60.0
    #: Most expired rows removed by one purge, so no write waits for a big one.
    purge_limit = 1000
    # Older SQLite builds allow 999 parameters per statement.
    _chunk = 500

    def __init__(self, path: str, clock: Callable[[], float] = time.time,
                 busy_timeout: float = 10.0) -> None:
        self.path = path
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._pool = _Pool()
        # Connections inherited over fork(): kept referenced, never used nor
        # closed, because closing one would drop this process's POSIX locks on
        # the file (https://www.sqlite.org/howtocorrupt.html, section 2.6).
        self._inherited = []  # type: List[_Pool]
        self._next_purge = 0.0
        with _mapped((sqlite3.Error, OSError), "sqlite"):
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, "
                         "value TEXT NOT NULL, expires_at REAL NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at)")

    def _current_pool(self) -> _Pool:
        """Return this process's pool, starting a fresh one after a fork."""
        pool = self._pool
        if pool.pid != os.getpid():
            # The parent's lock may have been held at fork time: never take it.
            self._inherited.append(pool)
            pool = self._pool = _Pool()
        return pool

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Return a context holding a connection for this thread alone."""
        with _mapped((sqlite3.Error, OSError), "sqlite"):
            pool = self._current_pool()
            with pool.lock:
                conn = pool.idle.pop() if pool.idle else None
            if conn is None:
                # isolation_level=None: transactions are begun explicitly below.
                conn = sqlite3.connect(self.path, timeout=self._busy_timeout,
                                       isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL
                with pool.lock:
                    pool.opened.append(conn)
            try:
                yield conn
            except BaseException:
                with pool.lock:
                    pool.opened.remove(conn)
                conn.close()
                raise
            with pool.lock:
                pool.idle.append(conn)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Return a context holding a connection inside a write transaction."""
        with self._current_pool().writing, self._connection() as conn:
            # IMMEDIATE takes the write lock up front, where busy_timeout
            # applies; a deferred transaction could fail when it upgrades.
            # On failure _connection() closes the connection, which rolls back.
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")

    def put_many(self, entries: Dict[str, dict], ttl: float) -> None:
        """Return nothing; stores all ``entries`` in one transaction."""
        expires_at = self._clock() + _check_ttl(ttl)
        rows = [(key, _encode(entries[key]), expires_at) for key in _keys(list(entries), True)]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany("INSERT OR REPLACE INTO kv (key, value, expires_at) "
                             "VALUES (?, ?, ?)", rows)
        self._purge_now_and_then()

    def _purge_now_and_then(self) -> None:
        now = self._clock()
        if now < self._next_purge:
            return
        self._next_purge = now + self.purge_interval
        with self._write() as conn:
            conn.execute("DELETE FROM kv WHERE rowid IN (SELECT rowid FROM kv "
                         "WHERE expires_at <= ? LIMIT ?)", (now, self.purge_limit))

    def _chunks(self, keys: List[str]) -> Iterator[Tuple[List[str], str]]:
        """Return (keys, placeholders) in pieces one statement takes."""
        for start in range(0, len(keys), self._chunk):
            chunk = keys[start:start + self._chunk]
            yield chunk, ",".join("?" * len(chunk))

    def get_many(self, keys: List[str]) -> Dict[str, dict]:
        """Return ``{key: value}`` for the keys found and not expired."""
        keys, found = _keys(keys), {}
        now = self._clock()
        with self._connection() as conn:
            for chunk, marks in self._chunks(keys):
                found.update(conn.execute("SELECT key, value FROM kv WHERE expires_at > ? "
                                          "AND key IN (%s)" % marks, [now] + chunk))
        return {key: _decode(raw) for key, raw in found.items()}

    def delete_many(self, keys: List[str]) -> int:
        """Return how many of ``keys`` were live; removes them (expired ones wait for the purge)."""
        unique, deleted = _keys(keys), 0
        if not unique:
            return 0
        now = self._clock()
        with self._write() as conn:
            for chunk, marks in self._chunks(unique):
                deleted += conn.execute("DELETE FROM kv WHERE expires_at > ? AND key IN (%s)"
                                        % marks, [now] + chunk).rowcount
        return deleted

    def ping(self) -> None:
        """Return if the file can be read; raises :class:`StoreError` if not."""
        with self._connection() as conn:
            conn.execute("SELECT 1 FROM kv LIMIT 1").fetchall()

    def close(self) -> None:
        """Return nothing; closes this process's connections (later calls reopen)."""
        pool = self._current_pool()
        with pool.lock:
            conns, pool.opened, pool.idle = pool.opened, [], []
        with _mapped((sqlite3.Error,), "sqlite"):
            for conn in conns:
                conn.close()


class RedisStore(Store):
    """A store in Redis, for gateways on several hosts; entries use native expiry.

    redis-py's pool is thread-safe and starts afresh in a forked child.
    """

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        try:
            import redis
        except ImportError as exc:
            raise ConfigError("%s=%s needs the redis package: %s"
                              % (_SETTING, _safe_url(url), REDIS_EXTRA_HINT)) from exc
        self._errors = (redis.RedisError, OSError)  # type: Tuple[Type[BaseException], ...]
        try:
            timeouts = {"socket_timeout": timeout}
            if not url.lower().startswith("unix:"):
                # redis-py < 4.6 refuses it for unix sockets, whose connect() never waits.
                timeouts["socket_connect_timeout"] = timeout
            self._client = redis.Redis.from_url(url, **timeouts)
        except ValueError as exc:
            raise ConfigError("invalid %s: %s" % (_SETTING, exc)) from exc

    def put_many(self, entries: Dict[str, dict], ttl: float) -> None:
        """Return nothing; stores all ``entries`` in one MULTI/EXEC pipeline."""
        millis = max(1, int(math.ceil(_check_ttl(ttl) * 1000)))
        rows = [(REDIS_PREFIX + key, _encode(entries[key]))
                for key in _keys(list(entries), True)]
        if not rows:
            return
        with _mapped(self._errors, "redis"):
            pipe = self._client.pipeline(transaction=True)
            for key, text in rows:
                pipe.set(key, text, px=millis)
            pipe.execute()

    def get_many(self, keys: List[str]) -> Dict[str, dict]:
        """Return ``{key: value}`` for the keys found (one MGET)."""
        keys = _keys(keys)
        if not keys:
            return {}
        with _mapped(self._errors, "redis"):
            raws = self._client.mget([REDIS_PREFIX + key for key in keys])
        return {key: _decode(raw) for key, raw in zip(keys, raws) if raw is not None}

    def delete_many(self, keys: List[str]) -> int:
        """Return how many of ``keys`` existed; removes them (one DEL)."""
        unique = _keys(keys)
        if not unique:
            return 0
        with _mapped(self._errors, "redis"):
            return int(self._client.delete(*[REDIS_PREFIX + key for key in unique]))

    def ping(self) -> None:
        """Return if Redis answers PING; raises :class:`StoreError` if not."""
        with _mapped(self._errors, "redis"):
            self._client.ping()

    def close(self) -> None:
        """Return nothing; closes the pooled connections (later calls reconnect)."""
        with _mapped(self._errors, "redis"):
            self._client.connection_pool.disconnect()


def _safe_url(url: str) -> str:
    """Return ``url`` without a password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def open_store(url: str, default_dir: str,
               clock: Callable[[], float] = time.time) -> Optional[Store]:
    """Return the store named by ``url``, or None for ``off``.

    :param default_dir: what a relative sqlite path is relative to.
    :param clock: the time source for SQLite expiry (Redis uses its own).
    :raises ConfigError: for an unknown scheme or a missing extra.
    :raises StoreError: if the SQLite file cannot be created or opened.

    .. versionadded:: 0.2
    """
    text = url.strip()
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if text.lower() == "off":
        return None
    if scheme == "sqlite":
        if not text.lower().startswith("sqlite:///") or len(text) == len("sqlite:///"):
            raise ConfigError("invalid %s %r: expected sqlite:///relative/path.db or "
                              "sqlite:////absolute/path.db" % (_SETTING, text))
        return SQLiteStore(os.path.join(default_dir, text[len("sqlite:///"):]), clock)
    if scheme in ("redis", "rediss", "unix"):
        return RedisStore(text)
    raise ConfigError("invalid %s %r: expected sqlite:///path, redis://host:port/db, "
                      "rediss://..., unix://path or off" % (_SETTING, _safe_url(text)))


def default_store_url(environ: Mapping[str, str], instance_path: str) -> str:
    """Return the sqlite URL of the default store file.

    It lives in systemd's ``STATE_DIRECTORY`` (the first, if it names
    several) when set, else in the Flask ``instance_path``.
    """
    state_dirs = [part for part in environ.get("STATE_DIRECTORY", "").split(":") if part]
    directory = state_dirs[0] if state_dirs else instance_path
    return "sqlite:///" + os.path.join(directory, DB_NAME)
