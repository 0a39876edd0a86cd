"""Database spans for apps that talk to their database directly: the contrib instrumentations, turned on.

Without CLIENT spans for the database an analyzer can never attribute time to a ``db`` layer. tracekit
turns on the opentelemetry-python-contrib instrumentation (same pinned release set as the rest) of every
database client library that is installed: ``sqlite3`` always (standard library; the instrumentation is a
core dependency), and psycopg, psycopg2, SQLAlchemy, redis and pymongo when present (their
instrumentations come with the ``db`` extra). Statements are kept as those instrumentations allow and no
more: query parameters are not captured (DB-API, psycopg), redis commands keep only the command name with
``?`` for each argument, pymongo does not capture the command document.

Opting out, per library, uses the variable ``opentelemetry-instrument`` already reads:
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=sqlite3,redis`` (the names of :data:`CLIENTS`).

``sqlite3``: the stock instrumentation wraps ``sqlite3.connect`` in a proxy whose ``cursor()`` is traced,
so ``conn.execute(...)``, the shortcut Flask's tutorial uses, runs on an untraced internal cursor and gives
no span (opentelemetry-python-contrib#3082). :class:`SQLiteInstrumentor` hands the same DB-API integration
a connection proxy whose ``execute``/``executemany``/``executescript`` do what the shortcuts are
documented to do (``cursor()`` then the cursor's method), so both styles give the same DB spans.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.instrumentation import dbapi
from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts
from opentelemetry.instrumentation.sqlite3 import (
    _CONNECTION_ATTRIBUTES,
    _DATABASE_SYSTEM,
    SQLite3Instrumentor,
)
from opentelemetry.instrumentation.sqlite3 import __name__ as _SQLITE3_SCOPE
from opentelemetry.instrumentation.sqlite3.version import __version__ as _SQLITE3_VERSION

log = logging.getLogger("tracekit.tracing")

DISABLED_VAR = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"


class _SQLiteConnection(dbapi.TracedConnectionProxy):
    """A traced sqlite3 connection whose ``execute`` shortcuts go through the traced cursor."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self.cursor().execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        return self.cursor().executemany(*args, **kwargs)

    def executescript(self, *args: Any, **kwargs: Any) -> Any:
        return self.cursor().executescript(*args, **kwargs)


class _SQLiteIntegration(dbapi.DatabaseApiIntegration):
    def wrapped_connection(
        self, connect_method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[Any, Any]
    ) -> Any:
        connection = connect_method(*args, **kwargs)
        self.get_connection_attributes(connection)
        return _SQLiteConnection(connection, self)


class SQLiteInstrumentor(SQLite3Instrumentor):
    """The contrib sqlite3 instrumentation, with ``Connection.execute`` & co traced as well."""

    _instance = None  # BaseInstrumentor keeps one instance per class: not the parent's

    def _instrument(self, **kwargs: Any) -> None:
        for module in self._TO_WRAP:
            dbapi.wrap_connect(
                _SQLITE3_SCOPE,
                module,  # type: ignore[arg-type]  # the contrib annotates a module as a callable
                "connect",
                _DATABASE_SYSTEM,
                _CONNECTION_ATTRIBUTES,
                version=_SQLITE3_VERSION,
                tracer_provider=kwargs.get("tracer_provider"),
                db_api_integration_factory=_SQLiteIntegration,
            )


@dataclass(frozen=True)
class Client:
    """One database client library and the instrumentation tracekit turns on for it."""

    #: The name ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` uses (the instrumentation's entry point).
    name: str
    #: The client library's import name; nothing is done unless it is installed.
    library: str
    #: ``module:Class`` of the instrumentor.
    instrumentor: str
    #: Keyword arguments that keep statements sanitized.
    options: Mapping[str, Any] = field(default_factory=dict)


