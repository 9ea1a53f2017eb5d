"""Workflow linters for the tests: the JSON Schema of GitHub workflows, shellcheck of every
``run:`` block, and zizmor's security audits.

They replace actionlint, whose PyPI wrapper downloads its binary at build time (impossible
here) and whose binary-carrying fork comes from an unknown publisher.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from tests.gitops.conftest import REPO

BIN = Path(sys.executable).parent
# `${{ expr }}` is substituted by the runner before the shell sees it; a plain word of the same
# length keeps shellcheck's columns meaningful.
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
# SC2016: single quotes around GitHub expressions' leftovers are intended.
_SHELLCHECK = ["-s", "bash", "-S", "style", "-e", "SC1091,SC2016"]


@dataclass(frozen=True)
class Finding:
    tool: str
    text: str


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN))
    if found is None:
        raise AssertionError(f"{name} is missing: pip install -e '.[dev]'")
    return found


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def _run_blocks(workflow: Path) -> list[tuple[str, str]]:
    doc = YAML(typ="safe").load(workflow.read_text())
    blocks = []
    for job_name, job in (doc.get("jobs") or {}).items():
        for index, step in enumerate(job.get("steps") or []):
            if "run" in step:
                where = f"{workflow.name}: jobs.{job_name}.steps[{index}]"
                blocks.append((where, _EXPRESSION.sub("GITHUB_EXPRESSION", step["run"])))
    return blocks


def lint(workflows: list[Path], cwd: Path = REPO) -> list[Finding]:
    """Everything the three linters find in ``workflows`` (empty: clean)."""
    findings: list[Finding] = []
    files = [str(p) for p in workflows]
    done = _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files])
    if done.returncode != 0:
        findings.append(Finding("check-jsonschema", done.stdout + done.stderr))
    shellcheck = _tool("shellcheck")
    with tempfile.TemporaryDirectory() as scratch:
        for n, (where, script) in enumerate(b for w in workflows for b in _run_blocks(w)):
            path = Path(scratch) / f"run{n}.sh"
            path.write_text(script)
            done = _run([shellcheck, *_SHELLCHECK, str(path)])
            if done.returncode != 0:
                findings.append(Finding("shellcheck", f"{where}\n{done.stdout}"))
    config = REPO / ".github" / "zizmor.yml"
    done = _run(
        [_tool("zizmor"), "--offline", "--no-progress", "--config", str(config), *files],
        cwd=cwd,
    )
    if done.returncode != 0:
        findings.append(Finding("zizmor", done.stdout + done.stderr))
    return findings
