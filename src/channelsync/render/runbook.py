"""A plan as numbered steps in the vendor console's own words, for tenants changed by hand.

Field labels are the schema titles (``model.py`` names each field as the console does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from channelsync import kinds
from channelsync.document import field_titles
from channelsync.plan import Change, Plan
from channelsync.render.plan import (
    default_reset_text,
    error_text,
    following_counts,
    own_password_note,
)

if TYPE_CHECKING:
    from channelsync.plan.envs import EnvironmentPlan

VALUE_WORDS = {
    "pop3": "POP3",
    "pop3-ssl": "POP3 over SSL",
    "imap": "IMAP",
    "imap-ssl": "IMAP over SSL",
    "normal": "Normal",
    "microsoft-exchange": "Microsoft Exchange",
    "starttls": "STARTTLS",
    "ssl": "SSL",
    "none": "None",
}
_SKIP = {"kind", "renamed_from"}


def runbook(plan: Plan) -> str:
    if not plan.has_changes:
        return "Nothing to do: the tenant matches the configuration.\n"
    items = [(_title(c), _steps(c)) for c in plan.changes]
    parked = [c for c in plan.changes if c.temporary_email]
    for kind in dict.fromkeys(c.kind for c in parked):  # before the first of its kind, as apply
        at = next(i for i, c in enumerate(plan.changes) if c.kind == kind and c.action != "delete")
        items[at:at] = [_parking(c) for c in parked if c.kind == kind]
    count = f"{len(plan.changes)} change(s)"
    if len(items) > len(plan.changes):
        count += f" in {len(items)} steps"
    lines = [f"Runbook for {plan.target}: {count}, in this order.", ""]
    if plan.default_reset is not None:
        reset = plan.default_reset
        set_back = {_title(c) for c in plan.changes if c.reset_by is not None}
        numbers = [str(n) for n, (t, _) in enumerate(items, start=1) if t in set_back]
        which = f" (steps {', '.join(numbers)})" if numbers else ""
        lines[2:2] = [
            f"Note: {default_reset_text(reset)}{which}; setting them back is harmless if "
            "the console kept them.",
            "",
        ]
    for number, (title, steps) in enumerate(items, start=1):
        lines.append(f"{number}. {title}")
        lines.extend(f"   {letter}. {step}" for letter, step in steps)
        lines.append("")
    return "\n".join(lines)


def _parking(change: Change) -> tuple[str, list[tuple[str, str]]]:
    """The first step of a channel (an agent) whose address another takes: a temporary one."""
    label = field_titles(change.kind).get("email", "Email address")
    current = change.previous_name or change.name
    kind = kinds.get(change.kind)
    title = (
        f'Give the {kind.console.noun} "{current}" a temporary address (another {kind.called} '
        "takes its address below)."
    )
    steps = [
        f'{kind.console.open}, and open "{current}" in the list.',
        f'Set {label} to "{change.temporary_email}".',
        "Click Save.",
    ]
    return title, _lettered(steps)


def _title(change: Change) -> str:
    noun = kinds.get(change.kind).console.noun
    if change.reset_by is not None and change.action == "update":
        return (
            f'Set back the outgoing mail server of the {noun} "{change.name}" (setting '
            f"{change.reset_by} as default resets it)."
        )
    if change.action == "create":
        return f'Add the {noun} "{change.name}".'
    if change.action == "delete":
        return f'Delete the {noun} "{change.name}".'
    if change.action == "rename":
        return f'Rename the {noun} "{change.previous_name}" to "{change.name}".'
    return f'Change the {noun} "{change.name}".'


def _steps(change: Change) -> list[tuple[str, str]]:
    steps: list[str] = []
    kind = kinds.get(change.kind)
    where = kind.console.open
    if change.action == "create":
        steps.append(f"{where}, and {kind.console.add}.")
    else:
        current = change.previous_name or change.name
        steps.append(f'{where}, and open "{current}" in the list.')
    if change.action == "delete":
        steps.append(f'Delete "{change.name}" and confirm.')
        return _lettered(steps)
    if change.action in ("create", "rename"):
        label = field_titles(change.kind).get("name", "Name")
        steps.append(f'Set {label} to "{change.name}".')
    if change.followers:
        counts = following_counts(change)
        users = " and ".join(f"{n} {word}(s)" for word, n in counts.items())
        steps.append(f"The {users} that use it follow the new name by themselves.")
    steps.extend(_field_step(change, f.path, f.after, f.sensitive) for f in change.fields)
    if kind.tested:
        steps.append(
            "Click Test connection and check that the connection to the mail server succeeds."
        )
    steps.append("Click Save.")
    if own_password_note(change) is not None:  # once saved: the agent's profile exists then
        steps.append(
            f'Ask "{change.name}" to enter the password of their own mail account in '
            f"{kind.console.own_password} (channelsync holds no {kind.console.noun} password)."
        )
    return _lettered(steps)


def _field_step(change: Change, path: str, after: Any, sensitive: bool) -> str:
    if path.split(".")[-1] in _SKIP:
        return ""
    label = field_titles(change.kind).get(path, path)
    if sensitive:
        return f"Enter the {label} from your secret store, and again under Retype {label}."
    if isinstance(after, bool):
        return f"{'Select' if after else 'Clear'} {label}."
    if after is None:
        return f"Clear {label}."
    if isinstance(after, list):
        return f"Set {label} to {', '.join(map(str, after)) or '(none)'}."
    if not isinstance(after, str):
        return f"Set {label} to {after}."
    return f'Set {label} to "{VALUE_WORDS.get(after, after)}".'


def _lettered(steps: list[str]) -> list[tuple[str, str]]:
    kept = [s for s in steps if s]
    return [(chr(ord("a") + i) if i < 26 else str(i), s) for i, s in enumerate(kept)]


def environments_runbook(sections: list[EnvironmentPlan]) -> str:
    """``plan --all-envs --format runbook``: the steps for each environment's tenant."""
    out = []
    for section in sections:
        out.append(f"=== Environment {section.name} ({section.target}) ===\n")
        out.append(runbook(section.plan) if section.plan else error_text(section) + "\n")
    return "\n".join(out)
