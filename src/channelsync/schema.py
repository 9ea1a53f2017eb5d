"""JSON Schema generation from the pydantic models (the only source of the schema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from channelsync import kinds
from channelsync.fsio import write_atomic

DRAFT = "https://json-schema.org/draft/2020-12/schema"
COMBINED = "channelsync.schema.json"
PROJECT = "channelsync-project.schema.json"  # the project file, channelsync.yaml


def schema_for(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return {"$schema": DRAFT, **schema}


def file_name(kind: str) -> str:
    return f"{kind}.schema.json"


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema: one per kind, plus one that accepts any kind (for editors)."""
    from pydantic.json_schema import models_json_schema

    models = {kind.name: kind.model_class() for kind in kinds.all_kinds()}
    out = {file_name(kind): schema_for(model) for kind, model in models.items()}
    refs, combined = models_json_schema([(m, "validation") for m in models.values()])
    out[COMBINED] = {
        "$schema": DRAFT,
        "title": "channelsync resource",
        "description": "One document of a channels.d/ file; 'kind' selects the resource type.",
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": list(models)}},
        "oneOf": [refs[(m, "validation")] for m in models.values()],
        **combined,
    }
    from channelsync.project import Project

    out[PROJECT] = schema_for(Project)
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _targets(directory: Path) -> dict[Path, str]:
    """Every generated file: the schemas/ folder, and the copy the package validates with."""
    from channelsync.defaults import PACKAGED_PROJECT_SCHEMA, PACKAGED_SCHEMA

    schemas = all_schemas()
    out = {directory / name: render(schema) for name, schema in schemas.items()}
    out[PACKAGED_SCHEMA] = render(schemas[COMBINED])
    out[PACKAGED_PROJECT_SCHEMA] = render(schemas[PROJECT])
    return out


def stale_files(directory: Path) -> list[Path]:
    """Generated files that differ from what the models generate now."""
    return [
        path
        for path, text in _targets(directory).items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stale = stale_files(directory)
    targets = _targets(directory)
    for path in stale:
        write_atomic(path, targets[path])
    return stale
