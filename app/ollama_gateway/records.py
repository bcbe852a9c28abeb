"""Stored Responses API responses, kept in the :mod:`.store` under a caller's owner tag.

Each stored response is one entry ``resp:<id>``: the response object, the
request's input items (for ``GET .../input_items``) and the whole conversation
up to and including its output (what a ``previous_response_id`` continues),
so continuing a chain reads one entry. Every input and output item also gets
an ``item:<id>`` entry for ``item_reference`` inputs. An entry whose owner is
not the caller's reads as absent: with keys configured a response is visible
only to the key that made it.

No Flask, no HTTP; the store's failures surface as :class:`StoreError`.
"""
import hashlib
from typing import Any, Dict, List, Optional, Sequence

from .errors import UpstreamUnavailable
from .store import Store, StoreError


def owner_tag(bearer: Optional[str], keys_configured: bool) -> str:
    """Return the owner tag of a caller: a digest of its key, or ``""`` without keys.

    The key itself is never stored.
    """
    if not keys_configured or not bearer:
        return ""
    return hashlib.sha256(bearer.encode("utf-8")).hexdigest()[:32]


def _unavailable(exc: StoreError) -> UpstreamUnavailable:
    error = UpstreamUnavailable("The response store is unavailable: %s" % exc)
    error.code = "store_unavailable"
    return error


def save(store: Store, owner: str, response: Dict[str, Any],
         input_items: Sequence[Dict[str, Any]], history: Sequence[Dict[str, Any]],
         ttl: float) -> None:
    """Store ``response`` with its inputs, and every item by id."""
    output = response.get("output") or []
    entries = {"item:" + item["id"]: {"owner": owner, "item": item}
               for item in list(input_items) + list(output) if item.get("id")}
    entries["resp:" + response["id"]] = {
        "owner": owner, "response": response, "input_items": list(input_items),
        "conversation": list(history) + list(input_items) + list(output)}
    try:
        store.put_many(entries, ttl)
    except StoreError as exc:
        raise _unavailable(exc) from exc


def load(store: Store, owner: str, response_id: str) -> Optional[Dict[str, Any]]:
    """Return the stored entry of ``response_id`` if the caller owns it, else None."""
    try:
        entry = store.get("resp:" + response_id)
    except StoreError as exc:
        raise _unavailable(exc) from exc
    return entry if entry is not None and entry.get("owner") == owner else None


def load_items(store: Store, owner: str, item_ids: List[str]) -> Dict[str, Dict[str, Any]]:
    """Return the stored items among ``item_ids`` that the caller owns, by id."""
    try:
        found = store.get_many(["item:" + item_id for item_id in item_ids])
    except StoreError as exc:
        raise _unavailable(exc) from exc
    return {key[len("item:"):]: entry["item"] for key, entry in found.items()
            if entry.get("owner") == owner}


def delete(store: Store, entry: Dict[str, Any]) -> None:
    """Delete a stored response and the items stored with it."""
    response = entry["response"]
    keys = ["resp:" + response["id"]] + [
        "item:" + item["id"] for item in entry["input_items"] + (response.get("output") or [])
        if item.get("id")]
    try:
        store.delete_many(keys)
    except StoreError as exc:
        raise _unavailable(exc) from exc
