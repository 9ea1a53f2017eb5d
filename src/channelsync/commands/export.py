"""``channelsync export``."""

from __future__ import annotations

import argparse
import sys

from channelsync import log
from channelsync.commands import shared
from channelsync.exitcodes import EXIT_ERROR, EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from channelsync import rules
    from channelsync.errors import UsageError
    from channelsync.export import export
    from channelsync.loader import load_config
    from channelsync.render import export as render

    if args.only and args.prune:
        raise UsageError(
            "--only adopts chosen resources and touches nothing else; --prune cannot go with it"
        )
    shared.refuse_layered(args, "export")
    config = load_config(shared.config_source(args)) if args.dir.exists() else None
    # a reference to a resource whose file is gone does not block: export writes it back
    references = set(rules.reference_problems(config)) if config is not None else set()
    if config is not None and config.errors:
        for diagnostic in config.errors:
            print(diagnostic, file=sys.stderr)
        if any(d not in references for d in config.errors):
            print(
                "error: fix these first: export edits the config files in place and must know "
                "which resource each document defines",
                file=sys.stderr,
            )
            return EXIT_ERROR
        print(
            f"note: exporting anyway: the tenant's resources are written back, which may "
            f"resolve these {len(config.errors)} reference error(s); run 'channelsync validate' "
            "after",
            file=sys.stderr,
        )
    if args.secret_bindings is not None:
        from channelsync.bindings import check_writable

        check_writable(args.secret_bindings)
    target = shared.open_target(args, readonly=True, existing=True)
    try:
        with log.step("export", dir=str(args.dir)) as found:
            report = export(target, args.dir, config, prune=args.prune, only=args.only)
            found.update(written=len(report.written), removed=len(report.removed))
    finally:
        target.close()
    sys.stdout.write(render.changes(report))
    if args.secret_bindings is not None:
        from channelsync.bindings import extend_file

        if extend_file(args.secret_bindings, report.bindings):
            print(f"wrote {args.secret_bindings}")
    sys.stdout.write(render.secrets_to_set(report))
    return EXIT_OK
