"""``serve --monitor-every``: channel health on a schedule, its history, metrics and alerts.

``service`` runs the checks (``probe``'s, with the store's secrets: ``checks``), ``history``
keeps their results and shares the work between replicas through the store, ``metrics``
defines the Prometheus metrics (also written by ``channelsync test --format prometheus``),
``alerts`` sends state changes through apprise, ``routes`` joins it to the application.
"""
