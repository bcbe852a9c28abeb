"""Generate the bundled JSON Schemas from OpenAI's OpenAPI spec.

Usage::

    python schemas/generate.py PATH/TO/openapi.yaml [--commit SHA]

Writes one ``<name>.json`` per entry of :data:`ROOTS` and a ``manifest.json``
next to this script. The output depends only on the spec and this file, so a
regeneration diff shows exactly what OpenAI changed. Never hand-edit the JSON:
gateway policy lives in :data:`OPEN_TOP_LEVEL` below.

The upstream commit is read from the ``SOURCE.md`` that sits next to the spec
(its sha256 row must match the file), or given with ``--commit``.

Needs PyYAML (a dev-only dependency); the runtime never imports this module.

What the conversion does, and why (the spec is OpenAPI 3.1 in name, half 3.0
in practice, and python-jsonschema ignores every keyword it does not know):

- Every ``$ref`` is inlined: against the same schemas kept in ``$defs`` this
  validated 25-40 % faster on jsonschema 4.26 (no ``referencing`` lookups)
  and 5-20 % on 3.2. Two exceptions, both local ``#/$defs/Name`` refs with no
  ``$id`` (3.2 resolves them as JSON pointers into the file, the same under
  any resolver scope, so one validator is safe to share between threads):
  a component that reaches itself (CompoundFilter, written with 2019-09's
  ``$recursiveAnchor``/``$recursiveRef: "#"``, which resolves to the one
  anchored component being converted), and, in the :data:`SHARE_DEFS`
  roots, components the file would otherwise repeat.
- Annotations, ``format`` and ``x-*`` are dropped. Format checking is off at
  runtime: data: URLs must pass ``format: uri``.
- ``nullable`` and ``anyOf[X, null]`` become ``type: [T, "null"]`` (and
  ``null`` joins an ``enum``); a union gets a null branch only if none of its
  branches admits null already (StopConfiguration's string branch does).
- ``allOf`` chains of plain objects are flattened, later members overriding
  earlier properties: ``top_logprobs`` is declared three ways in the chat
  request chain, and an intersection would reject ``null``.
- ``oneOf``/``anyOf`` become what a validator can explain: an object union whose
  branches carry a single-value ``enum`` tag becomes a tag ``enum`` plus an
  ``if``/``then``/``else`` chain on its values (errors then point at
  ``messages[0].role`` rather than "not valid under any of the given schemas",
  and never dump the whole message); branches of disjoint JSON
  types merge into one ``type`` list, with ``if: {type}`` where a branch has
  keywords that are not specific to its type; ``anyOf[string, string enum]``
  (model and voice ids) is just ``string``.
- The same dispatch handles discriminated unions whose tag is optional,
  multi-valued or shared (the Responses ``input`` items): each tag value
  leads to the branches that declare it, an absent tag to the branches where
  it is optional, and branches still sharing a value are split on a further
  tag (``role``) or tried in turn, reporting the first one's errors. That is
  ``anyOf``, not ``oneOf``: a user message with a content list is both an
  EasyInputMessage and an InputMessage, and the discriminator picks by value.
  A union nested as a branch (Item inside InputItem) is dispatched over its
  members. ``type: object`` beside a union of objects, or beside a ``$ref``
  to one, is dropped as implied; any other sibling stops the generator.
- The output declares 2020-12 but uses only keywords that mean the same in
  Draft 7, so jsonschema 3.2 validates it identically. No ``$id``: jsonschema
  3.2 cannot resolve refs against a ``urn:`` base.
"""
import argparse
import hashlib
import json
import os
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

