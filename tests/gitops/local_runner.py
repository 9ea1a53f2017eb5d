"""Run one job of a workflow file locally, the way a GitHub runner would run its steps.

``run:`` steps run with the shell GitHub uses for ``shell: bash`` and their ``env:`` evaluated
from the contexts the test provides; ``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY`` are real
files; step ``if:`` conditions are evaluated. ``uses:`` steps (checkout, setup-python,
upload-artifact, download-artifact) and steps the test names in ``stub`` are replaced: the
checkout is the scratch repository itself, the interpreter is the test's, an upload copies its
files to ``artifacts/NAME/`` (of ``runner.artifacts`` when the test shares one store between the
jobs of a run, else of the runner's temp), and a download copies the artifacts matching its
``pattern`` from there to ``path/NAME/``. ``matrix`` and ``needs`` are contexts like any other
(the test runs each matrix job with its own). Expressions support what the templates use:
context paths, string literals, ``==``/``!=``, ``&&``/``||``/``!``, ``toJSON()``,
``cancelled()``/``always()``/``success()``/``failure()``; anything else raises, so a template
change the runner cannot follow fails the test instead of being skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\))"
    r"|(?P<call>toJSON|cancelled|always|success|failure)\s*\("
    r"|(?P<path>[A-Za-z_][\w-]*(?:\.[\w-]+)*)|(?P<num>\d+))"
)


@dataclass
class StepResult:
    name: str
    outcome: str  # success | failure | skipped
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None  # its working-directory (stubbed steps too: where they would run)


@dataclass
class JobResult:
    steps: list[StepResult]
    summary: str
    artifacts: dict[str, Path]

    @property
    def ok(self) -> bool:
        return all(s.outcome != "failure" for s in self.steps)

    def step(self, step_id: str) -> StepResult:
        return next(s for s in self.steps if s.name == step_id)


class Evaluator:
    def __init__(self, contexts: dict[str, Any], steps: dict[str, StepResult]) -> None:
        self.contexts = contexts
        self.steps = steps

    def lookup(self, path: str) -> Any:
        head, *rest = path.split(".")
        if head == "steps":
            step = self.steps.get(rest[0])
            if step is None:
                return ""
            if rest[1] == "outcome":
                return step.outcome
            return step.outputs.get(rest[2], "") if rest[1] == "outputs" else ""
        if head in ("true", "false"):
            return head == "true"
        if head not in self.contexts:
            raise ValueError(f"unknown context {head!r} in expression")
        value: Any = self.contexts[head]
        for part in rest:
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value

    def evaluate(self, expression: str) -> Any:
        source, pos = [], 0
        while pos < len(expression.rstrip()):
            m = _TOKEN.match(expression, pos)
            if not m:
                raise ValueError(f"cannot evaluate {expression!r} at {expression[pos:]!r}")
            pos = m.end()
            if m["str"]:
                source.append(repr(m["str"][1:-1].replace("''", "'")))
            elif m["op"]:
                source.append({"&&": " and ", "||": " or ", "!": " not "}.get(m["op"], m["op"]))
            elif m["call"]:
                source.append(f"_{m['call']}(")
            elif m["num"]:
                source.append(m["num"])
            else:
                source.append(f"_lookup({m['path']!r})")
        failed = any(s.outcome == "failure" for s in self.steps.values())
        names = {
            "_lookup": self.lookup,
            "_toJSON": lambda v: json.dumps(v, indent=2),
            "_cancelled": lambda: False,
            "_always": lambda: True,
            "_success": lambda: not failed,
            "_failure": lambda: failed,
        }
        return eval("".join(source), {"__builtins__": {}}, names)

    def interpolate(self, text: str) -> str:
        def one(m: re.Match[str]) -> str:
            value = self.evaluate(m.group(1))
            if isinstance(value, bool):
                return "true" if value else "false"
            return "" if value is None else str(value)

        return re.sub(r"\$\{\{(.*?)\}\}", one, text)

    def condition(self, text: str | None) -> bool:
        if text is None:
            return not any(s.outcome == "failure" for s in self.steps.values())
        text = text.strip()
        if text.startswith("${{") and text.endswith("}}"):
            text = text[3:-2]
        uses_status = re.search(r"\b(always|cancelled|success|failure)\s*\(", text)
        if not uses_status:
            text = f"success() && ({text})"
        return bool(self.evaluate(text))


def run_job(
    workflow: Path,
    job: str,
    *,
    workdir: Path,
    contexts: dict[str, Any],
    env: dict[str, str],
    stub: frozenset[str] = frozenset({"install"}),
) -> JobResult:
    spec = YAML(typ="safe").load(workflow.read_text(encoding="utf-8"))
    steps: dict[str, StepResult] = {}
    results: list[StepResult] = []
    runner_temp = Path(contexts["runner"]["temp"])
    artifacts: dict[str, Path] = {}
    summary_parts: list[str] = []
    evaluator = Evaluator(contexts, steps)
    bindir = str(Path(sys.executable).parent)
    base_env = {
        **env,
        "PATH": f"{bindir}:{env.get('PATH', os.environ['PATH'])}",
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_WORKSPACE": str(workdir),
    }
    job_spec = spec["jobs"][job]
    for scope in (spec, job_spec):
        base_env.update(
            {k: evaluator.interpolate(str(v)) for k, v in (scope.get("env") or {}).items()}
        )
    for index, step in enumerate(job_spec["steps"]):
        step_id = str(step.get("id") or f"step{index}")
        cwd = workdir / evaluator.interpolate(str(step.get("working-directory", ".")))
        if not evaluator.condition(step.get("if")):
            result = StepResult(step_id, "skipped")
        elif step_id in stub or "uses" in step:
            result = _uses(step, step_id, evaluator, artifacts, runner_temp)
        else:
            result = _run(step, step_id, evaluator, base_env, cwd, runner_temp)
            summary_parts.append(result.env.pop("_summary", ""))
        result.cwd = cwd
        steps[step_id] = result
        results.append(result)
    return JobResult(results, "".join(summary_parts), artifacts)


def _uses(
    step: dict[str, Any],
    step_id: str,
    evaluator: Evaluator,
    artifacts: dict[str, Path],
    runner_temp: Path,
) -> StepResult:
    action = str(step.get("uses", ""))
    store = Path(evaluator.contexts["runner"].get("artifacts") or runner_temp / "artifacts")
    if action.startswith("actions/upload-artifact@"):
        inputs = {k: evaluator.interpolate(str(v)) for k, v in step["with"].items()}
        target = store / inputs["name"]
        target.mkdir(parents=True, exist_ok=True)
        paths = [Path(p.strip()) for p in inputs["path"].splitlines() if p.strip()]
        missing = [p for p in paths if not p.exists()]
        if missing and inputs.get("if-no-files-found") == "error":
            return StepResult(step_id, "failure", stderr=f"no files found: {missing}")
        for p in paths:
            if p.exists():
                shutil.copy(p, target / p.name)
        artifacts[inputs["name"]] = target
        return StepResult(step_id, "success")
    if action.startswith("actions/download-artifact@"):
        inputs = {k: evaluator.interpolate(str(v)) for k, v in step["with"].items()}
        into = Path(inputs["path"])
        for found in sorted(store.glob(inputs["pattern"])) if store.is_dir() else []:
            shutil.copytree(found, into / found.name, dirs_exist_ok=True)
        return StepResult(step_id, "success")
    if action and not action.startswith(("actions/checkout@", "actions/setup-python@")):
        raise ValueError(f"the local runner has no stand-in for {action}")
    return StepResult(step_id, "success")


def _run(
    step: dict[str, Any],
    step_id: str,
    evaluator: Evaluator,
    base_env: dict[str, str],
    workdir: Path,
    runner_temp: Path,
) -> StepResult:
    script = str(step["run"])
    if "${{" in script:
        raise ValueError(f"step {step_id}: expressions belong in env:, not in run: (injection)")
    env = dict(base_env)
    env.update({k: evaluator.interpolate(str(v)) for k, v in (step.get("env") or {}).items()})
    output = runner_temp / f"output-{step_id}"
    summary = runner_temp / f"summary-{step_id}"
    output.write_text("")
    summary.write_text("")
    env["GITHUB_OUTPUT"], env["GITHUB_STEP_SUMMARY"] = str(output), str(summary)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return StepResult(
        step_id,
        "success" if done.returncode == 0 else "failure",
        done.stdout,
        done.stderr,
        outputs,
        {"_summary": summary.read_text()},
    )
