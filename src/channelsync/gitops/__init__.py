"""GitOps around channelsync: ``init`` (a config repository with its GitHub workflows), shell
completion, and the workflow steps (``python -m channelsync.gitops.ci``).

The CLI registers ``init`` and ``completion`` through ``command.add_parsers``; everything else
here is imported only when one of them (or a workflow step) runs.
"""
