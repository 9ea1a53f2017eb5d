"""The workflows of a repository with environments (``channelsync init --env staging --env
prod``), run job by job through the local runner: the environments job lists the matrix, one
job per environment plans (or applies, or drifts) it against its own tenant, and the combining
job posts ONE comment (or one drift issue) with a section per environment."""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.gitops import lint
from tests.gitops.conftest import FakeGitHub, channelsync, git
from tests.gitops.local_runner import JobResult
from tests.gitops.test_workflows import HEAD_SHA, MARKER, PASSWORD, pr_contexts, run

Env = Callable[..., dict[str, str]]
ENVIRONMENTS = ["staging", "prod"]


@pytest.fixture
def targets(tmp_path: Path) -> dict[str, str]:
    return {env: f"sqlite:///{tmp_path / 'tenants' / env}.db" for env in ENVIRONMENTS}


@pytest.fixture
def env_repo(tmp_path: Path, targets: dict[str, str]) -> Path:
    """``init --env staging --env prod``, each environment's target set, committed on main."""
    repo = tmp_path / "config-repo"
    result = channelsync("init", str(repo), "--env", "staging", "--env", "prod")
    assert result.code == 0, result.err
    project = repo / "channelsync.yaml"
    text = project.read_text()
    for env, url in targets.items():
        text = text.replace(f"sqlite:///.channelsync/{env}.db", url)
    # prod's channel is enabled: the one difference between the two
    lines = text.splitlines()
    prod = lines.index("  prod:")
    lines[prod + 3] = "    variables: {enabled: true}"
    project.write_text("\n".join(lines) + "\n")
    # no bindings: no connection test (nothing here reaches the network)
    (repo / "channelsync.secrets.yaml").unlink()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "channelsync init --env staging --env prod")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    return repo


def _failures(job: JobResult) -> list[tuple[str, str, str]]:
    return [(s.name, s.stdout[-800:], s.stderr[-800:]) for s in job.steps if s.outcome == "failure"]


def _with(contexts: dict[str, Any], store: Path, **extra: Any) -> dict[str, Any]:
    contexts["runner"]["artifacts"] = str(store)
    contexts.update(extra)
    return contexts


def _needs(names: str, job: str = "environments") -> dict[str, Any]:
    return {job: {"outputs": {"names": names}, "result": "success"}}


def plan_run(
    repo: Path, tmp: Path, env: dict[str, str], *, secrets: dict[str, str] | None = None
) -> tuple[dict[str, JobResult], JobResult]:
    """The whole plan workflow: the matrix jobs, then the comment job."""
    store = tmp / "artifacts"
    listed = run(
        repo,
        "channels-plan.yml",
        "environments",
        _with(pr_contexts(tmp / "list", fork=secrets is None, secrets=secrets), store),
        env,
    )
    assert listed.ok, [(s.name, s.stdout, s.stderr) for s in listed.steps]
    names = listed.step("list").outputs["names"]
    assert json.loads(names) == ENVIRONMENTS
    jobs = {}
    for name in json.loads(names):
        contexts = pr_contexts(tmp / name, fork=secrets is None, secrets=secrets)
        contexts = _with(contexts, store, matrix={"environment": name}, needs=_needs(names))
        jobs[name] = run(repo, "channels-plan.yml", "plan", contexts, env)
    contexts = pr_contexts(tmp / "comment", fork=secrets is None, secrets=secrets)
    contexts = _with(contexts, store, needs={**_needs(names), "plan": {"result": "success"}})
    comment = run(repo, "channels-plan.yml", "comment", contexts, env)
    assert comment.ok, [(s.name, s.stdout, s.stderr) for s in comment.steps]
    return jobs, comment


def test_plan_matrix_posts_one_comment_with_a_section_per_environment(
    env_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env, targets: dict[str, str]
) -> None:
    secrets = {**PASSWORD}
    env = runner_env(GITHUB_SHA=HEAD_SHA)
    jobs, _ = plan_run(env_repo, tmp_path / "run1", env, secrets=secrets)
    for name, job in jobs.items():
        assert job.ok, _failures(job)
        artifact = job.artifacts[f"channelsync-plan-{name}"]
        assert json.loads((artifact / "plan.json").read_text())["target"] == targets[name]
    (comment,) = fake_gh.state["comments"]
    body = comment["body"]
    assert body.startswith(f"{MARKER}\n## Environment `staging`\n\n### channelsync Plan: 1 to")
    assert body.count(MARKER) == 1
    staging, prod = body.split("## Environment `prod`")
    assert f"Target: `{targets['staging']}`" in staging and "+ enabled = false" in staging
    assert f"Target: `{targets['prod']}`" in prod and "+ enabled = true" in prod
    assert PASSWORD["EXAMPLE_IMAP_PASSWORD"] not in body

    plan_run(env_repo, tmp_path / "run2", env, secrets=secrets)
    assert len(fake_gh.state["comments"]) == 1, "the second run edits the one comment"


