"""``channelsync fmt``: one canonical layout for the config files, comments kept.

Each document's keys are put in the order of its kind's schema (``kind`` and ``name`` first,
then ``patch``, then the model's fields; keys the schema does not know keep their order, after
the rest), at every level the schema describes. The text is written back by ruamel.yaml's
round trip: two spaces per level, list items indented under their key, quotes only where YAML
needs them.
Documents stay in the order the author gave them (moving one would move its comments).

A file is only rewritten when the new text reads back, through the loader's own parser, to
exactly the same data: ``fmt`` never changes what a file means. A file that cannot be read
(syntax error, not UTF-8, a FIFO, too large) is reported with its position and left alone; a
symbolic link is not followed (the file it points to is formatted on its own).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from channelsync import document as documents
from channelsync import kinds
from channelsync.errors import HIDDEN, Diagnostic
from channelsync.fsio import write_atomic
from channelsync.patches import FLAG
from channelsync.yamlsource import SourceFile, parse_text, read_source, round_trip


@dataclass
class FmtReport:
    changed: list[str] = field(default_factory=list)  # files rewritten (or, --check, to be)
    unchanged: int = 0
    problems: list[Diagnostic] = field(default_factory=list)  # errors, and skipped links

    @property
    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def run(paths: Iterable[Path], *, check: bool = False) -> FmtReport:
    """Format the config files under ``paths`` (folders, as the loader finds files, or files);
    ``check``: write nothing, only say which files would change."""
    report = FmtReport()
    for path, display in _files(paths, report):
        new, source = _laid_out(read_source(path, display), report)
        if new is None:
            continue
        if new == source.text:
            report.unchanged += 1
            continue
        if _hidden_count(new) > _hidden_count(source.text):
            report.problems.append(
                _skipped(display, "it has invisible characters written as escapes (kept so)")
            )
            continue
        if not _same_meaning(source, new):
            report.problems.append(
                Diagnostic(
                    display,
                    1,
                    1,
                    "error",
                    "fmt cannot lay this file out without changing what it means; it was "
                    "left as it is",
                )
            )
            continue
        report.changed.append(display)
        if not check:
            write_atomic(Path(path), new)
    return report


def _laid_out(source: SourceFile, report: FmtReport) -> tuple[str | None, SourceFile]:
    """The canonical text of a file and the file read precisely (for the comparison), or
    None when it is not formatted (the report says why). A file the fast parser read and
    that fmt leaves as it is is not parsed a second time."""
    from ruamel.yaml.error import YAMLError

    if any(p.severity == "error" for p in source.problems):  # not read: a FIFO, not UTF-8
        report.problems.extend(p for p in source.problems if p.severity == "error")
        return None, source
    if not source.precise:
        try:
            new = canonical(source.text)
        except (YAMLError, AssertionError, LookupError, RecursionError, ValueError, TypeError):
            new = None
        if new == source.text:
            return new, source
    if not source.precise:
        source = parse_text(source.text, source.display)
        errors = [p for p in source.problems if p.severity == "error"]
        if errors:
            report.problems.extend(errors)
            return None, source
    if not all(hasattr(d.data, "items") for d in source.documents):
        report.problems.append(_skipped(source.display, "it has a document that is not a mapping"))
        return None, source
    return canonical(source.text), source


def canonical(text: str) -> str:
    """``text`` (a file that parses) in the canonical layout."""
    yaml = round_trip(preserve_quotes=False)
    docs = list(yaml.load_all(text))
    for doc in docs:
        kind = doc.get("kind") if hasattr(doc, "get") else None
        if isinstance(kind, str) and kind in kinds.names():
            schema = documents.object_schema({"$ref": f"#/$defs/{kind}"})
            if schema is not None:
                _order(doc, schema, top=True)
    stream = io.StringIO()
    if len(docs) == 1:
        yaml.dump(docs[0], stream)
    else:
        yaml.dump_all(docs, stream)
    return stream.getvalue()


def _order(node: Any, schema: dict[str, Any], *, top: bool = False) -> None:
    """Keys of the round-trip mapping ``node`` in the order of ``schema``'s properties (a
    document's ``patch: true`` after its name)."""
    properties: dict[str, Any] = schema.get("properties", {})
    order = list(properties)
    if top and FLAG not in order:
        order.insert(order.index("name") + 1 if "name" in order else 0, FLAG)
    rank = {key: i for i, key in enumerate(order)}
    keys = list(node)
    wanted = sorted(keys, key=lambda k: rank.get(k, len(rank)) if isinstance(k, str) else len(rank))
    if wanted != keys:
        leads = _detach_leads(node, keys, wanted)
        for key in wanted:
            node.move_to_end(key)
        _attach_leads(node, wanted, leads)
    for key in keys:
        sub = properties.get(key) if isinstance(key, str) else None
        if sub is None:
            continue
        value = node[key]
        if hasattr(value, "move_to_end"):
            nested = documents.object_schema(sub)
            if nested is not None:
                _order(value, nested)
        elif isinstance(value, list) and isinstance(sub.get("items"), dict):
            nested = documents.object_schema(sub["items"])
            for item in value:
                if nested is not None and hasattr(item, "move_to_end"):
                    _order(item, nested)


