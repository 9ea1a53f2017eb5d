"""A plan as text (Terraform-like), JSON (the versioned contract) or a PR comment."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TextIO

from channelsync import kinds
from channelsync.errors import error_json
from channelsync.plan import Change, FieldChange, Plan, PlanWarning
from channelsync.plan.data import DefaultReset

if TYPE_CHECKING:
    from channelsync.plan.envs import EnvironmentPlan

FORMAT_VERSION = 1  # of the public JSON plan (README, 'JSON plan format')

MARKDOWN_LIMIT = 60_000
MARKDOWN_MARKER = "<!-- channelsync:plan -->"
DRIFT_MARKER = "<!-- channelsync:drift -->"

_SYMBOL = {"create": "+", "update": "~", "rename": "->", "delete": "-"}
_COLOUR = {"create": "32", "update": "33", "rename": "36", "delete": "31"}
_VERB = {"create": "to create", "update": "to update", "rename": "to rename", "delete": "to delete"}


def use_colour(stream: TextIO) -> bool:
    """Colour on a terminal unless NO_COLOR is set to a non-empty value (no-color.org: an
    empty NO_COLOR counts as unset)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


_VALUE = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps makes one per call


def value(v: Any) -> str:
    return _VALUE.encode(v)


def field_line(f: FieldChange, action: str) -> str:
    if f.sensitive:
        if action in ("create", "delete"):
            return f"{_SYMBOL[action]} {f.path} = (sensitive value)"
        return f"~ {f.path}: (sensitive value changed)"
    if action == "create" or f.before is None:
        return f"+ {f.path} = {value(f.after)}"
    if f.after is None:
        return f"- {f.path} = {value(f.before)}"
    return f"~ {f.path}: {value(f.before)} -> {value(f.after)}"


def headline(change: Change) -> str:
    text = f'{_SYMBOL[change.action]} {change.kind} "{change.name}"'
    if change.previous_name:
        text += f' (renamed from "{change.previous_name}"{_following(change)})'
    return text


def _following(change: Change) -> str:
    n = len(change.followers)
    if not n:
        return ""
    if change.follower_kinds:  # not only channels: "1 channel and 2 agents follow it"
        counts = following_counts(change)
        parts = [f"{c} {word}{'' if c == 1 else 's'}" for word, c in counts.items()]
        verb = "follows" if n == 1 else "follow"
        return f"; {' and '.join(parts)} {verb} it"
    return f"; {n} channel follows it" if n == 1 else f"; {n} channels follow it"


def following_counts(change: Change) -> dict[str, int]:
    """How many followers of a rename of each kind, by the kind's word."""
    counts: dict[str, int] = {}
    for name in change.followers:
        word = kinds.get(change.follower_kinds.get(name, "EmailChannel")).called
        counts[word] = counts.get(word, 0) + 1
    return dict(sorted(counts.items()))  # in the order of default_reset_text


def temporary_note(change: Change) -> str:
    """How a channel (an agent) whose address another takes in the same apply gets there."""
    return (
        f"(moves through the temporary address {change.temporary_email} first: another "
        f"{kinds.get(change.kind).called} of this apply takes its address)"
    )


def reset_note(change: Change) -> str | None:
    """Why a channel's or agent's outgoing server changes: this apply's new default resets
    it, or a default set outside channelsync did."""
    if change.reset_by is not None:
        return f"(set back: setting {change.reset_by} as default resets its outgoing server)"
    if change.reset_outside is not None:
        return (
            f"(its outgoing server is the tenant's default, {change.reset_outside}: setting a "
            "default SMTP server outside channelsync resets the outgoing server of every "
            "channel and agent)"
        )
    return None


def own_password_note(change: Change) -> str | None:
    """Who enters the password of a resource that sends with its own account, when
    channelsync holds none (an agent: in Agent Console > Profile)."""
    console = kinds.get(change.kind).console
    if not console.own_password or change.action == "delete":
        return None
    overrides = any(
        (f.path.endswith(".override") and f.after is True) or f.path.endswith("outgoing.user")
        for f in change.fields
    )
    if not overrides:
        return None
    return (
        f"the {console.noun} must enter the password of its own mail account in "
        f"{console.own_password}: channelsync holds no {console.noun} password"
    )


def _notes(change: Change) -> list[str]:
    own = own_password_note(change)
    return [n for n in (reset_note(change), own and f"({own})") if n]


def default_reset_text(reset: DefaultReset) -> str:
    """ "setting X as default resets the outgoing server of 12 agents and 4 channels; 3 of
    them are configured otherwise and are set back in this apply"."""
    words = sorted((kinds.get(kind).called, n) for kind, n in reset.counts.items() if n)
    parts = [f"{n} {word}{'' if n == 1 else 's'}" for word, n in words]
    listed = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
    text = f"setting {reset.server} as default resets the outgoing server of {listed}"
    if not reset.set_back:
        return f"{text}; none of them is configured otherwise"
    verb = "is" if reset.set_back == 1 else "are"
    return (
        f"{text}; {reset.set_back} of them {verb} configured otherwise and {verb} set back "
        "in this apply"
    )


