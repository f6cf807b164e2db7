"""A service's HTTP API as its composition root builds it (`<service>.main.build`, with the
middleware `contracts.runtime.Service` installs), served by uvicorn in this process —
without its relay and inbox, so that no broker is needed.

    python -m tests.support.serve_service <service> <port>

The environment names the store and the credentials, as for the real service.
"""

from __future__ import annotations

import importlib
import sys

import uvicorn

from contracts.runtime import Settings


def main() -> None:
    service, port = sys.argv[1], int(sys.argv[2])
    build = importlib.import_module(f"{service}.main").build
    built = build(Settings.from_env(service))
    uvicorn.run(built.api, host="127.0.0.1", port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
