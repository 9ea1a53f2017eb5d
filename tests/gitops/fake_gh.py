"""A stand-in for the ``gh`` CLI: ``gh api`` against a fake repository kept in a JSON file.

The tests put it on PATH as ``gh``. Every call is appended to ``$FAKE_GH_LOG`` (one JSON argv per
line); ``$FAKE_GH_STATE`` holds the comments, issues, pull requests, workflow runs and artifacts.
Unknown endpoints fail the way ``gh`` does on a 404, so a workflow calling something the fake
does not model shows up as a failure, not as a silent success.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def main(argv: list[str]) -> int:
    with open(os.environ["FAKE_GH_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(argv) + "\n")
    if not argv or argv[0] != "api":
        print(f"fake gh: unsupported command {argv!r}", file=sys.stderr)
        return 1
    method, payload, endpoint = "GET", None, ""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "--input":
            payload = json.loads(Path(next(args)).read_text(encoding="utf-8"))
        elif arg == "--paginate":
            pass
        else:
            endpoint = arg
    state_file = Path(os.environ["FAKE_GH_STATE"])
    state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
    if state.get("fail"):
        print(f"gh: Resource not accessible by integration (HTTP 403) {endpoint}", file=sys.stderr)
        return 1
    url = urlsplit(endpoint)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    result = route(state, method, url.path, query, payload)
    if result is None:
        print(f"gh: Not Found (HTTP 404) {method} {endpoint}", file=sys.stderr)
        return 1
    state_file.write_text(json.dumps(state, indent=1), encoding="utf-8")
    if isinstance(result, bytes):
        sys.stdout.buffer.write(result)
    else:
        print(json.dumps(result))
    return 0


def route(
    state: dict[str, Any], method: str, path: str, query: dict[str, str], payload: Any
) -> Any:
    repo = state["repository"]
    m = re.fullmatch(rf"repos/{repo}/(.*)", path)
    if not m:
        return None
    rest = m.group(1)
    comments: list[dict[str, Any]] = state.setdefault("comments", [])
    issues: list[dict[str, Any]] = state.setdefault("issues", [])
    if (m := re.fullmatch(r"issues/(\d+)/comments", rest)) and method == "GET":
        return [c for c in comments if c["issue"] == int(m.group(1))]
    if (m := re.fullmatch(r"issues/(\d+)/comments", rest)) and method == "POST":
        state["next_id"] = state.get("next_id", 1000) + 1
        made = {"id": state["next_id"], "issue": int(m.group(1)), "body": payload["body"]}
        comments.append(made)
        return made
    if (m := re.fullmatch(r"issues/comments/(\d+)", rest)) and method == "PATCH":
        for c in comments:
            if c["id"] == int(m.group(1)):
                c["body"] = payload["body"]
                return c
        return None
    if rest == "issues" and method == "GET":
        label = query.get("labels")
        return [
            i
            for i in issues
            if i["state"] == query.get("state", "open") and (not label or label in i["labels"])
        ]
    if rest == "issues" and method == "POST":
        number = max([i["number"] for i in issues] + [state.get("last_number", 0)]) + 1
        made = {
            "number": number,
            "state": "open",
            "title": payload["title"],
            "body": payload["body"],
            "labels": payload.get("labels", []),
        }
        issues.append(made)
        return made
    if (m := re.fullmatch(r"issues/(\d+)", rest)) and method == "PATCH":
        for i in issues:
            if i["number"] == int(m.group(1)):
                i.update(payload)
                return i
        return None
    if (m := re.fullmatch(r"commits/(\w+)/pulls", rest)) and method == "GET":
        return [p for p in state.get("pulls", []) if p["merge_commit_sha"] == m.group(1)]
    if (m := re.fullmatch(r"actions/workflows/([\w.-]+)/runs", rest)) and method == "GET":
        runs = [
            r
            for r in state.get("runs", [])
            if r["workflow"] == m.group(1) and r["head_sha"] == query.get("head_sha")
        ]
        return {"workflow_runs": runs}
    if (m := re.fullmatch(r"actions/runs/(\d+)/artifacts", rest)) and method == "GET":
        found = [a for a in state.get("artifacts", []) if a["run_id"] == int(m.group(1))]
        return {"artifacts": [a for a in found if a["name"] == query.get("name", a["name"])]}
    if (m := re.fullmatch(r"actions/artifacts/(\d+)/zip", rest)) and method == "GET":
        for a in state.get("artifacts", []):
            if a["id"] == int(m.group(1)):
                return Path(a["zip"]).read_bytes()
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
