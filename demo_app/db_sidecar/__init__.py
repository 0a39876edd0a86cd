"""The demo pod's ``db`` container: an HTTP data service over SQLite (see :mod:`.app`)."""
