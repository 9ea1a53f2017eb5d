"""One module per command: its handler (``run``-like ``cmd_*``) and the exit code it returns.

Only argparse-level imports at module level: each handler imports what it needs, so that
``channelsync --help`` stays fast.
"""