#: The database clients tracekit instruments when installed, in this order.
CLIENTS: tuple[Client, ...] = (
    Client("sqlite3", "sqlite3", "tracekit.tracing.databases:SQLiteInstrumentor"),
    Client("psycopg", "psycopg", "opentelemetry.instrumentation.psycopg:PsycopgInstrumentor",
           {"capture_parameters": False}),
    Client("psycopg2", "psycopg2", "opentelemetry.instrumentation.psycopg2:Psycopg2Instrumentor",
           {"capture_parameters": False}),
    Client("sqlalchemy", "sqlalchemy", "opentelemetry.instrumentation.sqlalchemy:SQLAlchemyInstrumentor"),
    Client("redis", "redis", "opentelemetry.instrumentation.redis:RedisInstrumentor"),
    Client("pymongo", "pymongo", "opentelemetry.instrumentation.pymongo:PymongoInstrumentor",
           {"capture_statement": False}),
)  # fmt: skip


def disabled_from_env(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    env = os.environ if environ is None else environ
    return frozenset(n.strip().lower() for n in (env.get(DISABLED_VAR) or "").split(",") if n.strip())


def _instrumentor(client: Client) -> Any:
    module, _, cls = client.instrumentor.partition(":")
    return getattr(importlib.import_module(module), cls)()


def _conflict(client: Client) -> Any:
    """The instrumentation's declared requirement the installed client misses, or None.

    Read from the instrumentation's package metadata, as ``opentelemetry-instrument`` does, before
    importing it: the import loads the client library (SQLAlchemy: seconds) only to find out it
    cannot instrument it.
    """
    for entry in importlib.metadata.entry_points(group="opentelemetry_instrumentor", name=client.name):
        if entry.dist is not None and entry.module.startswith("opentelemetry.instrumentation."):
            return get_dist_dependency_conflicts(entry.dist)
    return None


def _stock_sqlite3_active() -> bool:
    return bool(SQLite3Instrumentor().is_instrumented_by_opentelemetry)


def instrument(
    tracer_provider: Any, clients: Iterable[Client] = CLIENTS, environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Turn on the instrumentation of every installed, not disabled client; return the names turned on.

    Clients someone else instrumented already (``opentelemetry-instrument``) are left as they are.
    Never raises: a failing instrumentation costs one warning, not the app.
    """
    disabled = disabled_from_env(environ)
    done = []
    for client in clients:
        if client.name in disabled or importlib.util.find_spec(client.library) is None:
            continue
        if client.name == "sqlite3" and _stock_sqlite3_active():
            continue
        try:
            conflict = _conflict(client)
            if conflict is not None:  # e.g. a client release newer than the instrumentation supports
                log.info("tracekit: %s is not instrumented: %s", client.name, conflict)
                continue
            instrumentor = _instrumentor(client)
            if instrumentor.is_instrumented_by_opentelemetry:
                continue
            instrumentor.instrument(tracer_provider=tracer_provider, skip_dep_check=True, **client.options)
        except Exception as exc:  # ImportError without the db extra, a version conflict, a client bug
            log.warning("tracekit: cannot instrument %s: %s", client.name, exc)
            continue
        if instrumentor.is_instrumented_by_opentelemetry:
            done.append(client.name)
    return tuple(done)


def uninstrument(names: Iterable[str]) -> None:
    """Turn off what :func:`instrument` turned on (tests, re-configuration)."""
    by_name = {c.name: c for c in CLIENTS}
    for name in names:
        try:
            _instrumentor(by_name[name]).uninstrument()
        except Exception as exc:
            log.debug("tracekit: cannot uninstrument %s: %s", name, exc)


def upgrade_stock_sqlite3(tracer_provider: Any = None) -> bool:
    """Swap the stock sqlite3 instrumentation (zero-code path) for :class:`SQLiteInstrumentor`."""
    if not _stock_sqlite3_active() or "sqlite3" in disabled_from_env():
        return False
    SQLite3Instrumentor().uninstrument()
    SQLiteInstrumentor().instrument(tracer_provider=tracer_provider)
    return True
