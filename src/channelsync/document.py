"""Resource documents: plain dicts, checked against the generated schema and normalised.

This is the fast path shared by ``validate`` and ``plan``: a compiled (Rust) validator and a
small defaults filler, both driven by the schema that ``model.py`` generates and that ships
inside the package, so that pydantic is not imported on it. ``tests/test_document.py``
checks that normalising gives exactly what the pydantic model gives.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from channelsync import kinds
from channelsync.defaults import PACKAGED_SCHEMA, apply_derived
from channelsync.errors import ChannelsyncError
from channelsync.kinds import get_path as get_path


@cache
def combined_schema() -> dict[str, Any]:
    """The packaged schema while the kinds are the built-in ones (no pydantic import); else,
    with a kind registered at run time, the schema generated from the registry's models.

    The packaged file is written by ``channelsync schema --write`` (schema -> defaults, never
    back to this module)."""
    if kinds.as_shipped():
        try:
            loaded: dict[str, Any] = json.loads(PACKAGED_SCHEMA.read_text(encoding="utf-8"))
        except FileNotFoundError:  # pragma: no cover - broken install
            raise ChannelsyncError(
                f"{PACKAGED_SCHEMA} is missing: reinstall channelsync (in a checkout: "
                "channelsync schema --write)"
            ) from None
        return loaded
    from channelsync.schema import COMBINED, all_schemas

    return all_schemas()[COMBINED]


def kind_schema(kind: str) -> dict[str, Any]:
    """The schema of one kind, as a self-contained document."""
    defs = combined_schema()["$defs"]
    return {"$ref": f"#/$defs/{kind}", "$defs": defs}


@cache
def _fast_validator(kind: str) -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(kind_schema(kind), validate_formats=False)


def is_valid(kind: str, data: Any) -> bool:
    return bool(_fast_validator(kind).is_valid(data))


def _object_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema behind ``schema`` (through $ref and optional anyOf), if any."""
    defs = combined_schema()["$defs"]
    if "$ref" in schema:
        return _object_schema(defs[schema["$ref"].rsplit("/", 1)[-1]])
    for branch in schema.get("anyOf", ()):
        found = _object_schema(branch)
        if found is not None:
            return found
    return schema if schema.get("type") == "object" else None


object_schema = _object_schema  # public: fmt orders keys by it


# A filler is the compiled form of an object schema: (key, default, nested filler) per property.
_Filler = list[tuple[str, Any, Any]]
_NO_DEFAULT = object()


def _compile(schema: dict[str, Any]) -> _Filler:
    filler: _Filler = []
    for key, sub in schema.get("properties", {}).items():
        nested = _object_schema(sub)
        default = sub.get("default", _NO_DEFAULT)
        filler.append((key, default, _compile(nested) if nested is not None else None))
    return filler


@cache
def _filler(kind: str) -> _Filler:
    schema = _object_schema({"$ref": f"#/$defs/{kind}"})
    assert schema is not None
    return _compile(schema)


def _fill(filler: _Filler, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, default, nested in filler:
        if key in data:
            value = data[key]
            out[key] = _fill(nested, value) if nested is not None and type(value) is dict else value
        elif default is not _NO_DEFAULT:
            out[key] = copy.deepcopy(default) if isinstance(default, list | dict) else default
    if len(out) < len(data):
        for key, value in data.items():
            out.setdefault(key, value)
    return out


def with_static_defaults(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with every schema default filled in, keys in schema order."""
    return _fill(_filler(kind), data)


def normalize(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The canonical form of a valid document: every default applied, once."""
    doc = with_static_defaults(kind, data)
    apply_derived(kind, doc)
    return doc


def without_local(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without channelsync's own fields (``local_fields``, ``renamed_from``), which
    never reach a tenant; changed in place and returned."""
    doc.pop("renamed_from", None)
    for *parents, name in kinds.get(kind).local_fields:
        node = get_path(doc, tuple(parents)) if parents else doc
        if isinstance(node, dict):
            node.pop(name, None)
    return doc


def tenant_form(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A valid document as a tenant stores it: normalised exactly as the loader normalises a
    file, without channelsync's own fields, so a minimal body written through the REST API
    reads back as the config's equivalent (e.g. an overriding agent's ``outgoing.user``) and
    a config's local paths (``tls.ca_file``) never reach a tenant."""
    return without_local(kind, normalize(kind, data))


@cache
def secret_paths(kind: str) -> tuple[tuple[str, ...], ...]:
    """Paths of the secret (write-only) fields of a kind, from the schema."""
    found: list[tuple[str, ...]] = []

    def walk(schema: dict[str, Any], prefix: tuple[str, ...]) -> None:
        for key, sub in schema.get("properties", {}).items():
            if _is_write_only(sub):
                found.append((*prefix, key))
            nested = _object_schema(sub)
            if nested is not None:
                walk(nested, (*prefix, key))

    root = _object_schema({"$ref": f"#/$defs/{kind}"})
    assert root is not None
    walk(root, ())
    return tuple(found)


def field_default(kind: str, path: tuple[str, ...]) -> Any:
    """The schema default of a field of a kind (None when it has none)."""
    schema = _object_schema({"$ref": f"#/$defs/{kind}"})
    for key in path[:-1]:
        if schema is None:
            return None
        schema = _object_schema(schema.get("properties", {}).get(key, {}))
    if schema is None:
        return None
    return schema.get("properties", {}).get(path[-1], {}).get("default")


def _is_write_only(schema: dict[str, Any]) -> bool:
    return bool(schema.get("writeOnly")) or any(
        _is_write_only(branch) for branch in schema.get("anyOf", ())
    )


def copy_mappings(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of the mappings of a document (lists and text are shared), to change in place."""
    return {k: copy_mappings(v) if type(v) is dict else v for k, v in doc.items()}


def set_path(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@cache
def field_titles(kind: str) -> dict[str, str]:
    """Dotted field path -> the schema title (the vendor console's label, where it has one)."""
    titles: dict[str, str] = {}

    def walk(schema: dict[str, Any], prefix: str) -> None:
        for key, sub in schema.get("properties", {}).items():
            if "title" in sub:
                titles[prefix + key] = sub["title"]
            nested = _object_schema(sub)
            if nested is not None:
                walk(nested, f"{prefix}{key}.")

    root = _object_schema({"$ref": f"#/$defs/{kind}"})
    assert root is not None
    walk(root, "")
    return titles


def _forget() -> None:
    for cached in (combined_schema, _fast_validator, _filler, secret_paths, field_titles):
        cached.cache_clear()


kinds.watch(_forget)
