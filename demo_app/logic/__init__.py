"""The demo pod's ``app`` container: the Flask shop API (see :mod:`.app`)."""