GENERATOR_VERSION = 1
UPSTREAM_REPOSITORY = "https://github.com/openai/openai-openapi"
UPSTREAM_PATH = "openapi.yaml"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Output name -> component schema. Requests are validated at runtime; the
#: responses let the tests check what the gateway emits.
ROOTS = [
    ("chat_completions.request", "CreateChatCompletionRequest"),
    ("completions.request", "CreateCompletionRequest"),
    ("embeddings.request", "CreateEmbeddingRequest"),
    ("chat_completions.response", "CreateChatCompletionResponse"),
    ("chat_completions.chunk", "CreateChatCompletionStreamResponse"),
    ("completions.response", "CreateCompletionResponse"),
    ("embeddings.response", "CreateEmbeddingResponse"),
    ("models.list", "ListModelsResponse"),
    ("models.model", "Model"),
    ("error", "ErrorResponse"),
    ("responses.request", "CreateResponse"),
    ("responses.response", "Response"),
    ("responses.stream_event", "ResponseStreamEvent"),
    ("responses.input_items", "ResponseItemList"),
    # DELETE /responses/{response_id} answers 200 with no content schema in
    # the spec, so there is no component to bundle for it.
]

#: Gateway policy: these roots accept unknown top-level properties, so the
#: spec's ``additionalProperties: false`` on the embeddings request is dropped.
#: Clients send extras (``keep_alive``, ``options``, other providers' fields)
#: and rejecting them breaks them for no gain (json-api/json-api#851,
#: vllm-project/vllm#10463). Nested objects stay as the spec has them.
OPEN_TOP_LEVEL = frozenset(["chat_completions.request", "completions.request",
                            "embeddings.request", "responses.request"])

#: Output size policy: in these roots a component that the tree repeats is
#: kept once in ``$defs``. Inlined, the stream-event file would be 16.7 MB
#: (the whole Response sits in six events, the tool union in three items).
#: Responses and events are only checked in tests, so the ref lookups cost
#: nothing at runtime; requests stay inlined for speed.
#: Gateway policy: request fields the spec marks required that real clients
#: leave out and OpenAI's live API accepts without (Codex CLI sends none of
#: them; the SDKs' function tools omit ``strict``/``parameters``). Dropped from
#: ``required`` in these roots only; the response schemas keep them, so what
#: the gateway itself emits is still checked against the full spec.
RELAXED_REQUIRED = {
    "responses.request": {
        "InputImageContent": ["detail"],
        "ReasoningItem": ["id"],
        "OutputMessage": ["id", "type", "status"],
        "OutputTextContent": ["annotations", "logprobs"],
        "FunctionTool": ["strict", "parameters"],
        "NamespaceToolParam": ["description"],
    },
}

#: Speed policy: the tag values tested first in a root's dispatch chains (the
#: spec's order puts Codex's common items and tools 5th to 13th).
DISPATCH_FIRST = {
    "responses.request": ["message", "function_call", "function_call_output", "reasoning",
                          "custom_tool_call", "custom_tool_call_output", "input_text",
                          "output_text", "input_image", "function", "custom", "namespace",
                          "web_search", "user", "assistant", "developer", "system"],
}

SHARE_DEFS = frozenset(["responses.response", "responses.stream_event",
                        "responses.input_items"])
SHARE_MIN_SIZE = 512

ANNOTATIONS = frozenset([
    "description", "title", "example", "examples", "default", "deprecated",
    "readOnly", "writeOnly", "discriminator", "externalDocs", "xml", "format",
    "$comment",
])
#: Keywords that validate the same way in Draft 7 and 2020-12. Anything else
#: stops the generator, so a new construct in the spec is looked at by a human.
KEYWORDS = frozenset([
    "type", "enum", "const", "properties", "required", "additionalProperties",
    "items", "minItems", "maxItems", "uniqueItems", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
    "maxLength", "pattern", "minProperties", "maxProperties", "propertyNames",
    "allOf", "anyOf", "oneOf",
])
#: Keywords that only constrain instances of that JSON type; they may be merged
#: into a node whose ``type`` lists other types too.
TYPE_KEYWORDS = {
    "string": {"minLength", "maxLength", "pattern"},
    "array": {"items", "minItems", "maxItems", "uniqueItems"},
    "object": {"properties", "required", "additionalProperties",
               "minProperties", "maxProperties", "propertyNames"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
               "multipleOf"},
    "boolean": set(),
    "null": set(),
}
TYPE_KEYWORDS["integer"] = TYPE_KEYWORDS["number"]
NULL = {"type": "null"}
REF_PREFIX = "#/components/schemas/"
DEFS_PREFIX = "#/$defs/"


