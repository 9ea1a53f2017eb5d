"""The steps of the GitOps workflows: ``python -m channelsync.gitops.ci STEP``.

The workflows keep their ``run:`` blocks to one line each and put the logic here, so that it is
typed, tested, and the same on GitHub and on a laptop. Every input comes from the environment
the way GitHub provides it (``GITHUB_*``, ``RUNNER_TEMP``) plus a few variables the workflows set
from expressions; results go to ``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY``; GitHub itself is
reached only through ``gh`` (``$GH`` overrides the command). Set those variables and put a stub
``gh`` on PATH to run a workflow's steps locally.

Steps: ``plan`` and ``comment`` (channels-plan.yml), ``reviewed-plan`` and ``apply``
(channels-apply.yml), ``drift``, ``drift-issue`` and ``drift-report`` (channels-drift.yml).
The workflows of a repository with environments (``channelsync init --env NAME``) add
``environments`` (the matrix: the names in channelsync.yaml) and ``report`` (one
environment's part of the comment); each matrix job names its environment in
``$CHANNELSYNC_ENV``, and the jobs that combine them (``comment``, ``drift-issue``) read
``$ENVIRONMENTS`` and the downloaded ``$CHANNELSYNC_REPORTS``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path

from channelsync.bindings import ENV_VAR as BINDINGS_ENV
from channelsync.bindings import FILE_NAME as BINDINGS_FILE
from channelsync.bindings import read as read_bindings
from channelsync.defaults import PROJECT_FILE
from channelsync.exitcodes import EXIT_STALE
from channelsync.fsio import write_atomic
from channelsync.gitops.github import GitHub, GitHubError
from channelsync.render.plan import MARKDOWN_MARKER as MARKER
from channelsync.targets import TOKEN_ENV, token_variable

DRIFT_LABEL = "drift"
DRIFT_TITLE = "channelsync: the tenant has drifted from channels.d/"
PLAN_WORKFLOW = "channels-plan.yml"
PLAN_ARTIFACT = "channelsync-plan"
FORK_NOTE = (
    "> :information_source: This pull request comes from a fork (or Dependabot): its plan gets "
    "no secrets, neither the tenant's (so it is planned against no tenant: every resource shows "
    "as a create) nor the channels' (no connection tests). A maintainer's plan on a branch of "
    "this repository, and apply on main, compare with the tenant and test the connections."
)
TRUSTED_NOTE = (
    "> :information_source: This pull request changes {files}. This plan ran the workflow and "
    "the channelsync of `{base}` (a pull request's files are only read as data, and nothing "
    "from them runs where secrets are): the change takes effect once it is merged."
)
TRUSTED_DIR = ".github"  # the workflows and .github/channelsync/requirements.txt
NO_BINDINGS_NOTE = (
    "> :information_source: Connection tests were not run: {why}. They send secrets only to "
    "the endpoints that `channelsync.secrets.yaml` on the default branch binds them to (never "
    "the pull request's own copy); they run before apply on main."
)
NO_TARGET_NOTE = (
    "> :warning: No `CHANNELSYNC_TARGET` in this run: the plan compares with an empty embedded "
    "tenant, so every resource shows as a create."
)


NEW_ENVIRONMENT_NOTE = (
    "> :information_source: Environment `{env}` is not in `channelsync.yaml` on `{base}`: its "
    "target is trusted once merged, so this plan compares with no tenant (every resource a "
    "create)."
)
NO_REPORT = (
    "### channelsync: no plan\n\nThe plan job of this environment did not finish; see the "
    "workflow run."
)
NO_ENVIRONMENTS = (
    f"### channelsync: no environments\n\n`{PROJECT_FILE}` could not be read, so nothing was "
    "planned; the errors are in the log of the environments job (run `channelsync validate` "
    "locally)."
)
ENV_VAR = "CHANNELSYNC_ENV"


def environment() -> str:
    """The environment of this matrix job ("" in a repository without environments)."""
    return os.environ.get(ENV_VAR, "")


def artifact_name(base: str) -> str:
    """An artifact of this job: one per environment in a matrix."""
    env = environment()
    return f"{base}-{env}" if env else base


def token_secret(env: str) -> str:
    """The repository secret with an environment's token (CHANNELSYNC_TOKEN_PROD): plan and
    drift read it, so that a GitHub environment's reviewers guard apply alone."""
    return token_variable(env)