def test_an_environments_plan_uses_the_base_branchs_target_not_the_pull_requests(
    env_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env, targets: dict[str, str]
) -> None:
    elsewhere = f"sqlite:///{tmp_path / 'attacker.db'}"
    project = env_repo / "channelsync.yaml"
    text = project.read_text().replace(targets["prod"], elsewhere)
    project.write_text(text + "  review:\n    dirs: [channels.d/common]\n")
    text = project.read_text().replace("default_environment: staging\n", "")
    project.write_text(text + "default_environment: staging\n")
    store = tmp_path / "artifacts"
    names = json.dumps(["prod", "review"])
    for name in ("prod", "review"):
        contexts = pr_contexts(tmp_path / name, fork=False, secrets={**PASSWORD})
        contexts = _with(contexts, store, matrix={"environment": name}, needs=_needs(names))
        job = run(env_repo, "channels-plan.yml", "plan", contexts, runner_env())
        assert job.ok, _failures(job)
    prod = json.loads((store / "channelsync-plan-prod" / "plan.json").read_text())
    assert prod["target"] == targets["prod"]
    review = (store / "channelsync-report-review" / "report.md").read_text()
    assert "Environment `review` is not in `channelsync.yaml` on `main`" in review
    assert "Target: `sqlite:///.channelsync/tenant.db`" in review


def _publish_reviewed_plans(
    repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env
) -> str:
    jobs, _ = plan_run(repo, tmp_path / "pr", runner_env(GITHUB_SHA=HEAD_SHA), secrets={})
    artifacts = []
    for index, (name, job) in enumerate(jobs.items()):
        archive = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(archive, "w") as z:
            for f in job.artifacts[f"channelsync-plan-{name}"].iterdir():
                z.write(f, f.name)
        artifacts.append(
            {
                "id": 70 + index,
                "run_id": 55,
                "name": f"channelsync-plan-{name}",
                "zip": str(archive),
            }
        )
    merge_sha = git(repo, "rev-parse", "HEAD")
    fake_gh.update(
        pulls=[
            {
                "number": 7,
                "merged_at": "2025-01-01T00:00:00Z",
                "merge_commit_sha": merge_sha,
                "head": {"sha": HEAD_SHA},
            }
        ],
        runs=[{"id": 55, "workflow": "channels-plan.yml", "head_sha": HEAD_SHA}],
        artifacts=artifacts,
    )
    return merge_sha


def _push_contexts(temp: Path, store: Path, **extra: Any) -> dict[str, Any]:
    contexts = {
        "github": {"repository": "acme/channels", "token": "ghs_fake", "event": {}},
        "secrets": {**PASSWORD},
        "vars": {"CHANNELSYNC_SKIP_CONNECTION_TESTS": "true"},
        "runner": {"temp": str(temp), "artifacts": str(store)},
    }
    contexts.update(extra)
    return contexts


def _apply_all(repo: Path, tmp: Path, env: dict[str, str]) -> dict[str, JobResult]:
    store = tmp / "artifacts"
    listed = run(repo, "channels-apply.yml", "environments", _push_contexts(tmp / "l", store), env)
    assert listed.ok
    names = listed.step("list").outputs["names"]
    jobs = {}
    for name in json.loads(names):
        contexts = _push_contexts(
            tmp / name, store, matrix={"environment": name}, needs=_needs(names)
        )
        jobs[name] = run(repo, "channels-apply.yml", "apply", contexts, env)
    return jobs


def test_apply_matrix_applies_each_environments_reviewed_plan_to_its_tenant(
    env_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env, targets: dict[str, str]
) -> None:
    merge_sha = _publish_reviewed_plans(env_repo, tmp_path, fake_gh, runner_env)
    jobs = _apply_all(env_repo, tmp_path / "push", runner_env(GITHUB_SHA=merge_sha))
    for name, job in jobs.items():
        assert job.ok, _failures(job)
        assert job.step("reviewed").outputs == {"found": "true"}
        assert "Apply complete: 1 created." in job.step("apply").stdout
        assert "channelsync apply: applied (the reviewed plan)" in job.summary
        assert Path(targets[name].removeprefix("sqlite:///")).exists()
    for name in ENVIRONMENTS:
        drift = channelsync("drift", "--env", name, cwd=env_repo, env=runner_env(**PASSWORD))
        assert drift.code == 0, drift.out + drift.err


def test_workflow_spec_runs_apply_in_the_github_environment_of_the_same_name(
    env_repo: Path,
) -> None:
    from ruamel.yaml import YAML

    load = YAML(typ="safe").load
    workflows = env_repo / ".github" / "workflows"
    apply = load((workflows / "channels-apply.yml").read_text())["jobs"]["apply"]
    assert apply["environment"] == "${{ matrix.environment }}"
    assert apply["strategy"]["max-parallel"] == 1
    plan = load((workflows / "channels-plan.yml").read_text())
    assert set(plan["on"]) == {"pull_request_target"}
    assert plan["jobs"]["plan"]["strategy"]["matrix"]["environment"] == (
        "${{ fromJSON(needs.environments.outputs.names) }}"
    )
    for job in plan["jobs"].values():  # every step that runs channelsync: -P
        for step in job["steps"]:
            if step.get("run", "").startswith("python") and "pip install" not in step["run"]:
                assert step["run"].startswith("python -P -m channelsync"), step