class SpecError(Exception):
    """The spec uses something this generator does not know how to convert."""


def _types(node: dict) -> List[str]:
    """Return the node's ``type`` as a list (empty when it has none)."""
    value = node.get("type", [])
    return [value] if isinstance(value, str) else list(value)


def _family(name: str) -> str:
    """Return the type family: integers are numbers for disjointness."""
    return "number" if name == "integer" else name


def _specific(types: List[str]) -> set:
    """Return the keywords that only apply to instances of ``types``."""
    out = set()  # type: set
    for name in types:
        out |= TYPE_KEYWORDS[name]
    return out


def _add_null(node: dict) -> Optional[dict]:
    """Return ``node`` also admitting null, or None if a type list can't say so."""
    types = _types(node)
    if "null" in types:
        return node
    if not types or set(node) - {"type", "enum"} - _specific(types):
        return None
    out = dict(node, type=types + ["null"])
    if "enum" in out:
        out["enum"] = out["enum"] + [None]
    return out


class _Identity:
    """A mapping keyed by object identity: converted nodes are dicts, not hashable."""

    def __init__(self) -> None:
        self.items = {}  # type: Dict[int, tuple]

    def __contains__(self, key: object) -> bool:
        return id(key) in self.items

    def __getitem__(self, key: object) -> List[dict]:
        return self.items[id(key)][1]

    def __setitem__(self, key: object, value: List[dict]) -> None:
        self.items[id(key)] = (key, value)  # the key kept alive keeps its id unique


def _tag_values(node: dict, tag: str) -> Optional[list]:
    """Return the values property ``tag`` of ``node`` may take, if it is just an enum."""
    prop = node.get("properties", {}).get(tag)
    if prop is None or "enum" not in prop or set(prop) - {"type", "enum"}:
        return None
    return prop["enum"]


def _in_turn(branches: List[dict]) -> dict:
    """Return ``anyOf`` of ``branches`` as an if/else chain reporting the first one's errors."""
    # An anyOf failure says only "not valid under any of the given schemas" at
    # the item; the chain says what is wrong with the first (spec order)
    # alternative, and skips the others once one matched.
    out = branches[0]
    for branch in reversed(branches[1:]):
        out = {"if": branch, "else": out}
    return out


