"""The saved-plan file (``plan --out``): its own versioned format (staleness: ``stale.py``).

A saved plan holds what the public JSON plan holds, plus what binds it to the moment it was
made: the config's fingerprint, each touched resource's live ETag, and the selection. A file
may have been edited by hand or be something else entirely, so it is read with a size bound
and parsed by a strict model; anything else is "not a channelsync plan file".
"""

from __future__ import annotations

import json
import stat
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError

from channelsync import log
from channelsync.errors import ChannelsyncError
from channelsync.fsio import write_atomic
from channelsync.inputfile import TooDeep, UnreadableFile, read_json
from channelsync.plan.data import (
    Action,
    Change,
    DefaultReset,
    FieldChange,
    Plan,
    PlanWarning,
    Position,
    Refusal,
    WarningCategory,
)

FORMAT_VERSION = 1
MAX_PLAN_FILE_BYTES = 512 * 1024 * 1024  # a plan of 100,000 changes is well under this
_SAVED_START = b'{\n  "format_version": '


class _Field(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: StrictStr
    before: Any
    after: Any
    sensitive: StrictBool = False


class _Change(BaseModel):
    kind: StrictStr
    name: StrictStr
    action: Action
    previous_name: StrictStr | None = None
    fields: list[_Field]
    live_etag: StrictStr | None = None
    followers: list[StrictStr] = []
    follower_kinds: dict[StrictStr, StrictStr] = {}
    temporary_email: StrictStr | None = None
    reset_by: StrictStr | None = None
    reset_outside: StrictStr | None = None
    set_back_only: StrictBool = False


class _DefaultReset(BaseModel):
    server: StrictStr
    resets: dict[StrictStr, StrictInt]
    set_back: StrictInt


class _Position(BaseModel):
    file: StrictStr
    line: StrictInt
    column: StrictInt


class _Warning(BaseModel):
    category: WarningCategory
    message: StrictStr
    kind: StrictStr | None = None
    name: StrictStr | None = None
    position: _Position | None = None
    severity: Literal["error", "warning"] = "warning"


class _Refusal(BaseModel):
    flag: StrictStr
    reason: StrictStr
    advice: StrictStr


class _SavedPlan(BaseModel):
    """Version 1. Unknown keys are ignored; the ones read here must be as written."""

    format_version: Literal[1]
    target: StrictStr
    changes: list[_Change]
    no_op: int
    warnings: list[Any]
    config_fingerprint: StrictStr
    live_count: int = 0
    only: list[StrictStr] = []
    summary: dict[StrictStr, int] = {}
    # for 'channelsync show' (older files have neither: shown without warnings)
    plan_warnings: list[_Warning] = []
    refusals: list[_Refusal] = []
    default_reset: _DefaultReset | None = None


def save(plan: Plan, path: Path) -> None:
    """Version 1 is the public JSON plan (version 1) plus what binds the plan to its moment."""
    from channelsync.render.plan import json_plan

    assert plan.config_fingerprint, "make_plan(..., fingerprint=True) for a saved plan"
    saved = json_plan(plan)
    saved["config_fingerprint"] = plan.config_fingerprint
    saved["live_count"] = plan.live_count
    saved["no_op"] = plan.no_op
    saved["only"] = plan.only
    for entry, change in zip(saved["changes"], plan.changes, strict=True):
        entry["live_etag"] = change.live_etag
        if change.follower_kinds:
            entry["follower_kinds"] = change.follower_kinds
    saved["plan_warnings"] = [_warning_json(w) for w in plan.warnings]
    saved["refusals"] = [asdict(r) for r in plan.refusals]
    saved[DIGEST] = _digest(saved)
    _check_replaceable(path)
    try:
        with log.step("save plan", path=str(path), changes=len(plan.changes)):
            write_atomic(path, json.dumps(saved, indent=2) + "\n")
    except OSError as exc:
        raise ChannelsyncError(f"cannot write plan file {path}: {exc.strerror}") from None


def load(path: Path) -> Plan:
    """The saved plan at ``path``. Its warnings were shown when it was made; a plan made
    again for apply brings its own."""
    not_a_plan = f"{path} is not a channelsync plan file (format_version {FORMAT_VERSION})"
    try:
        limit = MAX_PLAN_FILE_BYTES
        with log.step("read saved plan", path=str(path)):
            raw = read_json(
                str(path),
                limit,
                limit_text=f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit} bytes",
            )
    except OSError as exc:
        raise ChannelsyncError(f"cannot read plan file {path}: {exc.strerror}") from None
    except TooDeep as exc:
        raise ChannelsyncError(
            f"{path}:{exc.line}:{exc.column}: {exc}; it is not a channelsync plan file"
        ) from None
    except UnreadableFile as exc:
        raise ChannelsyncError(f"cannot read plan file {path}: {exc}") from None
    except ValueError:  # not UTF-8 text, or not JSON
        raise ChannelsyncError(not_a_plan) from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if type(version) is int and version > FORMAT_VERSION:
        raise ChannelsyncError(
            f"{path} was saved by a newer channelsync (saved-plan format {version}); this one "
            f"reads format {FORMAT_VERSION}: upgrade channelsync, or plan again with this one"
        )
    try:
        saved = _SavedPlan.model_validate(raw)
    except (ValidationError, RecursionError):
        raise ChannelsyncError(not_a_plan) from None
    if DIGEST in raw and raw[DIGEST] != _digest(raw):
        raise ChannelsyncError(
            f"{path} was changed after it was saved (its digest does not match its contents): "
            "it cannot be trusted; make a new plan with 'channelsync plan --out'"
        )
    changes = [
        Change(
            c.kind,
            c.name,
            c.action,
            c.previous_name,
            [FieldChange(f.path, f.before, f.after, f.sensitive) for f in c.fields],
            c.live_etag,
            list(c.followers),
            dict(c.follower_kinds),
            c.temporary_email,
            c.reset_by,
            c.reset_outside,
            c.set_back_only,
        )
        for c in saved.changes
    ]
    warnings = [
        PlanWarning(
            w.category,
            w.message,
            w.kind,
            w.name,
            Position(w.position.file, w.position.line, w.position.column) if w.position else None,
            w.severity,
        )
        for w in saved.plan_warnings
    ]
    return Plan(
        saved.target,
        changes,
        saved.no_op,
        warnings,
        saved.config_fingerprint,
        saved.live_count,
        list(saved.only),
        refusals=[Refusal(r.flag, r.reason, r.advice) for r in saved.refusals],
        not_selected=saved.summary.get("not_selected", 0),
        default_reset=(
            None
            if saved.default_reset is None
            else DefaultReset(
                saved.default_reset.server,
                dict(saved.default_reset.resets),
                saved.default_reset.set_back,
            )
        ),
    )


DIGEST = "digest"


def _digest(saved: dict[str, Any]) -> str:
    """A checksum of everything else in the file: an edit by hand (or a damaged copy) shows.
    Not a signature: it proves nothing about who made the file."""
    import hashlib

    rest = {k: v for k, v in saved.items() if k != DIGEST}
    text = json.dumps(rest, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def _warning_json(w: PlanWarning) -> dict[str, Any]:
    return {
        "category": w.category.value,
        "message": w.message,
        "kind": w.kind,
        "name": w.name,
        "position": asdict(w.position) if w.position else None,
        "severity": w.severity,
    }


def _check_replaceable(path: Path) -> None:
    """A saved plan replaces an older saved plan (or an empty file), never another file named
    by mistake: a config file, the tenant database."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return  # a folder: the write says so; nothing of the user's to lose otherwise
        with path.open("rb") as handle:
            if handle.read(len(_SAVED_START)) == _SAVED_START:
                return
    except OSError:
        return  # the write itself reports it, naming the file
    raise ChannelsyncError(
        f"{path} exists and is not a saved plan: not replacing it. Choose another --out path "
        "or remove that file"
    )
