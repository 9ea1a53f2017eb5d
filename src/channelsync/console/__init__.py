"""The web console of ``channelsync serve``: channel health for the people who use the
vendor's console today. Read-only for configuration (changes go through ``channels.d/``);
the one action is Test connection.

``mount`` adds its routes to the API application; ``pages.py`` holds them, ``views.py`` what
they show, ``live.py`` the Test button's checks, ``history.py`` the check results,
``sessions.py`` sign-in and CSRF, ``drift.py`` the posted drift reports.
"""

from channelsync.console.pages import mount as mount

__all__ = ["mount"]
