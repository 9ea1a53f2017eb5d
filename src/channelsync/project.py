"""The project file ``channelsync.yaml``: its model, from which its JSON Schema is generated.

Only ``channelsync schema`` imports this module (pydantic); the commands check a project
file against the packaged schema it generates (``environments.py``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from channelsync.model import TEXT_PATTERN

# GitHub environment and artifact names take these too: the workflows use them as they are.
ENVIRONMENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

EnvironmentName = Annotated[str, Field(pattern=ENVIRONMENT_NAME)]
VariableName = Annotated[str, Field(pattern=VARIABLE_NAME)]
Dir = Annotated[str, Field(min_length=1, pattern=TEXT_PATTERN)]
Value = Annotated[
    str | int | float | bool,
    Field(description="Stands for ${var:NAME} in any non-secret value of a channel file."),
]


class Environment(BaseModel):
    """One tenant the config is planned and applied to."""

    model_config = ConfigDict(extra="forbid", title="Environment")

    target: Annotated[str, Field(min_length=1, pattern=TEXT_PATTERN)] | None = Field(
        None,
        description="The tenant URL (as --target); relative sqlite:/// paths are from this "
        "file's folder. Unset: $CHANNELSYNC_TARGET, else the embedded tenant.",
    )
    dirs: list[Dir] = Field(
        default_factory=lambda: ["channels.d"],
        min_length=1,
        max_length=32,
        description="Config folders, read in this order (relative to this file's folder). A "
        "document with 'patch: true' merges into the resource of the same kind and name from "
        "an earlier folder.",
    )
    variables: dict[VariableName, Value] = Field(
        default_factory=dict, description="Values for ${var:NAME} references."
    )


class Project(BaseModel):
    """channelsync.yaml at the repository root: the environments of one config repository."""

    model_config = ConfigDict(extra="forbid", title="channelsync project")

    environments: dict[EnvironmentName, Environment] = Field(
        min_length=1, description="Environment name -> its target, folders and variables."
    )
    default_environment: EnvironmentName | None = Field(
        None, description="The environment used when neither --env nor $CHANNELSYNC_ENV names one."
    )
