"""The exit codes of every channelsync command, in one table (README "Commands").

2 and 3 are outcomes a pipeline branches on, never a usage error: a bad command line exits 1.
"""

EXIT_OK = 0
EXIT_ERROR = 1  # any error, usage errors included
EXIT_CHANGES = 2  # plan --detailed-exitcode: changes pending; drift: drift found
EXIT_STALE = 3  # apply PLANFILE: the saved plan no longer matches the config or the tenant
EXIT_INTERRUPTED = 130  # Ctrl-C
