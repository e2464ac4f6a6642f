"""Run the API service: `python -m voltbus_api` (uvicorn on VOLTBUS_API_HOST:VOLTBUS_API_PORT)."""

from __future__ import annotations

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
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None,
                access_log=False, proxy_headers=False)


if __name__ == "__main__":
    main()
