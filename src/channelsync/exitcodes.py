"""The exit codes of every channelsync command, in one table (README "Commands")."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
