"""``python -m demo_app.db_sidecar``: serve the data service on ``DB_LISTEN`` over ``DB_PATH``."""

from __future__ import annotations

import os
import sys

from demo_app import telemetry
from demo_app.db_sidecar.app import create_app
from demo_app.knobs import Knobs


def main() -> int:
    listen = os.environ.get("DB_LISTEN", "127.0.0.1:9090")
    host, _, port = listen.rpartition(":")
    db_path = os.environ.get("DB_PATH", "/data/shop.db")
    try:
        knobs = Knobs.from_env()
        port_number = int(port)
    except ValueError as exc:
        print(f"db_sidecar: {exc}", file=sys.stderr)
        return 2
    return telemetry.serve(
        create_app(db_path, knobs),
        host or "127.0.0.1",
        port_number,
        service_name="shop-db",
        banner=f"db_sidecar: serving {db_path} on http://{listen}",
    )


if __name__ == "__main__":
    sys.exit(main())
