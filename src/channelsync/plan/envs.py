"""``plan --all-envs``: one plan per environment of the project file.

The configs are loaded one after the other (parsing is CPU work: threads would only take turns
on the interpreter lock, and the loader forks workers of its own for large trees); the targets
are then read and planned at the same time, on at most ``MAX_PARALLEL`` threads, since that is
waiting on tenants (HTTP) or on disk. One environment's error never stops the others: it
becomes that environment's section.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from channelsync import log
from channelsync.errors import ChannelsyncError, ConfigError, Diagnostic, error_code
from channelsync.exitcodes import EXIT_ERROR

if TYPE_CHECKING:
    from channelsync.desired import Config
    from channelsync.layout import Environment
    from channelsync.plan.data import Plan
    from channelsync.secrets import Resolver

MAX_PARALLEL = 4


@dataclass
class EnvironmentPlan:
    """One environment's plan, or why there is none (``error``, with the ``code`` of its
    class as in the JSON error document), with the config's diagnostics."""

    name: str
    target: str
    plan: Plan | None = None
    error: str | None = None
    code: str = "error"
    exit_code: int = EXIT_ERROR
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def failed(self, exc: ChannelsyncError) -> None:
        self.error, self.code, self.exit_code = str(exc), error_code(type(exc)), exc.exit_code


def plan_all(
    environments: list[Environment], *, only: list[str], secrets: Resolver | None
) -> list[EnvironmentPlan]:
    from channelsync import targets
    from channelsync.loader import load_config

    results: list[EnvironmentPlan] = []
    configs: list[Config | None] = []
    for environment in environments:
        result = EnvironmentPlan(environment.name, targets.target_url(environment.target))
        config = load_config(environment)
        result.diagnostics = list(config.diagnostics)
        if config.errors:
            result.failed(ConfigError(config.diagnostics))
        results.append(result)
        configs.append(None if config.errors else config)

    def plan_one(index: int) -> None:
        config, result = configs[index], results[index]
        if config is None:
            return
        try:
            with log.context(environment=result.name):
                result.plan = _plan(config, result.target, result.name, only, secrets)
        except ChannelsyncError as exc:
            result.failed(exc)

    workers = max(1, min(MAX_PARALLEL, len(environments)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="plan-env") as pool:
        list(pool.map(plan_one, range(len(environments))))
    return results


def _plan(
    config: Config, url: str, environment: str, only: list[str], secrets: Resolver | None
) -> Plan:
    from channelsync import targets
    from channelsync.plan import PlanWarning, WarningCategory, make_plan
    from channelsync.targets import absent

    try:
        with log.step("open target", scheme=url.partition(":")[0], readonly=True):
            target = targets.open_target(url, readonly=True, environment=environment)
        try:
            plan = make_plan(config, target, only=only, secrets=secrets)
            missing = absent(target)
        finally:
            target.close()
    except OSError as exc:  # a file or folder the target names
        raise ChannelsyncError(f"{exc.filename or url}: {exc.strerror or exc}") from None
    if missing:
        plan.warnings.insert(0, PlanWarning(WarningCategory.TENANT_ABSENT, missing))
    return plan
