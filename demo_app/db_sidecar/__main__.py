"""``python -m demo_app.db_sidecar``: serve the data service on ``DB_LISTEN`` over ``DB_PATH``."""

from __future__ import annotations

import os
import sys

from werkzeug.serving import make_server

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
    telemetry.exit_on_sigterm()
    telemetry.quiet_werkzeug()
    app = create_app(db_path, knobs)
    telemetry.instrument_flask(app, service_name="shop-db")
    server = make_server(
        host or "127.0.0.1", port_number, app, threaded=True, request_handler=telemetry.NoDelayHandler
    )
    print(f"db_sidecar: serving {db_path} on http://{listen}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        telemetry.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
