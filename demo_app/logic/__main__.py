"""``python -m demo_app.logic``: serve the shop API on ``SHOP_HOST``:``SHOP_PORT``.

Loopback unless ``SHOP_HOST`` says otherwise: the image sets ``SHOP_HOST=0.0.0.0`` because a pod must
answer on its pod IP (probes and the Service dial it); the local demo binds each replica on loopback.
"""

from __future__ import annotations

import os
import sys

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
    return telemetry.serve(
        create_app(knobs=knobs),
        host,
        port,
        service_name="shop",
        banner=f"shop: serving on http://{host}:{port}",
    )


if __name__ == "__main__":
    sys.exit(main())