def work_dir() -> Path:
    """Where steps leave files for later steps and artifacts: the runner's temp, not the repo."""
    base = os.environ.get("RUNNER_TEMP") or ".channelsync"
    path = Path(base) / "channelsync-ci"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def set_output(name: str, value: str) -> None:
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(f"{name}={value}\n")


def add_summary(markdown: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(markdown.rstrip("\n") + "\n")


def notice(kind: str, message: str) -> None:
    """A workflow command (``::warning::``/``::notice::``) that GitHub shows as an annotation."""
    print(f"::{kind}::{message}", flush=True)


def secrets_env(
    only: Collection[str] | None = None, *, environment_token: bool = True
) -> dict[str, str]:
    """The process environment plus the repository secrets passed as ``toJSON(secrets)``
    (with ``only``, just the secrets of those names). In an environment's job the API token
    is ``CHANNELSYNC_TOKEN``: the repository secret ``CHANNELSYNC_TOKEN_<NAME>`` (a read token
    for plan and drift) unless ``environment_token`` is off (apply: the GitHub environment's
    write token); that secret itself is not passed on, or channelsync would read it first.

    Channel files name their secrets (``${env:NAME}``), so the workflows cannot list them; they
    hand over every secret instead and channelsync reads the ones the config references.
    """
    env = dict(os.environ)
    env.pop("CHANNELSYNC_SECRETS_JSON", None)
    raw = os.environ.get("CHANNELSYNC_SECRETS_JSON", "").strip()
    if raw:
        for name, value in json.loads(raw).items():
            if only is not None and name not in only:
                continue
            if name.lower() != "github_token" and isinstance(value, str) and name not in env:
                env[name] = value
        token = json.loads(raw).get(token_secret(environment())) if environment() else None
        if environment_token and isinstance(token, str) and token:
            env[TOKEN_ENV] = token
    if environment():  # channelsync would prefer it over the CHANNELSYNC_TOKEN chosen here
        env.pop(token_secret(environment()), None)
    return env


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def channelsync(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    """Run the CLI as a child (its stderr is echoed to the job log as well as returned)."""
    done = subprocess.run(  # -P: a `channelsync/` folder in the (pull request's) checkout
        [sys.executable, "-P", "-m", "channelsync", *args],  # is not imported instead
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    sys.stderr.write(done.stderr)
    return Result(done.returncode, done.stdout, done.stderr)


def run_link() -> str:
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    repo, run = os.environ.get("GITHUB_REPOSITORY", ""), os.environ.get("GITHUB_RUN_ID", "")
    return f"{server}/{repo}/actions/runs/{run}" if repo and run else ""


def _footer() -> str:
    sha = os.environ.get("PR_HEAD_SHA") or os.environ.get("GITHUB_SHA", "")
    parts = [f"commit {sha[:12]}"] if sha else []
    if link := run_link():
        parts.append(f"[workflow run]({link})")
    return f"<sub>{' · '.join(parts)}</sub>" if parts else ""


def _fenced(text: str, limit: int = 20_000) -> str:
    text = text.strip()[-limit:].replace("```", "'''")
    return f"```\n{text}\n```"


def _github() -> GitHub:
    return GitHub(os.environ["GITHUB_REPOSITORY"])


# ---- channels-plan.yml -------------------------------------------------------------------------


def plan_args(out: Path, *, bindings: Path | None, target: str | None = None) -> list[str]:
    """The plan command; connection tests only with a trusted bindings file. ``target``: the
    tenant an environment's plan compares with (never the pull request's own)."""
    args = ["plan", "--format", "markdown", "--out", str(out), "--detailed-exitcode"]
    if target is not None:
        args += ["--target", target]
    if bindings is None:
        return args
    return [*args, "--check-connections", "--secret-bindings", str(bindings)]


def base_bindings(out: Path) -> tuple[Path | None, str]:
    """The base branch's ``channelsync.secrets.yaml`` copied to ``out``, or why there is none.

    Only the repository's default branch is trusted: anyone who can push a branch could
    otherwise open a pull request against a branch whose bindings they wrote.
    """
    base, default = os.environ.get("BASE_REF", ""), os.environ.get("DEFAULT_BRANCH", "")
    if not base:
        return None, NO_BINDINGS_NOTE.format(why="this run names no base branch")
    if default and base != default:
        why = f"this pull request targets `{base}`, not the default branch `{default}`"
        return None, NO_BINDINGS_NOTE.format(why=why)
    ref = f"origin/{base}"
    if _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is None:
        why = f"`{ref}` is not in the checkout (checkout needs fetch-depth: 0)"
        return None, NO_BINDINGS_NOTE.format(why=why)
    text = _git("show", f"{ref}:{BINDINGS_FILE}")
    if text is None:
        return None, NO_BINDINGS_NOTE.format(why=f"`{base}` has no `{BINDINGS_FILE}`")
    path = out / "base" / BINDINGS_FILE
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text)
    return path, ""


def base_target(out: Path, env: str) -> tuple[str | None, bool]:
    """(the target of ``env`` in the base branch's channelsync.yaml, whether the base has
    that environment): a pull request cannot point the plan, and the token, elsewhere."""
    from channelsync.environments import load
    from channelsync.errors import ChannelsyncError

    base = os.environ.get("BASE_REF", "")
    text = _git("show", f"origin/{base}:{PROJECT_FILE}") if base else None
    if text is None:
        return None, False
    path = out / "base" / PROJECT_FILE
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text)
    try:
        found = load(path).environments.get(env)
    except ChannelsyncError:
        return None, False
    return (found.target, True) if found is not None else (None, False)


def bound_names(bindings: Path | None) -> frozenset[str]:
    """The ``${env:NAME}`` secrets a trusted bindings file binds: the only ones a pull
    request's plan gets (none without a trusted file: the plan then tests no connection)."""
    if bindings is None:
        return frozenset()
    found, _problems = read_bindings(bindings, Path.cwd())  # the plan reports the problems
    return frozenset(b.key[1] for b in found.bindings if b.key[0] == "env")


def changed_trusted_files(limit: int = 5) -> str:
    """The files under ``.github/`` the pull request changes, for the comment ("" if none)."""
    base = os.environ.get("BASE_REF", "")
    fork_point = _git("merge-base", f"origin/{base}", "HEAD") if base else None
    if fork_point is None:
        return ""
    names = _git("diff", "--name-only", fork_point.decode().strip(), "--", TRUSTED_DIR)
    files = (names or b"").decode(errors="replace").splitlines()
    shown = ["`" + name.replace("`", "'") + "`" for name in files[:limit]]
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    return ", ".join(shown) + more


def _git(*args: str) -> bytes | None:
    done = subprocess.run(["git", *args], capture_output=True, check=False)
    return done.stdout if done.returncode == 0 else None


def step_plan() -> int:
    """Plan for the pull request; exit 0 for "no changes" and "changes", 1 for errors."""
    out = work_dir()
    secrets = _truthy("SECRETS_AVAILABLE")
    bindings, why = base_bindings(out) if secrets else (None, FORK_NOTE)
    env = secrets_env(only=bound_names(bindings))
    env.pop(BINDINGS_ENV, None)  # only the base branch's file, whatever the environment says
    if not secrets:  # a fork's comment is public: it must not show the tenant either
        env.pop("CHANNELSYNC_TARGET", None)
        env.pop(TOKEN_ENV, None)
    target, notes = _environment_target(out, env, secrets)
    result = channelsync(plan_args(out / "plan.json", bindings=bindings, target=target), env)
    set_output("exitcode", str(result.code))
    set_output("changes", "true" if result.code == 2 else "false")
    failed = result.code not in (0, 2)
    if failed:
        write_atomic(out / "plan-error.txt", result.stderr)
    if result.stdout.startswith(MARKER):  # also when failed connection tests made it exit 1
        notes = ([why] if why else []) + notes
        if changed := changed_trusted_files():
            base = os.environ.get("BASE_REF", "")
            notes.append(TRUSTED_NOTE.format(files=changed, base=base))
        if bindings is not None:  # hints name the file reviewers know, not the runner's copy
            base = os.environ.get("BASE_REF", "")
            result = replace(
                result, stdout=result.stdout.replace(str(bindings), f"{BINDINGS_FILE} on {base}")
            )
        if secrets and not os.environ.get("CHANNELSYNC_TARGET") and not environment():
            notes.append(NO_TARGET_NOTE)
        body = result.stdout.rstrip("\n") + "".join(f"\n\n{n}" for n in notes) + "\n"
        write_atomic(out / "plan.md", body)
    return 1 if failed else 0


def _environment_target(
    out: Path, env: dict[str, str], secrets: bool
) -> tuple[str | None, list[str]]:
    """An environment's plan compares with the target the base branch names for it (or
    CHANNELSYNC_TARGET), never the one of the pull request's channelsync.yaml; without
    secrets, or for an environment new in the pull request, with no tenant."""
    name = environment()
    if not name:
        return None, []
    from channelsync.defaults import DEFAULT_TARGET

    if not secrets:
        return DEFAULT_TARGET, []
    target, known = base_target(out, name)
    if not known:
        env.pop(TOKEN_ENV, None)
        base = os.environ.get("BASE_REF", "")
        return DEFAULT_TARGET, [NEW_ENVIRONMENT_NOTE.format(env=name, base=base)]
    return target or env.get("CHANNELSYNC_TARGET") or DEFAULT_TARGET, []


def comment_body() -> str:
    """The sticky comment for this run: the plan, or why there is none (with environments:
    a section per environment, from each one's report)."""
    reports = os.environ.get("ENVIRONMENTS")
    if reports is not None:
        from channelsync.render.plan import environment_section

        folder = Path(os.environ.get("CHANNELSYNC_REPORTS", work_dir() / "reports"))
        parts = [MARKER]
        if not _environment_names(reports):
            parts.append(NO_ENVIRONMENTS)
        for name in _environment_names(reports):
            path = folder / f"channelsync-report-{name}" / "report.md"
            text = path.read_text(encoding="utf-8") if path.is_file() else NO_REPORT
            parts.append(environment_section(name, text, MARKER))
        return "\n".join(parts) + f"\n{_footer()}\n"
    return f"{report_body()}\n\n{_footer()}\n"


def _environment_names(text: str) -> list[str]:
    from channelsync.environments import is_environment_name

    try:
        names = json.loads(text)
    except ValueError:
        return []
    return [n for n in names if isinstance(n, str) and is_environment_name(n)]


def step_report() -> int:
    """One environment's part of the plan comment, for the job that posts the comment."""
    folder = work_dir() / "report"
    folder.mkdir(exist_ok=True)
    write_atomic(folder / "report.md", report_body() + "\n")
    return 0


def report_body() -> str:
    """The plan, or why there is none (the comment without its footer)."""
    out = work_dir()
    validate = os.environ.get("VALIDATE_OUTCOME", "")
    plan_md = out / "plan.md"
    if validate not in ("", "success"):
        body = (
            f"{MARKER}\n### channelsync: validation failed\n\n"
            "The errors are annotated on the changed lines (see the **Files changed** tab); "
            "run `channelsync validate` locally to see them all. No plan was made."
        )
    else:
        parts = [plan_md.read_text(encoding="utf-8").rstrip("\n")] if plan_md.exists() else [MARKER]
        if os.environ.get("PLAN_OUTCOME", "success") != "success" or not plan_md.exists():
            error = out / "plan-error.txt"
            detail = _fenced(error.read_text(encoding="utf-8")) if error.exists() else ""
            parts.append(f"### channelsync: plan failed\n\n{detail}".rstrip())
        body = "\n\n".join(parts)
    return body


def step_comment() -> int:
    """Post or edit the one plan comment; on a fork's read-only token, fall back to the summary."""
    body = comment_body()
    write_atomic(work_dir() / "comment.md", body)
    add_summary(body)
    number = int(os.environ["PR_NUMBER"])
    try:
        action, comment_id = _github().upsert_comment(number, MARKER, body)
    except GitHubError as exc:
        if _truthy("SECRETS_AVAILABLE"):
            raise
        notice("warning", f"could not comment on the pull request (fork token?): {exc}")
        return 0
    print(f"{action} comment {comment_id} on pull request #{number}")
    return 0


# ---- channels-apply.yml ------------------------------------------------------------------------


def step_reviewed_plan() -> int:
    """Fetch the plan saved by the merged pull request's plan run, when there is one."""
    found = _fetch_reviewed_plan()
    set_output("found", "true" if found else "false")
    if found:
        print(f"reviewed plan: {found}")
    return 0


def _fetch_reviewed_plan() -> Path | None:
    github = _github()
    try:
        pull = github.merged_pull_head(os.environ["GITHUB_SHA"])
        if pull is None:
            print("no merged pull request for this commit: apply will re-plan")
            return None
        number, head = pull
        run_id = github.successful_run(PLAN_WORKFLOW, head)
        if run_id is None:
            print(f"no successful plan run for #{number} at {head[:12]}: apply will re-plan")
            return None
        data = github.artifact_zip(run_id, artifact_name(PLAN_ARTIFACT))
    except GitHubError as exc:
        notice("warning", f"could not fetch the reviewed plan, apply will re-plan: {exc}")
        return None
    if data is None:
        print(f"the plan artifact of run {run_id} is gone: apply will re-plan")
        return None
    target = work_dir() / "reviewed"
    target.mkdir(exist_ok=True)
    with zipfile.ZipFile(BytesIO(data)) as archive:
        archive.extract("plan.json", target)
    return target / "plan.json"


def apply_args(planfile: Path | None) -> list[str]:
    args = ["apply", *([str(planfile)] if planfile else ["--auto-approve"])]
    if _truthy("CHANNELSYNC_ALLOW_DELETE"):
        args.append("--allow-delete")
    if _truthy("CHANNELSYNC_SKIP_CONNECTION_TESTS"):
        args.append("--skip-connection-tests")
    return args


def step_apply() -> int:
    """Apply the reviewed plan if it is still current, else re-plan and apply (both gated)."""
    env = secrets_env(environment_token=False)
    if Path(BINDINGS_FILE).is_file():  # main's own, reviewed: the gate honours it too
        env[BINDINGS_ENV] = BINDINGS_FILE
    saved = work_dir() / "reviewed" / "plan.json"
    if saved.exists():
        result = channelsync(apply_args(saved), env)
        if result.code != EXIT_STALE:
            return _report_apply("the reviewed plan", result)
        notice("notice", "the reviewed plan is stale (main or the tenant moved on): re-planning")
    return _report_apply("a fresh plan", channelsync(apply_args(None), env))


def _report_apply(what: str, result: Result) -> int:
    sys.stdout.write(result.stdout)
    verdict = "applied" if result.code == 0 else "failed"
    add_summary(f"### channelsync apply: {verdict} ({what})\n\n{_fenced(result.stdout)}")
    if result.code != 0:
        add_summary(_fenced(result.stderr))
    return result.code


# ---- channels-drift.yml ------------------------------------------------------------------------


def step_drift() -> int:
    """Compare; exit 1 only on errors (the workflow fails the job on drift after the issue)."""
    args = ["drift", "--format", "markdown"]
    ignore = os.environ.get("CHANNELSYNC_DRIFT_IGNORE") or ".github/channelsync/drift-ignore.yaml"
    if Path(ignore).exists():
        args += ["--ignore", ignore]
    result = channelsync(args, secrets_env())
    set_output("exitcode", str(result.code))
    write_atomic(work_dir() / "drift-exitcode", f"{result.code}\n")
    if result.code not in (0, 2):
        add_summary(f"### channelsync drift: error\n\n{_fenced(result.stderr)}")
        write_atomic(work_dir() / "drift-error.txt", result.stderr)
        return 1
    write_atomic(work_dir() / "drift.md", result.stdout)
    add_summary(result.stdout)
    return 0


REPORT_TOKEN_ENV = "CHANNELSYNC_REPORT_TOKEN"  # a write token for the console's drift page


def step_drift_report() -> int:
    """Post the drift report to the console of a ``channelsync serve`` target (its Drift
    page); without a server target or a token for it, nothing. Never fails the job."""
    from channelsync.argtypes import TARGET_ENV
    from channelsync.targets.base import TargetError
    from channelsync.targets.http import api_url

    target = os.environ.get(TARGET_ENV, "").rstrip("/")
    token = os.environ.get(REPORT_TOKEN_ENV) or os.environ.get(TOKEN_ENV)
    if not target.startswith(("https://", "http://")) or not token:
        print("no channelsync serve target: no drift report to post")
        return 0
    try:
        api = api_url(target)  # the tenant's API: https://host/tenants/acme → /v1/tenants/acme
    except TargetError as exc:
        notice("warning", f"no drift report was posted: {exc}")
        return 0
    args = ["drift", "--format", "json"]
    ignore = os.environ.get("CHANNELSYNC_DRIFT_IGNORE") or ".github/channelsync/drift-ignore.yaml"
    if Path(ignore).exists():
        args += ["--ignore", ignore]
    result = channelsync(args, secrets_env())
    if result.code not in (0, 2):
        notice("warning", "channelsync drift failed; no drift report was posted")
        return 0
    import httpx

    repository = os.environ.get("GITHUB_REPOSITORY", "") or Path.cwd().name
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    report = {
        **json.loads(result.stdout),
        "files": _resource_files(),
        "repository": repository,
        "repository_url": f"{server}/{repository}" if os.environ.get("GITHUB_REPOSITORY") else None,
    }
    try:
        answer = httpx.post(
            f"{api}/drift-reports",
            json=report,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        notice("warning", f"the drift report could not be posted to {target}: {type(exc).__name__}")
        return 0
    if answer.status_code != 201:
        notice("warning", f"the drift report was refused by {target} (HTTP {answer.status_code})")
        return 0
    print(f"drift report posted to {target}")
    return 0


def _resource_files() -> dict[str, str]:
    """Each resource's file, relative to the repository root, so the console links it."""
    from channelsync.argtypes import DEFAULT_DIR, DIR_ENV, from_env
    from channelsync.loader import load_config

    config = load_config(Path(from_env(DIR_ENV) or DEFAULT_DIR))
    return {
        f"{r.kind}/{r.name}": Path(os.path.relpath(r.source.path)).as_posix()
        for r in config.resources
    }


def drift_issue_body(report: str | None = None) -> str:
    if report is None:
        report = (work_dir() / "drift.md").read_text(encoding="utf-8").rstrip("\n")
    return (
        f"{report}\n\nThe tenant no longer matches `channels.d/`. Either apply the config "
        "(`channelsync apply`), adopt the live values into it (`channelsync export`), or accept "
        "the difference for a while in the drift ignore file. The scheduled drift workflow "
        f"updates this issue and closes it once the tenant is back in sync.\n\n{_footer()}\n"
    )


def step_drift_issue() -> int:
    """Open or update the one ``drift`` issue on drift; close it when back in sync."""
    report: str | None = None
    if os.environ.get("ENVIRONMENTS") is not None:
        report, drifted, failed = _drift_reports()
        set_output("drifted", "true" if drifted else "false")
        if failed and not drifted:
            print("drift failed in an environment: the issue is left as it is")
            return 1
    else:
        drifted = os.environ.get("DRIFT_EXITCODE") == "2"
    github = _github()
    issue = github.open_issue(DRIFT_LABEL)
    if drifted:
        body = drift_issue_body(report)
        write_atomic(work_dir() / "drift-issue.md", body)
        if issue is None:
            number = github.create_issue(DRIFT_TITLE, body, DRIFT_LABEL)
            print(f"opened drift issue #{number}")
        else:
            github.update_issue(issue.number, body=body)
            print(f"updated drift issue #{issue.number}")
    elif issue is not None:
        link = run_link()
        github.comment(issue.number, f"Back in sync{f' ({link})' if link else ''}: closing.")
        github.update_issue(issue.number, state="closed", state_reason="completed")
        print(f"closed drift issue #{issue.number}")
    else:
        print("in sync; no open drift issue")
    return 0


def _drift_reports() -> tuple[str, bool, bool]:
    """(one report with a section per environment, whether any drifted, any failed)."""
    from channelsync.render.plan import DRIFT_MARKER, environment_section

    folder = Path(os.environ.get("CHANNELSYNC_REPORTS", work_dir() / "reports"))
    parts, drifted, failed = [DRIFT_MARKER], False, False
    for name in _environment_names(os.environ.get("ENVIRONMENTS", "")):
        where = folder / f"channelsync-drift-{name}"
        code_file = where / "drift-exitcode"
        code = code_file.read_text().strip() if code_file.is_file() else ""
        drifted |= code == "2"
        if code in ("0", "2"):
            text = (where / "drift.md").read_text(encoding="utf-8")
        else:
            failed = True
            error = where / "drift-error.txt"
            detail = _fenced(error.read_text(encoding="utf-8")) if error.is_file() else ""
            text = f"### channelsync: drift failed\n\n{detail}".rstrip()
        parts.append(environment_section(name, text, DRIFT_MARKER))
    return "\n".join(parts).rstrip("\n"), drifted, failed


def step_environments() -> int:
    """The matrix: the environment names of channelsync.yaml, as a JSON list."""
    from channelsync.environments import find, load
    from channelsync.errors import ConfigError

    path = find()
    if path is None:
        print(f"error: no {PROJECT_FILE} in the repository: it lists the environments")
        return 1
    try:
        names = list(load(path).environments)
    except ConfigError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic)
        print(f"error: {exc}")
        return 1
    set_output("names", json.dumps(names))
    print(f"environments: {', '.join(names)}")
    return 0


STEPS: dict[str, Callable[[], int]] = {
    "environments": step_environments,
    "report": step_report,
    "plan": step_plan,
    "comment": step_comment,
    "reviewed-plan": step_reviewed_plan,
    "apply": step_apply,
    "drift": step_drift,
    "drift-issue": step_drift_issue,
    "drift-report": step_drift_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in STEPS:
        print(f"usage: python -m channelsync.gitops.ci {{{','.join(STEPS)}}}", file=sys.stderr)
        return 1
    try:
        return STEPS[args[0]]()
    except GitHubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
