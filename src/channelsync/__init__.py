"""channelsync: contact-centre email channels as code.

The pipeline reads one way: ``loader`` (files -> desired state) -> ``plan`` (desired vs live)
-> ``probe`` (connection tests) -> ``apply`` (a target) -> ``render`` (reports).
"""

__version__ = "0.1.0"
