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

- Every ``$ref`` is inlined. Nothing in these closures recurses; against the
  same schemas kept in ``$defs`` this validated 25-40 % faster on jsonschema
  4.26 (no ``referencing`` lookups) and 5-20 % on 3.2, whose ``RefResolver``
  keeps per-call state that is unsafe to share between threads anyway.
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
from typing import Dict, List, Optional

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
]

#: Gateway policy: these roots accept unknown top-level properties, so the
#: spec's ``additionalProperties: false`` on the embeddings request is dropped.
#: Clients send extras (``keep_alive``, ``options``, other providers' fields)
#: and rejecting them breaks them for no gain (json-api/json-api#851,
#: vllm-project/vllm#10463). Nested objects stay as the spec has them.
OPEN_TOP_LEVEL = frozenset(["chat_completions.request", "completions.request",
                            "embeddings.request"])

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
    "maxLength", "pattern", "minProperties", "maxProperties", "allOf", "anyOf",
    "oneOf",
])
#: Keywords that only constrain instances of that JSON type; they may be merged
#: into a node whose ``type`` lists other types too.
TYPE_KEYWORDS = {
    "string": {"minLength", "maxLength", "pattern"},
    "array": {"items", "minItems", "maxItems", "uniqueItems"},
    "object": {"properties", "required", "additionalProperties",
               "minProperties", "maxProperties"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
               "multipleOf"},
    "boolean": set(),
    "null": set(),
}
TYPE_KEYWORDS["integer"] = TYPE_KEYWORDS["number"]
NULL = {"type": "null"}
REF_PREFIX = "#/components/schemas/"


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


class Converter:
    """Converts component schemas, memoised by name (refs are inlined)."""

    def __init__(self, components: Dict[str, dict]) -> None:
        self.components = components
        self.done = {}  # type: Dict[str, Optional[dict]]

    def component(self, name: str) -> dict:
        """Return the converted component ``name`` (shared; never mutate it)."""
        if name not in self.components:
            raise SpecError("unknown component " + name)
        if name not in self.done:
            self.done[name] = None
            self.done[name] = self.convert(self.components[name], name)
        node = self.done[name]
        if node is None:
            raise SpecError("recursive $ref to %s; cannot inline" % name)
        return node

    def convert(self, node: object, where: str) -> dict:
        """Return ``node`` converted, with its subschemas converted first."""
        if not isinstance(node, dict):
            raise SpecError("%s: schema is not an object" % where)
        node = {k: v for k, v in node.items()
                if k not in ANNOTATIONS and not k.startswith("x-")}
        nullable = node.pop("nullable", False)
        if "$ref" in node:
            ref = node.pop("$ref")
            if node or not ref.startswith(REF_PREFIX):
                raise SpecError("%s: $ref %s with %s" % (where, ref, sorted(node)))
            out = self.component(ref[len(REF_PREFIX):])
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
                value = self.tagged([value]) or value
            elif key == "additionalProperties" and not isinstance(value, bool):
                value = self.convert(value, "%s/%s" % (where, key))
            elif key == "required" and not value:
                continue
            out[key] = value
        if "allOf" in out:
            out = self.flatten(out, where)
        for kind in ("oneOf", "anyOf"):
            if kind in out:
                rest = {k: v for k, v in out.items() if k != kind}
                if rest:
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
        objects = [b for b in branches if b.get("type") == "object"]
        tagged = self.tagged(objects) if objects else None
        if tagged is not None:
            first = branches.index(objects[0])
            branches = [b for b in branches if all(b is not o for o in objects)]
            branches.insert(first, tagged)
        if len(branches) == 1:
            return branches[0]
        return self.by_type(branches) or {kind: branches}

    def tagged(self, branches: List[dict]) -> Optional[dict]:
        """Return a tag-dispatch schema for object branches, or None if untagged."""
        tags = None  # type: Optional[List[str]]
        for branch in branches:
            if set(branch) & {"allOf", "anyOf", "oneOf", "if"}:
                return None
            props = branch.get("properties", {})
            mine = [n for n in props if n in branch.get("required", ())
                    and len(props[n].get("enum", ())) == 1]
            tags = mine if tags is None else [n for n in tags if n in mine]
        for tag in tags or ():
            values = [b["properties"][tag]["enum"][0] for b in branches]
            if len(set(map(json.dumps, values))) != len(values):
                continue
            # An if/then/else chain stops at the matching tag: 25-40 % faster
            # than one if/then per branch under allOf, on 3.2 and 4.x alike.
            chain = {}  # type: dict
            for value, branch in reversed(list(zip(values, branches))):
                chain = dict({"if": {"required": [tag], "properties": {tag: {"const": value}}},
                              "then": branch}, **({"else": chain} if chain else {}))
            return dict({"type": "object", "required": [tag],
                         "properties": {tag: {"enum": values}}}, **chain)
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
    converter = Converter(spec["components"]["schemas"])
    out = {}
    for name, component in ROOTS:
        root = dict(converter.component(component))
        if name in OPEN_TOP_LEVEL:
            root.pop("additionalProperties", None)
        out[name] = dict({"$schema": DIALECT}, **root)
    return out


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
