"""The Responses API views: create (stateless or stored), retrieve, list inputs, delete.

Thin, like :mod:`.routes`: the mapping is :mod:`.translate.responses` and
:mod:`.translate.responses_stream`, storage is :mod:`.records`.
"""
import logging
import secrets
import time
from typing import Any, Dict, List, Optional, Tuple

from flask import Response, request

from . import observe, records, schemas, translate
from .blueprint import bp
from .body import json_response, read_json
from .errors import APIError, InvalidRequest, NotFound
from .routes import _ignored_header as ignored_header
from .routes import _stream_response as stream_response
from .state import current as _state
from .store import Store

log = logging.getLogger(__name__)


def _new_id(prefix: str) -> str:
    return "%s_%s" % (prefix, secrets.token_hex(16))


def _owner() -> str:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return records.owner_tag(key.strip() if scheme.lower() == "bearer" else None,
                             bool(_state().keys))


def _store_or_400(param: str, what: str) -> Store:
    store = _state().store
    if store is None:
        raise InvalidRequest("%s needs stored responses, and storing is off on this gateway "
                             "(OLLAMA_GATEWAY_STORE=off)." % what, param=param,
                             code="store_disabled")
    return store


def _stored(response_id: str, code: str = "not_found", param: Optional[str] = None
            ) -> Dict[str, Any]:
    """Return the caller's stored entry for ``response_id``, else raise 404."""
    store = _state().store
    entry = records.load(store, _owner(), response_id) if store is not None else None
    if entry is None:
        raise NotFound("Response with id '%s' not found." % response_id[:64], param=param,
                       code=code)
    return entry


def _continuation(openai_req: Dict[str, Any]) -> Tuple[List[Dict[str, Any]],
                                                        Dict[str, Dict[str, Any]]]:
    """Return the stored conversation a request continues and the items it references."""
    history = []  # type: List[Dict[str, Any]]
    if "previous_response_id" in openai_req:
        _store_or_400("previous_response_id", "'previous_response_id'")
        history = _stored(openai_req["previous_response_id"], "previous_response_not_found",
                          "previous_response_id")["conversation"]
    items = openai_req.get("input")
    wanted = [item["id"] for item in items if item.get("type") == "item_reference"] \
        if isinstance(items, list) else []
    references = records.load_items(_store_or_400("input", "'item_reference'"), _owner(),
                                    wanted) if wanted else {}
    return history, references


@bp.route("/responses", methods=["POST"])
def create_response() -> Response:
    observe.begin()
    state = _state()
    openai_req = read_json("responses.request")
    route = observe.route(openai_req["model"], openai_req.get("stream", False))
    history, references = _continuation(openai_req)
    plan = translate.openai_responses_to_ollama(
        openai_req, route.ollama_model, _new_id, history, references,
        num_ctx=state.num_ctx(route.ollama_model), keep_alive=state.settings.keep_alive)
    for param, schema in plan.schemas.items():
        schemas.check_json_schema(schema, param)

    store = state.store if openai_req.get("store", True) else None
    skeleton = translate.response_skeleton(openai_req, _new_id("resp"), int(time.time()),
                                           route.name, store is not None)
    translator = translate.ResponsesStream(
        skeleton, plan.tools, _new_id, forced=plan.forced, events=plan.native["stream"],
        parallel_tool_calls=openai_req.get("parallel_tool_calls", True),
        max_tool_calls=openai_req.get("max_tool_calls"),
        encrypted_reasoning="reasoning.encrypted_content" in (openai_req.get("include") or ()))
    headers = ignored_header(plan.ignored)
    owner, ttl = _owner(), state.settings.response_ttl

    def save() -> None:
        if store is not None:
            records.save(store, owner, translator.response, plan.input_items, history, ttl)

    if plan.native["stream"]:
        def finished() -> None:
            if not translator.done:
                return  # the client left: nothing finished to keep
            try:
                save()
            except APIError as exc:  # the client already has its answer
                log.warning("could not store response %s: %s", skeleton["id"], exc.message)
        return stream_response(route.client, "/api/chat", plan.native, translator, headers,
                               on_close=finished)
    translator.feed(route.client.post_json("/api/chat", plan.native))
    observe.used(translator.response["usage"])
    save()
    return json_response(translator.response, headers=headers)


@bp.route("/responses/<response_id>", methods=["GET"])
def retrieve_response(response_id: str) -> Response:
    observe.begin()
    if request.args.get("stream", "false").lower() == "true":
        raise InvalidRequest("Streaming a stored response again is only possible for background "
                             "responses, which this gateway does not run.", param="stream",
                             code="unsupported_parameter")
    return json_response(_stored(response_id)["response"])


@bp.route("/responses/<response_id>", methods=["DELETE"])
def delete_response(response_id: str) -> Response:
    observe.begin()
    entry = _stored(response_id)
    records.delete(_state().store, entry)
    return json_response({"id": response_id, "object": "response", "deleted": True})


@bp.route("/responses/<response_id>/input_items", methods=["GET"])
def list_input_items(response_id: str) -> Response:
    observe.begin()
    entry = _stored(response_id)
    limit = request.args.get("limit", "20")
    if not limit.isdigit() or not 1 <= int(limit) <= 100:
        raise InvalidRequest("Invalid 'limit': expected an integer from 1 to 100.",
                             param="limit", code="invalid_value")
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("Invalid 'order': expected 'asc' or 'desc'.", param="order",
                             code="invalid_value")
    return json_response(translate.input_items_page(entry["input_items"], int(limit), order,
                                                    request.args.get("after")))


@bp.route("/responses/<response_id>/cancel", methods=["POST"])
def cancel_response(response_id: str) -> Response:
    observe.begin()
    _stored(response_id)
    raise InvalidRequest("Only background responses can be cancelled, and this gateway runs "
                         "none: every response is finished when it is answered.",
                         param="response_id", code="invalid_value")