# ruamel.yaml keeps the comment lines above a key with the entry before it (after its value,
# below its end-of-line comment): moved as they are, they would end up above another key.


def _detach_leads(node: Any, keys: list[Any], wanted: list[Any]) -> dict[Any, str]:
    """Cut out the comment lines above each key, to put them back above the same key once
    the keys are reordered; none when one could not go back (then they move with the entry)."""
    found: dict[Any, tuple[Any, str, str]] = {}  # key -> (token, what stays, lines above key)
    for before, key in pairwise(keys):
        token = _post_comment(node, before)
        if token is not None:
            head, newline, rest = token.value.partition("\n")
            if rest.strip():
                found[key] = (token, head + newline, rest)
    if not all(
        i > 0 and _last_scalar(node, wanted[i - 1]) is not None
        for i, key in enumerate(wanted)
        if key in found
    ):
        return {}
    for token, stays, _ in found.values():
        token.value = stays
    return {key: lines for key, (_, _, lines) in found.items()}


def _attach_leads(node: Any, wanted: list[Any], leads: dict[Any, str]) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    for before, key in pairwise(wanted):
        text = leads.get(key)
        if text is None:
            continue
        owner, last = _last_scalar(node, before) or (None, None)
        assert owner is not None  # _detach_leads checked
        entry = owner.ca.items.setdefault(last, [None, None, None, None])
        if entry[2] is None:
            entry[2] = CommentToken("\n" + text, CommentMark(0), None)
        else:
            entry[2].value += text


def _post_comment(node: Any, key: Any) -> Any:
    """The comment token after the value of ``node[key]`` (at its deepest last entry)."""
    found = _last_scalar(node, key)
    if found is None:
        return None
    owner, last = found
    entry = owner.ca.items.get(last)
    return entry[2] if entry and len(entry) > 2 else None


def _last_scalar(node: Any, key: Any) -> tuple[Any, Any] | None:
    """(mapping, key) of the last scalar entry of ``node[key]``'s value, where ruamel.yaml
    keeps the comments that follow it; None below a block list (kept elsewhere)."""
    value = node[key]
    style = getattr(value, "fa", None)  # a mapping's or list's flow/block style
    block = style is not None and not style.flow_style()
    if hasattr(value, "move_to_end") and len(value) and block:
        return _last_scalar(value, list(value)[-1])
    if isinstance(value, list) and value and block:
        return None
    return node, key


def _same_meaning(source: SourceFile, new: str) -> bool:
    """Whether ``new`` reads back to the data of ``source`` (read precisely)."""
    after = parse_text(new, source.display)
    if after.problems:
        return False
    return [d.data for d in source.documents] == [d.data for d in after.documents]


def _hidden_count(text: str) -> int:
    """Invisible and control characters written as themselves (not as escapes)."""
    return len(HIDDEN.findall(text)) - text.count("\n")


def _skipped(display: str, why: str) -> Diagnostic:
    return Diagnostic(display, 1, 1, "warning", f"not formatted: {why}")


def _files(paths: Iterable[Path], report: FmtReport) -> list[tuple[str, str]]:
    """(path, display) of every config file to format; links and unreadable folders are
    reported."""
    from channelsync.loader import find_files

    found: list[tuple[str, str]] = []
    for root in paths:
        if os.path.islink(root):
            report.problems.append(_link(str(root)))
            continue
        if not root.is_dir():
            if not root.exists():
                report.problems.append(
                    Diagnostic(str(root), 1, 1, "error", "does not exist; give a file or folder")
                )
                continue
            found.append((str(root), str(root)))
            continue
        files, unread, _ = find_files(root)
        base = os.path.abspath(root)
        for path, message in unread:
            shown = _shown(path, base, root)
            if message.startswith("is a link"):
                report.problems.append(_link(shown))
            else:
                report.problems.append(Diagnostic(shown, 1, 1, "error", message))
        for path in files:
            shown = _shown(path, base, root)
            if os.path.islink(path):
                report.problems.append(_link(shown))
            else:
                found.append((path, shown))
    return found


def _shown(path: str, base: str, root: Path) -> str:
    return str(root / os.path.relpath(path, base))


def _link(display: str) -> Diagnostic:
    return Diagnostic(
        display,
        1,
        1,
        "warning",
        "is a symbolic link: not formatted (fmt formats the file it points to on its own)",
    )
