"""One module per command: its handler, which returns an exit code (``channelsync.exitcodes``).

validate, plan, apply, drift, export, list, test, discover, schema, init (and completion),
serve (and token); ``shared`` holds what several handlers do alike (load the config with its
warnings shown, open the target, the secret bindings). The options are in ``argtypes``.
Only argparse-level imports at module level: each handler imports what it needs, so that
``channelsync --help`` stays fast.
"""
