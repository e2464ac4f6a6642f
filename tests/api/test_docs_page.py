"""/api/docs works offline: Swagger UI and its assets come from the API itself (no CDN), the page
has no inline script (it must survive a Content-Security-Policy of 'self'), in real Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Route, async_playwright, expect

from tests.api.conftest import api_settings
from tests.api.served import served_api
from tests.api.test_browser import CHROMIUM_ARGS, chromium  # noqa: F401 - the fixture
from tests.fixtures.mosquitto import Broker


async def test_the_docs_page_renders_with_only_local_assets(
        chromium: str, mosquitto: Broker, station: str, tmp_path: Path) -> None:  # noqa: F811
    async with served_api(api_settings(mosquitto, station, tmp_path)) as api, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        local, external = [], []

        async def only_local(route: Route) -> None:
            url = route.request.url
            if urlsplit(url).netloc == urlsplit(api.url).netloc:
                local.append(url)
                await route.continue_()
            else:  # as on a Pi without internet
                external.append(url)
                await route.abort()

        await page.route("**/*", only_local)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        answer = await page.goto(api.url + "/api/docs")
        assert answer is not None
        assert answer.status == 200
        html = await answer.text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script in the page"
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("voltbus API")
        await expect(page.locator(".opblock-summary-path", has_text="/api/v1/auth/login")
                     ).to_be_visible()
        await browser.close()
    assert external == []
    assert errors == []
    assert any(u.endswith("/api/docs-assets/swagger-ui-bundle.js") for u in local)
    assert any(u.endswith("/api/v1/openapi.json") for u in local)
