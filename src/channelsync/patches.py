"""``patch: true``: a document of a later folder that changes a resource of an earlier one.

The loader finds each patch's base and checks the result (``loader._apply_patches``); here is
the merge.

An environment reads its ``dirs`` in order (``channels.d/common``, then ``channels.d/prod``);
a document with ``patch: true`` is merged into the resource of the same kind and name that an
earlier folder defines: mappings key by key, anything else (lists included) replaced, ``null``
removes the key. The merged document is then checked as one, and every value keeps the
position of the file that set it. Two definitions without ``patch`` stay a duplicate name.
"""

from __future__ import annotations

from typing import Any

from channelsync.yamlsource import Path_, SourceFile

Owner = tuple[SourceFile, int]
FLAG = "patch"  # the document key; fmt puts it after the name, where a reader looks first
_IDENTITY = ("kind", "name")


def merge(
    base: dict[str, Any], patch: dict[str, Any], owner: Owner, overrides: dict[Path_, Owner]
) -> dict[str, Any]:
    """``base`` with ``patch`` merged in; ``overrides`` learns which paths the patch set."""

    def into(node: dict[str, Any], changes: dict[str, Any], path: Path_) -> dict[str, Any]:
        out = dict(node)
        for key, value in changes.items():
            here = (*path, key)
            if value is None:
                out.pop(key, None)
            elif type(value) is dict and type(out.get(key)) is dict:
                out[key] = into(out[key], value, here)
            else:
                out[key] = value
                overrides[here] = owner
        return out

    return into(base, {k: v for k, v in patch.items() if k not in _IDENTITY}, ())
