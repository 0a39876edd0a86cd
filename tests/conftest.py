"""Suite-wide test settings.

Hypothesis's per-example deadline is a timing assertion, and timing does not belong in tests (a loaded
2-core CI machine would fail them at random): it is off everywhere.

Hypothesis explores new random examples on every run, which is what we want while developing. In CI
(``CI`` set, as ``.ci/run`` runs) the examples are derandomized, so a landing is judged on the same
inputs every time; developers still find new counterexamples locally and add them as explicit cases.
"""

from __future__ import annotations

import os
import signal

from hypothesis import settings

# Chromium fixtures for every HTML page test, defined once (see the module).
pytest_plugins = ["tests.browser"]

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# A non-interactive shell starts background jobs with SIGINT ignored, and an ignored signal stays
# ignored across exec: every process a test starts would then shrug off the Ctrl-C the test sends.
# With a handler of our own, children start with the default disposition, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
