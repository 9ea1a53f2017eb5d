"""The vendor's tenant, apart from where it is stored.

``rules`` holds the tenant's own rules (what the vendor's Configuration Manager enforces
whatever client writes), ``sealing`` the secrets at rest (Fernet) and their fingerprints
(HMAC) under a key file, ``lease`` the apply lock (holder, heartbeat, takeover), and
``repository`` the narrow interface a store implements for them (rows by key; insert, update
and delete in one transaction). ``targets/sqlite.py`` is one such store; a PostgreSQL store
is another repository composed the same way.
"""
