"""``python -m tests.console.screenshots``: the README's two console screenshots, taken by the
browser tests (real Dovecot, Postfix and Chromium) into docs/screenshots/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def main() -> int:
    os.environ["CONSOLE_SCREENSHOTS"] = str(FOLDER)
    here = Path(__file__).with_name("test_browser.py")
    code = pytest.main(["-q", "-p", "no:cacheprovider", f"{here}", "-k", "in_place or health"])
    print(f"screenshots in {FOLDER}" if code == 0 else "screenshots failed", file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
