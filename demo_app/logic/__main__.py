"""``python -m demo_app.logic``: serve the shop API on ``SHOP_HOST``:``SHOP_PORT``.

Loopback unless ``SHOP_HOST`` says otherwise: the image sets ``SHOP_HOST=0.0.0.0`` because a pod must
answer on its pod IP (probes and the Service dial it); the local demo binds each replica on loopback.
"""

from __future__ import annotations

import os
import sys

from werkzeug.serving import make_server

from demo_app import telemetry
from demo_app.knobs import Knobs
from demo_app.logic.app import create_app


def main() -> int:
    host = os.environ.get("SHOP_HOST", "127.0.0.1")
    try:
        port = int(os.environ.get("SHOP_PORT", "8080"))
        knobs = Knobs.from_env()
    except ValueError as exc:
        print(f"shop: {exc}", file=sys.stderr)
        return 2
    telemetry.exit_on_sigterm()
    telemetry.quiet_werkzeug()
    app = create_app(knobs=knobs)
    telemetry.instrument_flask(app, service_name="shop")
    server = make_server(host, port, app, threaded=True, request_handler=telemetry.NoDelayHandler)
    print(f"shop: serving on http://{host}:{port}", file=sys.stderr, flush=True)
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