class Converter:
    """Converts component schemas, memoised by name (refs are inlined)."""

    def __init__(self, components: Dict[str, dict], first: Sequence[str] = ()) -> None:
        self.components = components
        #: Tag values whose branches a dispatch chain tests first, in this order.
        self.first = list(first)
        self.done = {}  # type: Dict[str, Optional[dict]]
        #: Components that reach themselves: converted once, kept in ``$defs``.
        self.defs = {}  # type: Dict[str, dict]
        self.order = []  # type: List[str]
        self.stack = []  # type: List[str]
        self.anchors = set()  # type: set
        #: Union node -> the object branches it stands for (identity keyed).
        self.members = _Identity()

    def component(self, name: str) -> dict:
        """Return the converted component ``name`` (shared; never mutate it)."""
        if name not in self.components:
            raise SpecError("unknown component " + name)
        if name in self.done:
            node = self.done[name]
            if node is None:  # reached again while converting it: a cycle
                self.defs.setdefault(name, {})
                return {"$ref": DEFS_PREFIX + name}
            return node
        self.done[name] = None
        mark = len(self.order)
        node = self._convert_component(name)
        if name in self.defs:
            # Converted against a placeholder that could not be seen through,
            # so unions over it got no tag dispatch. Convert once more, the
            # ref now viewing the first result (same tags), and forget what
            # was memoised in between: it may hold the blind version.
            self.defs[name] = node
            for later in self.order[mark:]:
                del self.done[later]
            del self.order[mark:]
            self.done[name] = {"$ref": DEFS_PREFIX + name}
            self.defs[name] = self._convert_component(name)
        else:
            self.done[name] = node
        self.order.append(name)
        return self.done[name]

    def _convert_component(self, name: str) -> dict:
        """Return component ``name`` converted, tracking the components it is inside."""
        self.stack.append(name)
        try:
            return self.convert(self.components[name], name)
        finally:
            self.stack.pop()

    def view(self, node: dict) -> dict:
        """Return what ``node`` validates like: the target if it is a ``$defs`` ref."""
        ref = node.get("$ref")
        if ref is None:
            return node
        return self.defs[ref[len(DEFS_PREFIX):]]

    def recursive_ref(self, ref: str, where: str) -> dict:
        """Return the ref a 2019-09 ``$recursiveRef`` stands for."""
        # "#" names the enclosing component when it says $recursiveAnchor; the
        # "outermost anchor in the dynamic scope" rule is only unambiguous with
        # a single anchored component on the stack.
        anchored = [n for n in self.stack if n in self.anchors]
        if ref != "#" or len(anchored) != 1 or anchored[0] != self.stack[-1]:
            raise SpecError("%s: $recursiveRef %s inside %s" % (where, ref, anchored))
        return self.component(anchored[0])

    def accepts(self, node: dict) -> Optional[set]:
        """Return the JSON types ``node`` can accept, or None if it does not say."""
        node = self.view(node)
        if "type" in node:
            return set(_types(node))
        for kind in ("oneOf", "anyOf"):
            if kind in node:
                out = set()  # type: set
                for branch in node[kind]:
                    mine = self.accepts(branch)
                    if mine is None:
                        return None
                    out |= mine
                return out
        return None

    def implied(self, siblings: dict, target: List[dict]) -> bool:
        """Return True if ``siblings`` only restate the types ``target`` accepts."""
        if set(siblings) - {"type"}:
            return False
        allowed = set(_types(siblings))
        if "number" in allowed:
            allowed.add("integer")
        found = [self.accepts(t) for t in target]
        return all(types is not None and types <= allowed for types in found)

    def convert(self, node: object, where: str) -> dict:
        """Return ``node`` converted, with its subschemas converted first."""
        if not isinstance(node, dict):
            raise SpecError("%s: schema is not an object" % where)
        node = {k: v for k, v in node.items()
                if k not in ANNOTATIONS and not k.startswith("x-")}
        nullable = node.pop("nullable", False)
        if node.pop("$recursiveAnchor", False):
            if not self.stack or where != self.stack[-1]:
                raise SpecError("%s: $recursiveAnchor below a component's top" % where)
            self.anchors.add(where)
        if "$recursiveRef" in node:
            ref = node.pop("$recursiveRef")
            if node:
                raise SpecError("%s: $recursiveRef with %s" % (where, sorted(node)))
            out = self.recursive_ref(ref, where)
            return self.nullable(out) if nullable else out
        if "$ref" in node:
            ref = node.pop("$ref")
            if not ref.startswith(REF_PREFIX):
                raise SpecError("%s: non-local $ref %s" % (where, ref))
            out = self.component(ref[len(REF_PREFIX):])
            # 2020-12 applies siblings too; Draft 7 would ignore them. Only a
            # ``type`` the target implies anyway (Item under InputItem) can go.
            if node and not self.implied(node, [out]):
                raise SpecError("%s: $ref %s with %s" % (where, ref, sorted(node)))
            return self.nullable(out) if nullable else out
        unknown = set(node) - KEYWORDS
        if unknown:
            raise SpecError("%s: unsupported keywords %s" % (where, sorted(unknown)))
        out = {}
        for key, value in node.items():
            if key == "properties":
                value = {name: self.convert(sub, "%s.%s" % (where, name))
                         for name, sub in value.items()}
            elif key in ("allOf", "anyOf", "oneOf"):
                value = [self.convert(sub, "%s/%s/%d" % (where, key, i))
                         for i, sub in enumerate(value)]
            elif key == "items":
                # A tagged part in an array (developer content, prediction)
                # gets the dispatch too, so a wrong ``type`` is reported as
                # such rather than as a missing field of the one allowed part.
                value = self.convert(value, "%s/items" % where)
                value = self.tagged([value], exact=True) or value
            elif key in ("additionalProperties", "propertyNames") and not isinstance(value, bool):
                value = self.convert(value, "%s/%s" % (where, key))
            elif key == "required" and not value:
                continue
            out[key] = value
        if "allOf" in out:
            out = self.flatten(out, where)
        for kind in ("oneOf", "anyOf"):
            if kind in out:
                rest = {k: v for k, v in out.items() if k != kind}
                # ``type: object`` beside a union of objects (Item) says nothing new.
                if rest and not self.implied(rest, out[kind]):
                    raise SpecError("%s: %s with siblings %s" % (where, kind, sorted(rest)))
                out = self.union(out[kind], kind)
        return self.nullable(out) if nullable else out

    def flatten(self, node: dict, where: str) -> dict:
        """Return an ``allOf`` of plain objects merged, later members winning."""
        members = node["allOf"] + [{k: v for k, v in node.items() if k != "allOf"}]
        out = {"type": "object"}  # type: dict
        for member in members:
            if set(member) - {"type", "properties", "required", "additionalProperties"} \
                    or member.get("type", "object") != "object":
                raise SpecError("%s: allOf member is not a plain object" % where)
            if "properties" in member:
                out["properties"] = dict(out.get("properties", {}), **member["properties"])
            if "required" in member:
                required = out.get("required", [])
                out["required"] = required + [n for n in member["required"] if n not in required]
            if "additionalProperties" in member:
                out["additionalProperties"] = member["additionalProperties"]
        return out

    def nullable(self, node: dict) -> dict:
        """Return ``node`` also admitting null."""
        simple = _add_null(node)
        if simple is not None:
            return simple
        # A null branch may join a union only if no branch admits null already
        # (StopConfiguration's string branch does; null would then match twice).
        kind = "oneOf" if "oneOf" in node else "anyOf"
        if list(node) == [kind] and all(
                _types(b) and "null" not in _types(b) for b in node[kind]):
            return {kind: node[kind] + [NULL]}
        return self.union([node, NULL], "anyOf")

    def union(self, branches: List[dict], kind: str) -> dict:
        """Return the simplest schema equivalent to ``{kind: branches}``."""
        if len(branches) == 2 and NULL in branches:
            simple = _add_null(branches[1 - branches.index(NULL)])
            if simple is not None:
                return simple
        for branch in branches:  # anyOf[string, string enum]: the enum only documents
            if len(branch) == 1 and isinstance(branch.get("type"), str) \
                    and all(b.get("type") == branch["type"] for b in branches):
                return branch
        original = branches
        objects = [b for b in branches if self.view(b).get("type") == "object"
                   or b in self.members and self.accepts(b) == {"object"}]
        tagged = self.tagged(objects) if objects else None
        if tagged is not None:
            first = branches.index(objects[0])
            branches = [b for b in branches if all(b is not o for o in objects)]
            branches.insert(first, tagged)
        if len(branches) == 1:
            out = branches[0]
        else:
            out = self.by_type(branches) or {kind: branches}
        if len(objects) == len(original):
            # Remembered so that a union listing this one as a branch (Item
            # inside InputItem) can dispatch over the members directly.
            self.members[out] = self.flat(objects)
        return out

    def flat(self, branches: List[dict]) -> List[dict]:
        """Return ``branches`` with each member union replaced by its own members."""
        out = []  # type: List[dict]
        for branch in branches:
            out += self.members[branch] if branch in self.members else [branch]
        return out

    def tagged(self, branches: List[dict], exact: bool = False) -> Optional[dict]:
        """Return a tag-dispatch schema for object branches, or None if untagged.

        First choice: one required tag with a distinct single value per branch
        (chat's unions). Unless ``exact``, :meth:`grouped` then tries tags that
        are optional, multi-valued or shared between branches.
        """
        views = [self.view(b) for b in branches]
        tags = None  # type: Optional[List[str]]
        for view in views:
            if set(view) & {"allOf", "anyOf", "oneOf", "if"}:
                tags = []
                break
            props = view.get("properties", {})
            mine = [n for n in props if n in view.get("required", ())
                    and len(props[n].get("enum", ())) == 1]
            tags = mine if tags is None else [n for n in tags if n in mine]
        for tag in tags or ():
            values = [v["properties"][tag]["enum"][0] for v in views]
            if len(set(map(json.dumps, values))) != len(values):
                continue
            # An if/then/else chain stops at the matching tag: 25-40 % faster
            # than one if/then per branch under allOf, on 3.2 and 4.x alike.
            chain = {}  # type: dict
            for value, branch in reversed(self.ranked(list(zip(values, branches)))):
                chain = dict({"if": {"required": [tag], "properties": {tag: {"const": value}}},
                              "then": branch}, **({"else": chain} if chain else {}))
            return dict({"type": "object", "required": [tag],
                         "properties": {tag: {"enum": values}}}, **chain)
        if exact:
            return None
        return self.grouped(self.flat(branches), ())

    def ranked(self, entries: list, value: Callable[[Any], Any] = lambda pair: pair[0]) -> list:
        """Return ``entries`` with those whose tag value is in :attr:`first` in front.

        Only the order of the tests changes (the tags are disjoint): the types
        clients send most are found after one test instead of a dozen.
        """
        rank = {tag: k for k, tag in enumerate(self.first)}
        return sorted(entries, key=lambda entry: rank.get(value(entry), len(rank)))

    def grouped(self, branches: List[dict], used: tuple) -> Optional[dict]:
        """Return a dispatch on a tag that branches may share or omit, or None.

        Each tag value leads to the branches that accept it; an instance
        without the tag goes to the branches where it is optional. That is
        ``anyOf`` (an OpenAPI discriminator selects by value, so two branches
        with one value are alternatives, not a ``oneOf`` violation: a user
        message with a content list is both an EasyInputMessage and an
        InputMessage). Branches left sharing a value are split on a further
        tag (``role``) if they have one, else tried in turn.
        """
        views = [self.view(b) for b in branches]
        if len(branches) < 2 or any(v.get("type") != "object" or set(v) & {
                "allOf", "anyOf", "oneOf", "if"} for v in views):
            return None
        for tag in views[0].get("properties", {}):
            values = [_tag_values(v, tag) for v in views]
            if tag in used or any(v is None for v in values):
                continue
            absent = [b for b, v in zip(branches, views) if tag not in v.get("required", ())]
            groups = []  # type: List[list]
            for value in [x for vals in values for x in vals]:
                members = [b for b, vals in zip(branches, values) if value in vals]
                known = next((g for g in groups if g[1] == members), None)
                if known is None:
                    groups.append([[value], members])
                elif value not in known[0]:
                    known[0].append(value)
            if len(groups) < 2 and len(absent) in (0, len(branches)) \
                    or any(len(g[1]) == len(branches) for g in groups):
                continue  # the tag tells the branches apart nowhere
            groups = self.ranked(groups, lambda group: group[0][0])
            chain = {}  # type: dict
            if absent:
                chain = {"if": {"required": [tag]},
                         "else": self.grouped(absent, used + (tag,)) or _in_turn(absent)}
            for group_values, members in reversed(groups):
                test = {"const": group_values[0]} if len(group_values) == 1 \
                    else {"enum": group_values}
                chain = dict({"if": {"required": [tag], "properties": {tag: test}},
                              "then": self.grouped(members, used + (tag,)) or _in_turn(members)},
                             **({"else": chain} if chain else {}))
            out = {"type": "object"}  # type: dict
            if not absent:
                out["required"] = [tag]
            out["properties"] = {tag: {"enum": [x for g in groups for x in g[0]]}}
            out.update(chain)
            return out
        return None

    def by_type(self, branches: List[dict]) -> Optional[dict]:
        """Return branches of disjoint JSON types as one node, or None."""
        types = []  # type: List[str]
        merged = {}  # type: dict
        dispatch = []
        for branch in branches:
            mine = _types(branch)
            if not mine or {_family(t) for t in mine} & {_family(t) for t in types}:
                return None
            types += mine
            rest = {k: v for k, v in branch.items() if k != "type"}
            if set(rest) <= _specific(mine) and not set(rest) & set(merged):
                merged.update(rest)
            else:
                dispatch.append({"if": {"type": branch["type"]}, "then": branch})
        out = {"type": types[0] if len(types) == 1 else types}  # type: dict
        out.update(merged)
        if dispatch:
            out["allOf"] = dispatch
        return out


