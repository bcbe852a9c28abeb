"""Optional bearer keys in front of an Ollama that has no authentication.

With no keys configured every request passes, as with Ollama itself (the SDKs
always send some key). The client's ``Authorization`` header is only ever
read here: the upstream client sends its own headers, never the client's.
"""
import hmac
from typing import FrozenSet, Iterable, Optional

from .errors import AuthenticationFailed


def read_key_file(path: str) -> FrozenSet[str]:
    """Return the keys of a file with one key per line (blank lines and ``#`` comments skipped)."""
    with open(path, encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle
                         if line.strip() and not line.lstrip().startswith("#"))


def check_bearer(authorization: Optional[str], keys: Iterable[str]) -> None:
    """Return if ``authorization`` carries one of ``keys`` (or no keys are set).

    Every key is compared in constant time, and all of them are compared, so
    the time taken says nothing about which key came close.

    :raises AuthenticationFailed: for a missing or wrong key.
    """
    keys = tuple(keys)
    if not keys:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise AuthenticationFailed("You didn't provide an API key. Send it in the Authorization "
                                   "header as 'Bearer YOUR_KEY'.")
    candidate = given.strip().encode("utf-8")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode("utf-8"))
    if not matched:
        raise AuthenticationFailed("Incorrect API key provided.")
