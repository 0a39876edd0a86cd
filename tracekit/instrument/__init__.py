"""tracekit's instrumentation library: ``tracekit.instrument(app)`` and ``tracekit.configure()``.

Why this module is callable: ``tracekit.instrument`` is both this sub-package and the public function.
Python binds a sub-package as an attribute of its parent as soon as it is imported, which would shadow
the lazily exported function in ``tracekit/__init__.py``. Making the module object callable (delegating
to :func:`tracekit.instrument.provider.instrument`) keeps ``tracekit.instrument(app)`` working whatever was
imported first.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, app: Any, **kwargs: Any) -> Any:
        from tracekit.instrument.provider import instrument

        return instrument(app, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
