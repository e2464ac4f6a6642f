"""Run the API service: `python -m voltbus_api` (uvicorn on VOLTBUS_API_HOST:VOLTBUS_API_PORT)."""

from __future__ import annotations

import signal

import uvicorn

from voltbus_api.app import create_app
from voltbus_api.settings import ApiSettings
from voltbus_common.runtime import setup_logging
from voltbus_common.settings import load_settings


def main() -> None:
    """Load settings, build the app, serve until SIGTERM/SIGINT (uvicorn shuts down cleanly)."""
    settings = load_settings(ApiSettings)
    setup_logging("api", settings.log_level)
    app = create_app(settings)
    # uvicorn re-raises the stop signal once it has shut down; with a no-op handler in place that
    # ends as a clean exit 0 instead of death by SIGTERM, which supervisors would count as a crash.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None,
                access_log=False, proxy_headers=False)


if __name__ == "__main__":
    main()