def note_lines(plan: Plan) -> list[str]:
    return [f"note: {default_reset_text(plan.default_reset)}"] if plan.default_reset else []


def warning_text(w: PlanWarning) -> str:
    """A positioned warning reads like validate's (``file:line:col: warning: ...``)."""
    if w.position is None:
        return w.message
    where = w.position
    return f"{where.file}:{where.line}:{where.column}: {w.severity}: {w.message}"


def warning_texts(plan: Plan) -> list[str]:
    """What apply would refuse, then the plan's warnings, as the JSON plan lists them."""
    return [str(r) for r in plan.refusals] + [warning_text(w) for w in plan.warnings]


def warning_lines(plan: Plan) -> list[str]:
    """The same, each as one line of text output."""
    lines = [f"warning: {r}" for r in plan.refusals]
    lines.extend(
        warning_text(w) if w.position else f"{w.severity}: {w.message}" for w in plan.warnings
    )
    return lines


def summary_line(plan: Plan, label: str = "Plan") -> str:
    s = plan.summary
    ignored = f", {plan.not_selected} not selected" if plan.not_selected else ""
    ignored += f", {plan.ignored} ignored" if plan.ignored else ""
    if not plan.has_changes:
        return (
            f"No changes. The tenant matches the configuration ({s['no_op']} resource(s){ignored})."
        )
    parts = [f"{s[a]} {_VERB[a]}" for a in _VERB]
    return f"{label}: {', '.join(parts)}, {s['no_op']} unchanged{ignored}."


def text(
    plan: Plan, *, colour: bool = False, extra: list[str] | None = None, label: str = "Plan"
) -> str:
    return "".join(text_chunks(plan, colour=colour, extra=extra, label=label))


def text_chunks(
    plan: Plan, *, colour: bool = False, extra: list[str] | None = None, label: str = "Plan"
) -> Iterator[str]:
    """``text`` in pieces, one per change, to write as they come (the text of a plan of
    100,000 creates would be a hundred megabytes in memory at once)."""
    yield f"Target: {plan.target}\n\n"
    for change in plan.changes:
        head = headline(change)
        if colour:
            head = f"\x1b[{_COLOUR[change.action]}m{head}\x1b[0m"
        lines = ["  " + head]
        if change.temporary_email:
            lines.append("      " + temporary_note(change))
        lines.extend("      " + n for n in _notes(change))
        lines.extend("      " + field_line(f, change.action) for f in change.fields)
        lines.append("")
        yield "\n".join(lines) + "\n"
    lines = [summary_line(plan, label), *note_lines(plan), *warning_lines(plan), *(extra or [])]
    yield "\n".join(lines) + "\n"


def json_plan(plan: Plan) -> dict[str, Any]:
    """The documented, versioned JSON plan (see README, 'JSON plan format')."""
    return {
        "format_version": FORMAT_VERSION,
        "target": plan.target,
        "summary": plan.summary,
        "changes": [_json_change(c) for c in plan.changes],
        "warnings": warning_texts(plan),
        "apply_needs": [r.flag for r in plan.refusals],
        **_json_reset(plan.default_reset),
    }


def _json_reset(reset: DefaultReset | None) -> dict[str, Any]:
    """``default_reset``, only in a plan that sets a new default (README, 'JSON plan
    format'): older plans read byte for byte as they did."""
    if reset is None:
        return {}
    return {
        "default_reset": {
            "server": reset.server,
            "resets": reset.counts,
            "set_back": reset.set_back,
            "message": default_reset_text(reset),
        }
    }


def _json_change(change: Change) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": change.kind,
        "name": change.name,
        "action": change.action.value,
        "previous_name": change.previous_name,
        "fields": [asdict(f) for f in change.fields],
        "followers": change.followers,
        "temporary_email": change.temporary_email,
    }
    if change.reset_by is not None:  # only when set: older plans read as they did
        out["reset_by"] = change.reset_by
    if change.reset_outside is not None:
        out["reset_outside"] = change.reset_outside
    if change.set_back_only:
        out["set_back_only"] = True
    return out


def as_json(plan: Plan, extra: dict[str, Any] | None = None) -> str:
    return json.dumps({**json_plan(plan), **(extra or {})}, indent=2, ensure_ascii=False) + "\n"


