"""``python -m channelsync`` and the ``channelsync`` console script.

``--version`` is answered here, before the parser and the modules it needs are imported: the
answer costs the interpreter's start-up and nothing more.
"""

import sys


def console() -> None:
    if sys.argv[1:] == ["--version"]:
        from channelsync import __version__

        sys.stdout.write(f"channelsync {__version__}\n")
        raise SystemExit(0)
    from channelsync.cli import run

    run()


if __name__ == "__main__":
    console()
