"""The few GitHub REST calls the workflows make, all through the ``gh`` CLI.

Going through ``gh api`` (instead of an HTTP client) keeps the token handling in the tool that
GitHub's runners already ship and lets the tests put a stub ``gh`` on PATH (or name one in
``$GH``) that records every call and serves a fake repository.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any


class GitHubError(Exception):
    """A ``gh`` call failed; the message carries its stderr, which names the HTTP status."""


@dataclass(frozen=True)
class Comment:
    id: int
    body: str


@dataclass(frozen=True)
class Issue:
    number: int
    body: str


class GitHub:
    """One repository (``owner/name``) reached through ``gh api``."""

    def __init__(self, repository: str, gh: str | None = None) -> None:
        self.repository = repository
        self.gh = shlex.split(gh or os.environ.get("GH") or "gh")

    def _call(self, args: list[str], payload: dict[str, Any] | None = None) -> bytes:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(payload or {}, f)
        try:
            command = [*self.gh, "api", *args]
            if payload is not None:
                command += ["--input", f.name]
            done = subprocess.run(command, capture_output=True, check=False)
        finally:
            os.unlink(f.name)
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
            raise GitHubError(f"gh api {args[-1]}: {detail}")
        return done.stdout

    def get(self, endpoint: str, *, paginate: bool = False) -> Any:
        out = self._call([*(["--paginate"] if paginate else []), endpoint]).decode()
        if not paginate:
            return json.loads(out)
        # --paginate prints one JSON array per page, back to back
        items: list[Any] = []
        decoder, pos = json.JSONDecoder(), 0
        while pos < len(out):
            if out[pos].isspace():
                pos += 1
                continue
            page, pos = decoder.raw_decode(out, pos)
            items.extend(page)
        return items

    def send(self, method: str, endpoint: str, payload: dict[str, Any]) -> Any:
        return json.loads(self._call(["-X", method, endpoint], payload) or b"null")

    def download(self, endpoint: str) -> bytes:
        return self._call([endpoint])

    # ---- sticky pull-request comment -------------------------------------------------------

    def find_comment(self, number: int, marker: str) -> Comment | None:
        comments = self.get(f"repos/{self.repository}/issues/{number}/comments", paginate=True)
        for c in comments:
            if str(c.get("body") or "").startswith(marker):
                return Comment(int(c["id"]), str(c["body"]))
        return None

    def upsert_comment(self, number: int, marker: str, body: str) -> tuple[str, int]:
        """Edit the comment that starts with ``marker`` or create it; ("created"|"updated", id)."""
        existing = self.find_comment(number, marker)
        if existing is None:
            made = self.send(
                "POST", f"repos/{self.repository}/issues/{number}/comments", {"body": body}
            )
            return "created", int(made["id"])
        self.send("PATCH", f"repos/{self.repository}/issues/comments/{existing.id}", {"body": body})
        return "updated", existing.id

    # ---- the drift issue -------------------------------------------------------------------

    def open_issue(self, label: str) -> Issue | None:
        """The oldest open issue with ``label`` (pull requests excluded)."""
        found = self.get(
            f"repos/{self.repository}/issues?labels={label}&state=open&per_page=100",
            paginate=True,
        )
        issues = sorted(
            (
                Issue(int(i["number"]), str(i.get("body") or ""))
                for i in found
                if "pull_request" not in i
            ),
            key=lambda i: i.number,
        )
        return issues[0] if issues else None

    def create_issue(self, title: str, body: str, label: str) -> int:
        made = self.send(
            "POST",
            f"repos/{self.repository}/issues",
            {"title": title, "body": body, "labels": [label]},
        )
        return int(made["number"])

    def update_issue(self, number: int, **fields: Any) -> None:
        self.send("PATCH", f"repos/{self.repository}/issues/{number}", fields)

    def comment(self, number: int, body: str) -> None:
        self.send("POST", f"repos/{self.repository}/issues/{number}/comments", {"body": body})

    # ---- the reviewed plan -----------------------------------------------------------------

    def merged_pull_head(self, sha: str) -> tuple[int, str] | None:
        """The merged pull request that produced commit ``sha``: (number, head sha)."""
        pulls = self.get(f"repos/{self.repository}/commits/{sha}/pulls")
        merged = [p for p in pulls if p.get("merged_at")]
        exact = [p for p in merged if p.get("merge_commit_sha") == sha]
        for p in exact or merged:
            return int(p["number"]), str(p["head"]["sha"])
        return None

    def successful_run(self, workflow: str, head_sha: str) -> int | None:
        runs = self.get(
            f"repos/{self.repository}/actions/workflows/{workflow}/runs"
            f"?head_sha={head_sha}&status=success&per_page=1"
        )
        found = runs.get("workflow_runs") or []
        return int(found[0]["id"]) if found else None

    def artifact_zip(self, run_id: int, name: str) -> bytes | None:
        listed = self.get(f"repos/{self.repository}/actions/runs/{run_id}/artifacts?name={name}")
        live = [a for a in listed.get("artifacts") or [] if not a.get("expired")]
        if not live:
            return None
        return self.download(f"repos/{self.repository}/actions/artifacts/{live[0]['id']}/zip")