def _drift_all(
    repo: Path, tmp: Path, env: dict[str, str]
) -> tuple[dict[str, JobResult], JobResult]:
    store = tmp / "artifacts"
    contexts = _push_contexts(tmp / "l", store, vars={})
    listed = run(repo, "channels-drift.yml", "environments", contexts, env)
    names = listed.step("list").outputs["names"]
    jobs = {}
    for name in json.loads(names):
        contexts = _push_contexts(
            tmp / name, store, vars={}, matrix={"environment": name}, needs=_needs(names)
        )
        jobs[name] = run(repo, "channels-drift.yml", "drift", contexts, env)
    contexts = _push_contexts(tmp / "issue", store, vars={}, needs=_needs(names))
    return jobs, run(repo, "channels-drift.yml", "issue", contexts, env)


def test_drift_matrix_keeps_one_issue_with_a_section_per_environment(
    env_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env
) -> None:
    env = runner_env(GITHUB_SHA=git(env_repo, "rev-parse", "HEAD"))
    for name in ENVIRONMENTS:
        args = ("apply", "--env", name, "--auto-approve", "--skip-connection-tests")
        assert channelsync(*args, cwd=env_repo, env={**env, **PASSWORD}).code == 0
    jobs, issue = _drift_all(env_repo, tmp_path / "d0", env)
    assert all(j.ok for j in jobs.values()) and issue.ok
    assert fake_gh.state.get("issues", []) == []

    project = env_repo / "channelsync.yaml"  # prod's channel is switched off on main
    project.write_text(project.read_text().replace("{enabled: true}", "{enabled: false}"))
    jobs, issue = _drift_all(env_repo, tmp_path / "d1", env)
    assert [j.step("drift").outputs["exitcode"] for j in jobs.values()] == ["0", "2"]
    assert issue.step("fail-on-drift").outcome == "failure"
    (opened,) = fake_gh.state["issues"]
    assert opened["state"] == "open"
    body = opened["body"]
    assert body.startswith("<!-- channelsync:drift -->\n## Environment `staging`\n")
    staging, prod = body.split("## Environment `prod`")
    assert "No changes." in staging
    assert "~ enabled: true -> false" in prod

    lines = project.read_text().splitlines()  # and on again
    lines[lines.index("  prod:") + 3] = "    variables: {enabled: true}"
    project.write_text("\n".join(lines) + "\n")
    jobs, issue = _drift_all(env_repo, tmp_path / "d2", env)
    assert issue.ok
    (closed,) = fake_gh.state["issues"]
    assert closed["state"] == "closed"


def test_environment_workflows_pass_the_linters(env_repo: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=env_repo, check=True)
    files = sorted((env_repo / ".github" / "workflows").glob("*.yml"))
    assert len(files) == 3
    assert lint.lint(files, cwd=env_repo) == []


def test_init_with_environments_scaffolds_the_layout_and_it_plans(tmp_path: Path) -> None:
    root = tmp_path / "new"
    result = channelsync("init", str(root), "--env", "staging", "--env", "prod")
    assert result.code == 0, result.err
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith(("schemas/", ".github/"))] == [
        ".gitignore",
        "channels.d/common/example.yaml",
        "channels.d/prod/example.yaml",
        "channels.d/staging/example.yaml",
        "channelsync.secrets.yaml",
        "channelsync.yaml",
    ]
    assert "schemas/channelsync-project.schema.json" in files
    assert "Next: set each environment's target in channelsync.yaml" in result.out
    assert channelsync("validate", "--env", "prod", cwd=root).code == 0
    plan = channelsync("plan", "--all-envs", "--format", "json", cwd=root)
    assert plan.code == 0, plan.err
    assert [e["environment"] for e in json.loads(plan.out)["environments"]] == ENVIRONMENTS
    assert not (root / ".channelsync").exists()  # plan creates no tenant
    refused = channelsync("init", str(tmp_path / "x"), "--env", "common")
    assert refused.code == 1
    assert refused.err == (
        "error: --env common: an environment name is letters, digits, '_', '.' or '-' "
        "(GitHub's environment names), once each, and not 'common' (the shared folder)\n"
    )


def test_a_broken_project_file_still_gets_a_comment_saying_so(
    env_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env
) -> None:
    (env_repo / "channelsync.yaml").write_text("environments: {}\n")
    store = tmp_path / "artifacts"
    listed = run(
        env_repo,
        "channels-plan.yml",
        "environments",
        _with(pr_contexts(tmp_path / "l", fork=True), store),
        runner_env(),
    )
    assert listed.step("list").outcome == "failure"
    assert (
        "channelsync.yaml:1:15: error: environments: should be non-empty"
        in (listed.step("list").stdout)
        or "channelsync.yaml:1:" in listed.step("list").stdout
    )
    contexts = _with(pr_contexts(tmp_path / "c", fork=True), store, needs=_needs(""))
    comment = run(env_repo, "channels-plan.yml", "comment", contexts, runner_env())
    assert comment.ok
    body = fake_gh.state["comments"][0]["body"]
    assert body.startswith(f"{MARKER}\n### channelsync: no environments\n")