def _source(spec_path: str, sha256: str, commit: Optional[str]) -> str:
    """Return the upstream commit, from ``--commit`` or the spec's SOURCE.md."""
    if commit:
        return commit
    source_md = os.path.join(os.path.dirname(os.path.abspath(spec_path)), "SOURCE.md")
    try:
        with open(source_md, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        sys.exit("no SOURCE.md next to the spec; pass --commit SHA")
    found = re.search(r"^\|\s*commit\s*\|\s*`([0-9a-f]{40})`", text, re.M)
    recorded = re.search(r"^\|\s*sha256\s*\|\s*`([0-9a-f]{64})`", text, re.M)
    if not found or not recorded:
        sys.exit("SOURCE.md names no commit/sha256 row; pass --commit SHA")
    if recorded.group(1) != sha256:
        sys.exit("SOURCE.md describes another file (sha256 %s, spec has %s)"
                 % (recorded.group(1), sha256))
    return found.group(1)


def _dump(obj: object) -> bytes:
    """Return the canonical file content for ``obj``."""
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def generate(spec: dict) -> Dict[str, dict]:
    """Return ``{name: schema}`` for every entry of :data:`ROOTS`, policy applied."""
    components = spec["components"]["schemas"]
    converter = Converter(components)
    out = {}
    for name, component in ROOTS:
        if name in RELAXED_REQUIRED:
            converter = Converter(_relaxed(components, RELAXED_REQUIRED[name]),
                                  DISPATCH_FIRST.get(name, ()))
        root = dict(converter.view(converter.component(component)))
        if name in OPEN_TOP_LEVEL:
            root.pop("additionalProperties", None)
        defs = converter.defs
        if name in SHARE_DEFS:
            root, shared = _share(root, converter, SHARE_MIN_SIZE)
            defs = dict(defs, **shared)
        defs = _defs(root, defs)
        if defs:
            root["$defs"] = defs
        out[name] = dict({"$schema": DIALECT}, **root)
        if name in RELAXED_REQUIRED:
            converter = Converter(components)
    return out


def _relaxed(components: Dict[str, dict], optional: Dict[str, List[str]]) -> Dict[str, dict]:
    """Return ``components`` with the ``optional`` fields taken out of ``required``."""
    out = dict(components)
    for name, fields in optional.items():
        node = components[name]
        if not set(fields) <= set(node.get("required", ())):
            raise SpecError("%s: %s not required in the spec any more; update "
                            "RELAXED_REQUIRED" % (name, fields))
        out[name] = dict(node, required=[f for f in node["required"] if f not in fields])
    return out


def _share(root: dict, converter: Converter, min_size: int) -> Tuple[dict, Dict[str, dict]]:
    """Return ``root`` with each component it repeats replaced by a ref, and their defs.

    A component counts as repeated when two places in the (shared, memoised)
    tree point at it and its compact JSON is at least ``min_size`` bytes.
    """
    names = {}  # type: Dict[int, str]
    for name, node in converter.done.items():
        if node is not None:  # of aliases (A = $ref B), B: converted last
            names[id(node)] = name
    parents = {}  # type: Dict[int, int]
    seen = set()  # type: set
    todo = [root]
    while todo:
        node = todo.pop()
        children = node.values() if isinstance(node, dict) else node \
            if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                parents[id(child)] = parents.get(id(child), 0) + 1
                if id(child) not in seen:
                    seen.add(id(child))
                    todo.append(child)
    hoisted = {}  # type: Dict[int, str]
    for key, name in names.items():
        if parents.get(key, 0) > 1 and len(json.dumps(converter.done[name])) >= min_size:
            hoisted[key] = name
    copies = {}  # type: Dict[int, object]

    def copy(node: object, top: bool = False) -> object:
        if not top and id(node) in hoisted:
            return {"$ref": DEFS_PREFIX + hoisted[id(node)]}
        if id(node) not in copies:
            if isinstance(node, dict):
                copies[id(node)] = {k: copy(v) for k, v in node.items()}
            elif isinstance(node, list):
                copies[id(node)] = [copy(v) for v in node]
            else:
                return node
        return copies[id(node)]

    defs = {name: copy(converter.done[name], top=True) for name in hoisted.values()}
    return copy(root, top=True), defs


def _defs(root: dict, defs: Dict[str, dict]) -> Dict[str, dict]:
    """Return the ``$defs`` entries ``root`` refers to, directly or through each other."""
    out = {}  # type: Dict[str, dict]
    seen = set()  # type: set
    todo = [root]
    while todo:  # nodes are shared between parents: visit each once
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None and ref[len(DEFS_PREFIX):] not in out:
                out[ref[len(DEFS_PREFIX):]] = defs[ref[len(DEFS_PREFIX):]]
                todo.append(defs[ref[len(DEFS_PREFIX):]])
            todo.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            todo.extend(reversed(node))
    return dict(sorted(out.items()))


def main(argv: Optional[List[str]] = None) -> None:
    """Write the schemas and manifest next to this script."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="path to openai-openapi's openapi.yaml")
    parser.add_argument("--commit", help="upstream commit of the spec (default: SOURCE.md)")
    args = parser.parse_args(argv)
    with open(args.spec, "rb") as f:
        raw = f.read()
    sha256 = hashlib.sha256(raw).hexdigest()
    commit = _source(args.spec, sha256, args.commit)
    import yaml  # dev-only; this file also ships inside the data package
    # The C loader is ~5x faster on this 3 MB file.
    spec = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    here = os.path.dirname(os.path.abspath(__file__))
    files = {}
    generated = generate(spec)
    for name, component in ROOTS:
        content = _dump(generated[name])
        with open(os.path.join(here, name + ".json"), "wb") as f:
            f.write(content)
        files[name + ".json"] = {"root": component,
                                 "sha256": hashlib.sha256(content).hexdigest()}
    manifest = {
        "generator": {"script": "schemas/generate.py", "version": GENERATOR_VERSION},
        "source": {"repository": UPSTREAM_REPOSITORY, "commit": commit,
                   "path": UPSTREAM_PATH, "sha256": sha256,
                   "openapi": spec["openapi"], "info_version": spec["info"]["version"]},
        "files": files,
    }
    with open(os.path.join(here, "manifest.json"), "wb") as f:
        f.write(_dump(manifest))


if __name__ == "__main__":
    main()
