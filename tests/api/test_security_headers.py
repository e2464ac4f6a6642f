"""Security headers on every response, a CSP the real pages run under, Secure cookies over TLS."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trustme
from playwright.async_api import async_playwright, expect

from tests.api.conftest import Peers, api_settings, eventually
from tests.api.served import served_api
from tests.api.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.fixtures.mosquitto import Broker
from voltbus_api.security_headers import CSP
from voltbus_common.devbroker import free_port

EXPECTED = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
# (method, path, status) across the page, the API, its errors and the docs
RESPONSES = [
    ("GET", "/", 200), ("GET", "/app.js", 200), ("GET", "/style.css", 200),
    ("GET", "/no-such-file", 404), ("GET", "/api/v1/health", 200),
    ("GET", "/api/v1/stations", 401), ("GET", "/api/v1/sessions?connector=0", 401),
    ("POST", "/api/v1/auth/login", 422), ("GET", "/api/v1/nope", 404),
    ("GET", "/api/docs", 200), ("GET", "/api/docs-assets/swagger-ui-bundle.js", 200),
    ("GET", "/api/v1/openapi.json", 200),
]


def initial_password(data_dir: Path) -> str:
    return (data_dir / "api" / "initial-admin-password").read_text().strip()


async def test_every_response_carries_the_security_headers(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    async with served_api(api_settings(mosquitto, station, tmp_path)) as api, \
            httpx.AsyncClient(base_url=api.url) as client:
        for method, path, status in RESPONSES:
            r = await client.request(method, path)
            assert r.status_code == status, (path, r.text[:200])
            for name, value in EXPECTED.items():
                assert r.headers.get(name) == value, (path, name, r.headers)
            assert (r.headers.get("cache-control") == "no-store") == path.startswith("/api/v1/")
        # The live stream too, and an admin answer.
        auth = {"Authorization": f"Bearer {api.token}"}
        async with client.stream("GET", "/api/v1/events", headers=auth) as r:
            assert r.status_code == 200
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["content-security-policy"] == CSP
        r = await client.get(f"/api/v1/stations/{station}", headers=auth)
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"


@pytest.fixture
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium")
    return CHROMIUM


@pytest.mark.parametrize("page_path", ["/", "/api/docs"])
async def test_the_pages_run_under_the_policy(chromium: str, mosquitto: Broker, peers: Peers,
                                              station: str, tmp_path: Path,
                                              page_path: str) -> None:
    """Chromium reports no CSP violation on the web page and the docs page, and both work.

    (Checked to fail: without `data:` in img-src Swagger UI's icons are reported.)
    """
    async with served_api(api_settings(mosquitto, station, tmp_path)) as api, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        await page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => console.error("
            "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI))")
        await page.goto(api.url + page_path)
        if page_path == "/":
            await page.fill("#login-password", initial_password(tmp_path))
            await page.click("#login-form button")
            await expect(page.locator("#who")).to_have_text("admin (admin)")
        else:
            await expect(page.locator(".swagger-ui .info .title")).to_contain_text("voltbus API")
            await page.locator(".opblock-summary").first.click()  # opens: styles still apply
        await asyncio.sleep(0.3)  # late reports (styles, images) arrive asynchronously
        await browser.close()
    assert violations == []


async def _login(client: httpx.AsyncClient, data_dir: Path) -> httpx.Response:
    r = await client.post("/api/v1/auth/login", json={"username": "admin",
                                                       "password": initial_password(data_dir)})
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize(("setting", "secure"), [(None, False), (True, True), (False, False)])
async def test_cookie_over_http_follows_the_setting(mosquitto: Broker, peers: Peers,
                                                    station: str, tmp_path: Path,
                                                    setting: bool | None, secure: bool) -> None:
    settings = api_settings(mosquitto, station, tmp_path, api_cookie_secure=setting)
    async with served_api(settings) as api, httpx.AsyncClient(base_url=api.url) as client:
        cookie = (await _login(client, tmp_path)).headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert ("Secure" in cookie) is secure


async def test_api_serves_tls_and_then_sets_secure_cookies(mosquitto: Broker, peers: Peers,
                                                           station: str, tmp_path: Path) -> None:
    """`python -m voltbus_api` with VOLTBUS_API_TLS_*: https only, cookie Secure by default."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "api.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "api.key"))
    port = free_port()
    data_dir = tmp_path / "var"
    env = {**os.environ, **mosquitto.env("api"), "VOLTBUS_STATIONS": station,
           "VOLTBUS_API_PORT": str(port), "VOLTBUS_DATA_DIR": str(data_dir),
           "VOLTBUS_API_TLS_CERT_FILE": str(tmp_path / "api.pem"),
           "VOLTBUS_API_TLS_KEY_FILE": str(tmp_path / "api.key")}
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(  # noqa: ASYNC220 (starting a process does not block)
            [sys.executable, "-m", "voltbus_api"], env=env, stdout=log_file, stderr=log_file)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    try:
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=context,
                                     timeout=5) as client:
            async def healthy() -> bool:
                try:
                    return (await client.get("/api/v1/health")).status_code == 200
                except httpx.TransportError:
                    assert proc.poll() is None, log_path.read_text()
                    return False

            await eventually(healthy, within_s=20)
            assert "Secure" in (await _login(client, data_dir)).headers["set-cookie"]
        probe = await asyncio.to_thread(  # compose's healthcheck speaks TLS too
            subprocess.run, [sys.executable, "-m", "voltbus_api.healthcheck", str(port)],
            env=env, capture_output=True, timeout=30, check=False)
        assert probe.returncode == 0, probe.stderr
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as plain:
            with pytest.raises(httpx.TransportError):
                await plain.get("/api/v1/health")
    finally:
        proc.terminate()
        proc.wait(10)


def test_tls_needs_both_files(tmp_path: Path) -> None:
    from voltbus_api.settings import ApiSettings

    with pytest.raises(ValueError, match="VOLTBUS_API_TLS_KEY_FILE"):
        ApiSettings(data_dir=tmp_path, api_tls_cert_file=tmp_path / "api.pem")
