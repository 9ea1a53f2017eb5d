"""The plan, split by job: ``data`` (what a plan is), ``build`` (desired + live -> plan),
``diff`` (which fields differ), ``saved`` (the ``plan --out`` file, imported only to save or
load one), ``stale`` (whether a saved plan still holds). The JSON and text forms are in
``render/plan.py``."""

from channelsync.plan.build import (
    SAFETY_MAX_FRACTION,
    SAFETY_MIN_EXISTING,
    config_fingerprint,
    make_plan,
    refusals,
    target_form,
)
from channelsync.plan.data import (
    ACTIONS,
    SENSITIVE,
    Action,
    Change,
    FieldChange,
    Plan,
    PlanWarning,
    Position,
    Refusal,
    WarningCategory,
)
from channelsync.plan.stale import StalePlan, check_current

__all__ = [
    "ACTIONS",
    "SAFETY_MAX_FRACTION",
    "SAFETY_MIN_EXISTING",
    "SENSITIVE",
    "Action",
    "Change",
    "FieldChange",
    "Plan",
    "PlanWarning",
    "Position",
    "Refusal",
    "StalePlan",
    "WarningCategory",
    "check_current",
    "config_fingerprint",
    "make_plan",
    "refusals",
    "target_form",
]
