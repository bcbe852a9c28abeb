"""Model names: aliases, the allow-list, routing to hosts, and the ``/v1/models`` shapes.

:class:`ModelMap` answers "which Ollama model, on which host?" for the name a
client sent, and merges the hosts' native model lists into OpenAI's. It does
no I/O: the caller fetches ``/api/tags`` and ``/api/show`` and passes the
results in.

Names are compared the way Ollama compares them: case-insensitively, with
the default tag ``:latest`` filled in and the default registry and
namespace (``registry.ollama.ai/library/``) dropped, so ``llama3.2``,
``Llama3.2:latest`` and ``library/llama3.2`` are one model.
"""
import calendar
import re
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from ..errors import ModelNotFound

_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.\d+)?"
                      r"(?:([Zz])|([+-])(\d\d):?(\d\d))$")


def _clip(text: str, limit: int = 200) -> str:
    """Return a client's ``text`` cut to ``limit`` characters and "…" (``common.clip``,
    which imports this module)."""
    return text if len(text) <= limit else text[:limit] + "\u2026"


def canonical_model(name: str) -> str:
    """Return the key under which Ollama would find the model ``name``."""
    key = name.strip().lower()
    for prefix in ("registry.ollama.ai/", "library/"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    if ":" not in key.rsplit("/", 1)[-1]:
        key += ":latest"
    return key


def ollama_time_to_unix(text: Any) -> int:
    """Return Unix seconds for an RFC 3339 timestamp (Ollama's ``modified_at``); 0 if unreadable."""
    match = _RFC3339.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        return 0
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if match.group(8):
        offset = int(match.group(9)) * 3600 + int(match.group(10)) * 60
        seconds -= offset if match.group(8) == "+" else -offset
    return seconds


def owned_by(model_id: str) -> str:
    """Return the namespace of a model name: ``library``, or the user/org part."""
    # Ollama's own rule: user/model:tag -> user, hf.co/org/repo:tag -> org.
    parts = model_id.split("/")
    return parts[-2] if len(parts) > 1 else "library"


def ollama_model_to_openai(model_id: str, native: Mapping[str, Any]) -> Dict[str, Any]:
    """Return an OpenAI model object named ``model_id`` for a native tags entry or show reply."""
    return {"id": model_id, "object": "model",
            "created": ollama_time_to_unix(native.get("modified_at")),
            "owned_by": owned_by(model_id)}


def _native_name(entry: Mapping[str, Any]) -> str:
    name = entry.get("model") or entry.get("name")
    return name if isinstance(name, str) else ""


class ModelMap:
    """Aliases, allow-list and per-model hosts, read once from the settings.

    :param aliases: client-facing name -> Ollama model name.
    :param allowed: if not None, the only names (besides aliases) clients may use.
    :param upstreams: model or alias -> base URL; others go to ``default_url``.
    """

    def __init__(self, aliases: Mapping[str, str], allowed: Optional[Iterable[str]],
                 upstreams: Mapping[str, str], default_url: str) -> None:
        self.aliases = dict(aliases)
        self.default_url = default_url
        self._targets = {canonical_model(alias): target for alias, target in self.aliases.items()}
        self._allowed = None if allowed is None else {canonical_model(n) for n in allowed}
        self._hosts = {canonical_model(name): url for name, url in upstreams.items()}
        #: Every distinct base URL, the default first.
        self.urls = list(dict.fromkeys([default_url] + list(upstreams.values())))

    def _url(self, name: str, target: str) -> str:
        # The client-facing name wins, so one alias can move to another host
        # while the model it names stays where it is.
        return self._hosts.get(canonical_model(name)) or self._hosts.get(
            canonical_model(target), self.default_url)

    def resolve(self, name: str) -> Tuple[str, str]:
        """Return ``(Ollama model name, base URL)`` for the model a client asked for.

        :raises ModelNotFound: for a name outside the allow-list (no upstream call needed).
        """
        key = canonical_model(name)
        target = self._targets.get(key)
        if target is None:
            if self._allowed is not None and key not in self._allowed:
                # OpenAI's wording for a model the caller may not use.
                raise ModelNotFound("The model '%s' does not exist or you do not have access "
                                    "to it." % _clip(name), param="model")
            target = name
        return target, self._url(name, target)

    def openai_list(self, hosts: Sequence[Tuple[str, Sequence[Mapping[str, Any]]]]
                    ) -> Dict[str, Any]:
        """Return the OpenAI model list from ``(base URL, native /api/tags models)`` per host.

        A native model appears only when requests for it would reach the host
        that listed it, and when it is allowed and not shadowed by an alias.
        Aliases follow, for targets found on their host.
        """
        found = {}  # type: Dict[Tuple[str, str], Mapping[str, Any]]
        data = []  # type: List[Dict[str, Any]]
        for url, entries in hosts:
            for entry in entries:
                name = _native_name(entry)
                key = canonical_model(name) if name else ""
                if not name or (url, key) in found or self._url(name, name) != url:
                    continue
                found[url, key] = entry
                if key in self._targets or (self._allowed is not None and key not in self._allowed):
                    continue
                data.append(ollama_model_to_openai(name, entry))
        for alias, target in self.aliases.items():
            entry = found.get((self._url(alias, target), canonical_model(target)))
            if entry is not None:
                data.append(ollama_model_to_openai(alias, entry))
        return {"object": "list", "data": data}
