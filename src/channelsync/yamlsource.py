"""YAML files -> plain documents, with source positions and guards against hostile input.

Two parsers, one result. The fast path (yaml-rs, a Rust parser) reads ordinary files; any file
it might read differently from ruamel.yaml (anchors, tags, merge keys, tabs, deep nesting) or
that fails there goes through ruamel.yaml, which also gives line and column for every node.
``tests/test_yaml_parity.py`` runs the bad-file corpus through both to keep them in step.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from typing import Any

from channelsync.errors import Diagnostic
from channelsync.inputfile import UnreadableFile, read_regular

MAX_FILE_BYTES = 1024 * 1024
_LIMIT_TEXT = "1 MiB (split it into several files)"
MAX_DEPTH = 32
MAX_NODES = 20_000

Path_ = tuple[str | int, ...]


def dotted(path: Path_) -> str:
    """A path as messages write it: ``incoming.port``, ``queues[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


# Any of these sends a file to the ruamel.yaml path: anchors and aliases, tags, merge keys
# ("<"), tabs, directives, and characters YAML does not allow (yaml-rs is more lenient than
# ruamel.yaml about some of them; NEL and U+2028/9 break lines there, and a second BOM).
# One character class: a single fast scan.
_SLOW_CHARS = re.compile(
    "[&*!%<\t\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]"
)
# ... and document end markers, and deep nesting: deep indentation, or many "- " / "? " on
# one line (each opens a level: yaml-rs recurses, and crashes on thousands). yaml-rs refuses
# flow collections nested deeper than 255 levels on its own.
_SLOW_TEXT = ("\n...", "\n" + " " * 40)
# (eight "- " or "? " in a row; two patterns that start with a literal search much faster)
_COMPACT_NESTING = (re.compile(r"- +(?:[-?] +){7}"), re.compile(r"\? +(?:[-?] +){7}"))
_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # as ruamel.yaml counts lines
_DOC_START = re.compile(r"^---(?:[ \t]|$)", re.MULTILINE)
_CONTENT_LINE = re.compile(r"^[ \t]*[^#\s]", re.MULTILINE)


@dataclass(slots=True)
class Document:
    """One YAML document: plain data plus (on the ruamel path) every node's position."""

    index: int
    data: Any
    line: int = 1
    column: int = 1
    values: dict[Path_, tuple[int, int]] | None = None
    keys: dict[Path_, tuple[int, int]] | None = None

    def position(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """1-based position of the value (or key) at ``path``, or of its nearest ancestor."""
        table = self.keys if key else self.values
        if table is not None and path in table:
            return table[path]
        if self.values is not None:
            while path:
                path = path[:-1]
                if path in self.values:
                    return self.values[path]
        return self.line, self.column


@dataclass(slots=True)
class SourceFile:
    path: str
    display: str
    documents: list[Document] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    text: str = ""
    precise: bool = False
    fast: int = 0  # documents yaml-rs read (their '---' lines split the text: see _parse_fast)
    positioned: dict[int, Document] = field(default_factory=dict)
    starts: list[int] | None = None  # where each document begins, and the lines before it
    shifts: list[int] = field(default_factory=list)

    def error(self, line: int, column: int, message: str) -> None:
        self.problems.append(Diagnostic(self.display, line, column, "error", message))

    def document(self, index: int) -> Document:
        """Document ``index`` with positions; a placeholder if the precise parser found less
        (its problems are then in ``problems``).

        A file yaml-rs read is re-read one document at a time: an error in one document of
        a large file costs the parsing of that document only.
        """
        if self.fast and not self.precise:
            found = self.positioned.get(index)
            if found is None:
                found = self.positioned[index] = self._parse_one(index)
            if found is not _WHOLE_FILE:
                return found
        self.ensure_positions()
        if index < len(self.documents):
            return self.documents[index]
        return Document(index, None)

    def ensure_positions(self) -> None:
        """Re-read through ruamel.yaml so that documents carry positions (for error reports)."""
        if not self.precise:
            if not self.text and not self._read_text():
                self.precise = True
                return
            self.documents = []
            _parse_precise(self)

    def _read_text(self) -> bool:
        try:
            raw = read_regular(self.path, MAX_FILE_BYTES, limit_text=_LIMIT_TEXT)
            self.text = raw.decode("utf-8").removeprefix("\ufeff")
        except (OSError, UnreadableFile, UnicodeDecodeError):  # changed since it was read
            self.error(1, 1, "file changed while it was read; run the command again")
            return False
        return True

    def document_starts(self) -> list[int]:
        """Where each document begins (``_document_starts``) and, in ``shifts``, how many
        lines come before it: counted once per file, as a large file may have many bad
        documents."""
        if self.starts is None:
            self.starts = starts = _document_starts(self.text)
            self.shifts = [_line_breaks(self.text, 0, starts[0])]
            for begin, end in pairwise(starts):
                self.shifts.append(self.shifts[-1] + _line_breaks(self.text, begin, end))
        return self.starts

    def _parse_one(self, index: int) -> Document:
        if not self.text and not self._read_text():
            return Document(index, None)
        starts = self.document_starts()
        if len(starts) != self.fast:
            return _WHOLE_FILE
        end = starts[index + 1] if index + 1 < len(starts) else len(self.text)
        part = SourceFile(self.path, self.display, text=self.text[starts[index] : end])
        _parse_precise(part)
        if len(part.documents) > 1:  # pragma: no cover - the '---' count said otherwise
            return _WHOLE_FILE
        shift = self.shifts[index]
        self.problems.extend(
            Diagnostic(p.file, p.line + shift, p.column, p.severity, p.message)
            for p in part.problems
        )
        if not part.documents:
            return Document(index, None)
        doc = part.documents[0]
        moved = {k: (line + shift, col) for k, (line, col) in (doc.values or {}).items()}
        keys = {k: (line + shift, col) for k, (line, col) in (doc.keys or {}).items()}
        return Document(index, doc.data, doc.line + shift, doc.column, moved, keys)


_WHOLE_FILE = Document(-1, None)


def _line_breaks(text: str, start: int, end: int) -> int:
    return len(_LINE_BREAK.findall(text, start, end))


def _document_starts(text: str) -> list[int]:
    """Where each document of a file yaml-rs read begins (the rule ``_parse_fast`` checks)."""
    starts = [m.start() for m in _DOC_START.finditer(text)]
    if not starts or _CONTENT_LINE.search(text, 0, starts[0]):
        starts.insert(0, 0)
    return starts


_FAST_READ = 64 * 1024
_FAST_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def fast_documents(path: str, *, regular: bool = False) -> list[Any] | None:
    """The documents of an ordinary file, or None when it needs ``read_source`` (any doubt).

    Plain os calls: on ten thousand small files, ``open()``'s buffered file object costs
    as much as the parsing. Anything but a small regular file (a FIFO, a device, a folder)
    takes the careful path, which says what it is; the open never waits for a FIFO.
    ``regular``: the folder listing said so already (no ``fstat`` needed).
    """
    try:
        fd = os.open(path, _FAST_FLAGS)
        try:
            if not regular and not stat.S_ISREG(os.fstat(fd).st_mode):
                return None  # the careful path refuses it
            raw = os.read(fd, _FAST_READ)
        finally:
            os.close(fd)
        if len(raw) >= _FAST_READ:
            return None
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if text.startswith("\ufeff") or "${var:" in text:
        return None  # a BOM; variables: substituted on the careful path (loader)
    docs = _parse_fast(text)
    if docs is not None and _oversized(text, docs):
        return None  # read_source says which document
    return docs


def read_source(path: str, display: str) -> SourceFile:
    src = SourceFile(path, display)
    try:
        raw = read_regular(path, MAX_FILE_BYTES, limit_text=_LIMIT_TEXT)
    except UnreadableFile as exc:
        src.error(1, 1, str(exc))
        return src
    except OSError as exc:
        src.error(1, 1, f"cannot read file: {exc.strerror}")
        return src
    try:
        src.text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8")  # valid: the bad byte is where it stops
        line, column = _line_col(before, len(before))
        src.error(
            line, column, f"file is not UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        )
        return src
    if src.text.startswith("\ufeff"):
        src.text = src.text[1:]
    fast = _parse_fast(src.text)
    if fast is None:
        _parse_precise(src)
        return src
    src.fast = len(fast)
    src.documents = [Document(i, d) for i, d in enumerate(fast)]
    if _oversized(src.text, fast):  # refused here: parsing it again for positions takes long
        src.document_starts()
        for document in list(src.documents):
            if too_many_values(document.data):
                line = src.shifts[document.index] + 1
                src.error(line, 1, _too_many_message(aliased=False))
                src.documents.remove(document)
    return src


def parse_text(text: str, display: str) -> SourceFile:
    """``text`` read by the precise parser, as the loader reads a file of that name."""
    src = SourceFile(display, display, text=text)
    _parse_precise(src)
    return src


def round_trip(*, preserve_quotes: bool) -> Any:
    """ruamel.yaml's round trip in channelsync's layout: two spaces per level, list items
    indented under their key, no line wrapping (export and fmt write with it)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = preserve_quotes
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _oversized(text: str, docs: list[Any]) -> bool:
    # a value takes two characters at least, so only a long text can hold too many
    return len(text) > 2 * MAX_NODES and any(too_many_values(d) for d in docs)


def _too_many_message(*, aliased: bool) -> str:
    if aliased:
        return (
            f"document expands to more than {MAX_NODES:,} values (alias bomb?); remove the aliases"
        )
    return f"document has more than {MAX_NODES:,} values; split it into several files"


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of the character at ``offset``."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _parse_fast(text: str) -> list[Any] | None:
    """Documents parsed by yaml-rs, or None when the file needs the ruamel.yaml path."""
    if _SLOW_CHARS.search(text) or _SLOW_TEXT[0] in text or _SLOW_TEXT[1] in text:
        return None
    if text.startswith("..."):  # a document end marker on the first line
        return None
    if _COMPACT_NESTING[0].search(text) or _COMPACT_NESTING[1].search(text):
        return None
    import yaml_rs

    try:
        data = yaml_rs.loads(text, parse_datetime=False)
    except Exception:
        return None
    if isinstance(data, dict):
        return [data]
    # yaml-rs returns several documents as a list, and so is a single document that is a
    # list: it is several documents only if the '---' lines say so.
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        return None
    expected = len(_document_starts(text))
    if expected < 2 or expected != len(data):
        return None
    return data


def too_many_values(data: Any) -> bool:
    """More than MAX_NODES values (the precise parser's limit, checked on yaml-rs data)."""
    count, stack = 0, [data]
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_NODES:
            return True
        if type(value) is dict:
            stack.extend(value.values())
        elif type(value) is list:
            stack.extend(value)
    return False


_YAML_DIRECTIVE = re.compile(r"^%YAML[ \t]+([0-9]+)\.([0-9]+)", re.MULTILINE)


def _parse_precise(src: SourceFile) -> None:
    from ruamel.yaml import YAML
    from ruamel.yaml.composer import MaxDepthExceededError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    src.precise = True
    if not _supported_version(src):
        return
    yaml = YAML(typ="rt", pure=True)
    yaml.Scanner = _scanner()
    yaml.Composer = _composer()
    yaml.max_depth = MAX_DEPTH  # checked while composing, before anything deeper is built
    yaml.composer.warn_double_anchors = False  # legal YAML: the later anchor counts
    try:
        nodes = list(yaml.compose_all(src.text))
    except MaxDepthExceededError as exc:
        mark = exc.problem_mark
        src.error(mark.line + 1, mark.column + 1, f"nesting deeper than {MAX_DEPTH} levels")
        return
    except _TooManyNodes as exc:
        src.error(exc.line, exc.column, _too_many_message(aliased=False))
        return
    except MarkedYAMLError as exc:
        _report_syntax(src, exc)
        return
    except ReaderError as exc:  # a character YAML does not allow (NUL, most controls)
        line, column = _line_col(src.text, exc.position)
        src.error(
            line, column, f"character U+{exc.character:04X} is not allowed in YAML; remove it"
        )
        return
    except (YAMLError, AssertionError, LookupError, RecursionError, ValueError, TypeError):
        # the parser's own assertions on input it does not expect
        src.error(1, 1, "YAML could not be read; check the file's syntax")
        return
    if not nodes:
        src.error(1, 1, "file has no YAML documents; add a resource or delete the file")
        return
    lines: list[str] | None = None  # split once, for the empty documents' markers
    for index, node in enumerate(nodes):
        builder = _Builder(src)
        mark = node.start_mark
        try:
            data = builder.build(node, ())
        except _Refused as exc:
            where = exc.node.start_mark if exc.node is not None else mark
            src.error(where.line + 1, where.column + 1, exc.message)
            continue
        line, column = mark.line + 1, mark.column + 1
        if data is None:  # an empty document: point at its '---'
            lines = src.text.splitlines() if lines is None else lines
            line, column = _document_marker(lines, line), 1
        src.documents.append(Document(index, data, line, column, builder.values, builder.keys))


@cache
def _scanner() -> Any:
    """ruamel.yaml's scanner, refusing flow nesting as it meets it: it reads flow brackets
    ahead of the composer, at a cost that grows with the square of their depth."""
    from ruamel.yaml.composer import MaxDepthExceededError
    from ruamel.yaml.scanner import RoundTripScanner

    class Scanner(RoundTripScanner):
        def fetch_flow_collection_start(self, token_class: Any, to_push: str) -> None:
            # the document's root is one level, so a flow in it starts at the second
            if len(self.flow_context) >= MAX_DEPTH - 1:
                raise MaxDepthExceededError(None, None, "nesting", self.reader.get_mark())
            super().fetch_flow_collection_start(token_class, to_push)

    return Scanner


class _TooManyNodes(Exception):
    """A document with more than MAX_NODES values, refused while composing: composing the
    rest of a large document takes long."""

    def __init__(self, line: int, column: int) -> None:
        super().__init__(line, column)
        self.line, self.column = line, column


@cache
def _composer() -> Any:
    """ruamel.yaml's composer, counting the values of each document as it builds them (the
    builder counts them again, through aliases)."""
    from ruamel.yaml.composer import Composer

    class Counting(Composer):
        count = 0
        start: Any = None

        def compose_document(self) -> Any:
            self.count = 0
            return super().compose_document()

        def compose_node(self, parent: Any, index: Any) -> Any:
            if parent is None:  # the document's root, where the builder would point
                self.start = self.parser.peek_event().start_mark
            if parent is None or index is not None:  # a value, not a mapping's key
                self.count += 1
            if self.count > MAX_NODES:
                raise _TooManyNodes(self.start.line + 1, self.start.column + 1)
            return super().compose_node(parent, index)

    return Counting


def _supported_version(src: SourceFile) -> bool:
    """ruamel.yaml asserts (rather than reports) on a %YAML version it does not know."""
    for match in _YAML_DIRECTIVE.finditer(src.text):
        major, minor = int(match[1]), int(match[2])
        if (major, minor) not in ((1, 1), (1, 2)):
            line, column = _line_col(src.text, match.start())
            src.error(
                line,
                column,
                f"YAML version {major}.{minor} is not supported; "
                "use %YAML 1.2 or remove the directive",
            )
            return False
    return True


def _document_marker(lines: list[str], line: int) -> int:
    for number in range(min(line, len(lines)), 0, -1):
        if lines[number - 1].startswith("---"):
            return number
    return line


def _report_syntax(src: SourceFile, exc: Any) -> None:
    tab = _first_indent_tab(src.text)
    if tab is not None:
        src.error(*tab, "tab character in indentation; YAML indents with spaces only")
        return
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    context, start = exc.context, exc.context_mark
    if exc.problem and context and start is not None and start.line + 1 != line:
        problem += f" ({context.strip()} at line {start.line + 1}, column {start.column + 1})"
    src.error(line, column, f"YAML syntax error: {problem}")


def _first_indent_tab(text: str) -> tuple[int, int] | None:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip(" \t"))
        position = line.find("\t", 0, indent)
        if position >= 0:
            return number, position + 1
    return None


class _Refused(Exception):
    """A document the builder will not turn into data (at ``node``, or the document)."""

    def __init__(self, message: str, node: Any = None) -> None:
        super().__init__(message)
        self.message, self.node = message, node


_TAG = "tag:yaml.org,2002:"
# the YAML core schema's scalar tags; any other explicit tag (!!binary, !!python/...) is refused
_CORE_SCALARS = frozenset({"null", "bool", "int", "float", "str"})


class _Builder:
    """Node graph -> plain data, recording positions, refusing duplicate keys, alias bombs
    and aliases that contain themselves (which ruamel.yaml composes into a cycle)."""

    def __init__(self, src: SourceFile) -> None:
        self.src = src
        self.count = 0
        self.values: dict[Path_, tuple[int, int]] = {}
        self.keys: dict[Path_, tuple[int, int]] = {}
        self.seen: set[int] = set()
        self.open: set[int] = set()  # collections being built: meeting one again is a cycle
        self.aliased = False

    def build(self, node: Any, path: Path_) -> Any:
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        self.count += 1
        if id(node) in self.seen:
            self.aliased = True
        else:
            self.seen.add(id(node))
        if self.count > MAX_NODES:
            raise _Refused(_too_many_message(aliased=self.aliased))
        if len(path) > MAX_DEPTH:  # deeper than the text shows: through aliases
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels (through aliases)", node)
        mark = node.start_mark
        self.values.setdefault(path, (mark.line + 1, mark.column + 1))
        if not isinstance(node, MappingNode | SequenceNode):
            return self._scalar(node)
        if id(node) in self.open:
            anchor = f"'&{node.anchor}' " if getattr(node, "anchor", None) else ""
            raise _Refused(
                f"the anchor {anchor}is used inside itself (through an alias or a merge key); "
                "a value cannot contain itself",
                node,
            )
        expected = _TAG + ("map" if isinstance(node, MappingNode) else "seq")
        if node.tag not in (expected, "!"):
            self._unsupported_tag(node)
        self.open.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: Any, path: Path_) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first: dict[Any, tuple[int, int]] = {}
        merged: list[dict[Any, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged.extend(self._merge_sources(value_node, path))
                continue
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node.value, str):
                self.src.error(*where, "a mapping key must be a plain value, not a list or mapping")
                continue
            key = self._scalar(key_node)
            if not isinstance(key, str):
                self.src.error(
                    *where, f"mapping key {key_node.value!r} must be text; quote it or rename it"
                )
                continue
            if key in first:
                line, column = first[key]
                self.src.error(
                    *where, f"duplicate key '{key}' (first at line {line}, column {column})"
                )
                continue
            first[key] = where
            self.keys[(*path, key)] = where
            result[key] = self.build(value_node, (*path, key))
        for extra in merged:
            for key, value in extra.items():
                result.setdefault(key, value)
        return result

    def _merge_sources(self, node: Any, path: Path_) -> Iterator[dict[Any, Any]]:
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                mark = source.start_mark
                self.src.error(
                    mark.line + 1,
                    mark.column + 1,
                    "a merge key (<<) takes a mapping or a list of mappings",
                )
                continue
            data = self.build(source, path)
            if isinstance(data, dict):
                yield data

    def _unsupported_tag(self, node: Any) -> None:
        tag: str = node.tag
        shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
        mark = node.start_mark
        self.src.error(
            mark.line + 1, mark.column + 1, f"YAML tag '{shown}' is not supported; remove it"
        )

    def _scalar(self, node: Any) -> Any:
        tag: str = node.tag
        value: str = node.value
        kind = tag.removeprefix(_TAG)
        explicit = getattr(node.ctag, "handle", None) is not None  # not resolved from the text
        if tag != "!" and (kind == tag or (explicit and kind not in _CORE_SCALARS)):
            self._unsupported_tag(node)
            return value
        mark = node.start_mark
        try:
            if kind == "null":
                return None
            if kind == "bool":
                if value.lower() not in ("true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return value.lower() in ("true", "yes", "on")
            if kind == "int":
                return _to_int(value)
            if kind == "float":
                return _to_float(value)
        except ValueError:
            message = f"'{value}' is not a valid {kind}; fix the value or remove the !!{kind} tag"
            self.src.error(mark.line + 1, mark.column + 1, message)
            return value
        if _SURROGATE.search(value):
            self.src.error(
                mark.line + 1, mark.column + 1, "text holds a lone surrogate (\\uD800-\\uDFFF)"
            )
            return _SURROGATE.sub("\ufffd", value)
        return value


def _to_int(text: str) -> int:
    text = text.replace("_", "")
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    for prefix, base in (("0o", 8), ("0x", 16), ("0b", 2)):
        if body.lower().startswith(prefix):
            return sign * int(body[2:], base)
    return sign * int(body, 10)


def _to_float(text: str) -> float:
    lowered = text.lower().replace("_", "")
    if lowered.lstrip("+-") in (".inf",):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(lowered)