def markdown(
    plan: Plan,
    *,
    label: str = "Plan",
    extra: str = "",
    marker: str = MARKDOWN_MARKER,
    limit: int = MARKDOWN_LIMIT,
) -> str:
    """A pull-request comment (or, with DRIFT_MARKER, the drift issue): summary table, one
    collapsible block per resource."""
    s = plan.summary
    head = [
        marker,
        f"### channelsync {summary_line(plan, label)}",
        "",
        f"Target: `{plan.target}`",
        "",
        "| create | update | rename | delete | unchanged |",
        "|---:|---:|---:|---:|---:|",
        f"| {s['create']} | {s['update']} | {s['rename']} | {s['delete']} | {s['no_op']} |",
        "",
    ]
    tail = [
        f"> :information_source: {html.escape(n.removeprefix('note: '))}" for n in note_lines(plan)
    ]
    tail += [f"> :warning: {html.escape(w.removeprefix('warning: '))}" for w in warning_lines(plan)]
    if extra:
        tail.append(extra)
    body: list[str] = []
    budget = limit - len("\n".join(head + tail)) - 400
    shown = 0
    for change in plan.changes:
        block = _details(change)
        if len(block) + 1 > budget:
            break
        body.append(block)
        budget -= len(block) + 1
        shown += 1
    if shown < len(plan.changes):
        body.append(
            f"_Plan cut to stay under the comment size limit: {len(plan.changes) - shown} more "
            "change(s) not shown. The full plan is in the workflow's plan artifact._"
        )
    return "\n".join(head + body + ([""] if tail else []) + tail) + "\n"


def _details(change: Change) -> str:
    name = html.escape(change.name)
    summary = f"<code>{_SYMBOL[change.action]}</code> {change.action} {change.kind} <b>{name}</b>"
    if change.previous_name:
        summary += f" (from <b>{html.escape(change.previous_name)}</b>{_following(change)})"
    lines = [field_line(f, change.action).replace("```", "'''") for f in change.fields]
    if change.temporary_email:
        lines.insert(0, "# " + temporary_note(change))
    lines[:0] = ["# " + n for n in _notes(change)]
    if not lines:
        return f"<details><summary>{summary}</summary></details>"
    diff = "\n".join(lines)
    return f"<details><summary>{summary}</summary>\n\n```diff\n{diff}\n```\n</details>"


# ---- several environments (plan --all-envs, the GitOps comment) ------------------------------


def environment_heading(name: str) -> str:
    """The heading of one environment's section of a Markdown plan or drift report."""
    return f"## Environment `{name}`"


def environment_section(name: str, body: str, marker: str = MARKDOWN_MARKER) -> str:
    """One environment's Markdown (a plan made for it alone) as a section of a longer one."""
    return environment_heading(name) + "\n\n" + body.removeprefix(marker).strip("\n") + "\n"


def environments_markdown(
    sections: list[EnvironmentPlan], *, label: str = "Plan", marker: str = MARKDOWN_MARKER
) -> str:
    """One comment for every environment: the marker, then a section per environment."""
    limit = MARKDOWN_LIMIT // max(1, len(sections))
    parts = [marker]
    for section in sections:
        if section.plan is not None:
            body = markdown(section.plan, label=label, marker=marker, limit=limit)
        else:
            body = f"### channelsync: {label.lower()} failed\n\nTarget: `{section.target}`\n\n"
            body += "```\n" + error_text(section).replace("```", "'''") + "\n```"
        parts.append(environment_section(section.name, body, marker))
    return "\n".join(parts)


def environments_text(
    sections: list[EnvironmentPlan], *, colour: bool = False, label: str = "Plan"
) -> str:
    out = []
    for section in sections:
        out.append(f"=== Environment {section.name} ===\n")
        if section.plan is not None:
            out.append(text(section.plan, colour=colour, label=label))
        else:
            out.append(f"Target: {section.target}\n\n{error_text(section)}\n")
        out.append("\n")
    return "".join(out).rstrip("\n") + "\n"


def environments_json(sections: list[EnvironmentPlan]) -> str:
    """``format_version`` 1 with an ``environments`` array: each one a JSON plan (plus its
    ``environment``), or its ``target`` and ``error``: the member of the JSON error document
    (message, code, exit_code, positioned diagnostics)."""
    items: list[dict[str, Any]] = []
    for section in sections:
        if section.plan is not None:
            plan = json_plan(section.plan)
            del plan["format_version"]  # the document's, once
            items.append({"environment": section.name, **plan})
        else:
            error = error_json(
                section.error or "", section.code, section.exit_code, section.diagnostics
            )
            items.append({"environment": section.name, "target": section.target, "error": error})
    document = {"format_version": FORMAT_VERSION, "environments": items}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def error_text(section: EnvironmentPlan) -> str:
    """A failed environment's section: its config's diagnostics, then the error."""
    lines = [*map(str, section.diagnostics), f"error: {section.error}"]
    return "\n".join(lines)
