"""Authentication: first-start admin password, login, roles, API tokens, rate limit."""

from __future__ import annotations

import logging
import sqlite3
import stat
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Peers, api_settings, running_api
from tests.fixtures.mosquitto import Broker
from voltbus_api.app import create_app
from voltbus_api.context import ApiContext
from voltbus_api.ratelimit import client_key

API = tuple[httpx.AsyncClient, ApiContext]


def initial_password(tmp_path: Path) -> str:
    return (tmp_path / "api" / "initial-admin-password").read_text().strip()


async def login(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"username": user, "password": password},
                             headers={"Authorization": ""})


async def test_first_start_generates_admin_password_file_and_logs_only_its_path(
        mosquitto: Broker, station: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_api(api_settings(mosquitto, station, tmp_path), as_admin=False) as (c, _):
        path = tmp_path / "api" / "initial-admin-password"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        password = initial_password(tmp_path)
        assert len(password) >= 16
        assert str(path) in caplog.text
        assert password not in caplog.text
        r = await login(c, "admin", password)
        assert r.status_code == 200
        assert r.json()["role"] == "admin"
    # The hash is argon2, never the password.
    db = sqlite3.connect(tmp_path / "api" / "auth.sqlite")
    [(hashed,)] = db.execute("SELECT password_hash FROM users WHERE username='admin'").fetchall()
    assert hashed.startswith("$argon2id$")
    assert password not in hashed
    # A second start keeps the same admin and does not generate a new password.
    async with running_api(api_settings(mosquitto, station, tmp_path), as_admin=False) as (c, _):
        assert initial_password(tmp_path) == password
        assert (await login(c, "admin", password)).status_code == 200


async def test_everything_but_health_needs_a_token(mosquitto: Broker, station: str,
                                                   tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path), as_admin=False) as (c, _):
        assert (await c.get("/api/v1/health")).status_code == 200
        for method, path in [("GET", "/api/v1/stations"),
                             ("GET", f"/api/v1/stations/{station}/connectors"),
                             ("POST", f"/api/v1/stations/{station}/connectors/1/stop"),
                             ("GET", "/api/v1/users"), ("GET", "/api/v1/auth/me")]:
            r = await c.request(method, path)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"] == "Bearer"
            assert "not authenticated" in r.json()["detail"]
        r = await c.get("/api/v1/stations", headers={"Authorization": "Bearer vb_forged"})
        assert r.status_code == 401
        assert r.json()["detail"] == "the token or session is invalid or has expired"


async def test_session_cookie_and_bearer_both_work_and_logout_ends_it(
        mosquitto: Broker, station: str, tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path), as_admin=False) as (c, _):
        r = await login(c, "admin", initial_password(tmp_path))
        token = r.json()["token"]
        assert "httponly" in r.headers["set-cookie"].lower()
        assert "samesite=strict" in r.headers["set-cookie"].lower()
        # The cookie jar now holds the session.
        assert (await c.get("/api/v1/auth/me")).json() == {"name": "admin", "role": "admin",
                                                           "kind": "session"}
        c.cookies.clear()
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await c.get("/api/v1/stations", headers=bearer)).status_code == 200
        assert (await c.post("/api/v1/auth/logout", headers=bearer)).status_code == 204
        assert (await c.get("/api/v1/stations", headers=bearer)).status_code == 401


async def test_roles_viewer_reads_admin_commands(api: API, peers: Peers, station: str) -> None:
    client, _ = api
    r = await client.post("/api/v1/users", json={"username": "anna",
                                                 "password": "correct horse battery"})
    assert r.status_code == 201
    assert r.json() == {"username": "anna", "role": "viewer"}
    assert (await client.post("/api/v1/users", json={
        "username": "anna", "password": "another password"})).status_code == 409
    r = await login(client, "anna", "correct horse battery")
    viewer = {"Authorization": f"Bearer {r.json()['token']}"}
    client.cookies.clear()
    assert (await client.get("/api/v1/stations", headers=viewer)).status_code == 200
    r = await client.post(f"/api/v1/stations/{station}/connectors/1/stop", headers=viewer)
    assert r.status_code == 403
    assert r.json()["detail"] == "'anna' has the role 'viewer'; this needs 'admin'"
    assert (await client.get("/api/v1/users", headers=viewer)).status_code == 403
    assert peers.commands == []


async def test_api_tokens_create_use_revoke(api: API) -> None:
    client, _ = api
    r = await client.post("/api/v1/tokens", json={"name": "grafana", "role": "viewer"})
    assert r.status_code == 201
    made = r.json()
    assert made["token"].startswith("vb_")
    listed = (await client.get("/api/v1/tokens")).json()
    assert {t["name"] for t in listed} >= {"grafana"}
    assert all(t["token"] is None for t in listed)
    script = {"Authorization": f"Bearer {made['token']}"}
    me = (await client.get("/api/v1/auth/me", headers=script)).json()
    assert me == {"name": "grafana", "role": "viewer", "kind": "api"}
    assert (await client.delete(f"/api/v1/tokens/{made['id']}")).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=script)).status_code == 401


async def test_provisioned_admin_token_file(mosquitto: Broker, station: str,
                                            tmp_path: Path) -> None:
    token_file = tmp_path / "given-token"
    token_file.write_text("vb_a-token-a-script-chose-1234567\n")
    settings = api_settings(mosquitto, station, tmp_path, api_admin_token_file=token_file)
    async with running_api(settings) as (c, _):
        me = (await c.get("/api/v1/auth/me")).json()
        assert me["role"] == "admin"
        assert me["kind"] == "api"
    generated = tmp_path / "new" / "token"
    settings = api_settings(mosquitto, station, tmp_path, api_admin_token_file=generated)
    async with running_api(settings) as (c, _):
        assert stat.S_IMODE(generated.stat().st_mode) == 0o600
        assert (await c.get("/api/v1/auth/me")).json()["role"] == "admin"


async def test_login_is_rate_limited_per_address_with_back_off(
        mosquitto: Broker, station: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five wrong passwords for admin from one address must not lock the real admin out."""
    settings = api_settings(mosquitto, station, tmp_path, api_login_max_failures=3)
    app = create_app(settings)
    async with running_api(settings, as_admin=False, app=app) as (attacker, _):
        for _ in range(3):
            r = await login(attacker, "admin", "guess")
            assert r.status_code == 401
            assert r.json()["detail"] == "wrong user name or password"
        r = await login(attacker, "admin", initial_password(tmp_path))
        assert r.status_code == 429
        first_wait = int(r.headers["retry-after"])
        assert first_wait > 0
        assert "too many failed logins from this address" in r.json()["detail"]
        assert (await login(attacker, "bob", "x")).status_code == 429  # any name, same address

        # The real admin, from another address, logs in at once.
        elsewhere = httpx.AsyncClient(transport=httpx.ASGITransport(
            app=app, client=("192.0.2.10", 50000)), base_url="http://test")
        async with elsewhere:
            r = await login(elsewhere, "admin", initial_password(tmp_path))
            assert r.status_code == 200, r.text

        # The attacker's block ends, and each further failure doubles it.
        clock = [time.monotonic()]
        monkeypatch.setattr("voltbus_api.ratelimit.time.monotonic", lambda: clock[0])
        clock[0] += first_wait + 1
        assert (await login(attacker, "admin", "guess")).status_code == 401
        r = await login(attacker, "admin", "guess")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 2 * first_wait - 1


def test_ipv6_clients_are_counted_per_64() -> None:
    assert client_key("2001:db8:1:2::5") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::5") != client_key("2001:db8:1:3::5")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("192.0.2.1") == "192.0.2.1"
    assert client_key(None) == "?"


async def test_bad_login_bodies_are_422(mosquitto: Broker, station: str, tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path), as_admin=False) as (c, _):
        r = await c.post("/api/v1/auth/login", json={"username": "admin"})
        assert r.status_code == 422
        assert "password: Field required" in r.json()["detail"]


async def test_change_own_password(mosquitto: Broker, station: str, tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path), as_admin=False) as (c, _):
        old = initial_password(tmp_path)
        other = {"Authorization": "Bearer " + (await login(c, "admin", old)).json()["token"]}
        token = (await login(c, "admin", old)).json()["token"]
        c.cookies.clear()
        h = {"Authorization": f"Bearer {token}"}
        r = await c.put("/api/v1/auth/password", headers=h,
                        json={"current_password": "wrong", "new_password": "a much better one"})
        assert r.status_code == 403
        r = await c.put("/api/v1/auth/password", headers=h,
                        json={"current_password": old, "new_password": "short"})
        assert r.status_code == 422
        assert "new_password" in r.json()["detail"]
        r = await c.put("/api/v1/auth/password", headers=h,
                        json={"current_password": old, "new_password": "a much better one"})
        assert r.status_code == 204
        # The session that changed it stays logged in (the page goes on); the other one ends.
        assert (await c.get("/api/v1/auth/me", headers=h)).status_code == 200
        assert (await c.get("/api/v1/auth/me", headers=other)).status_code == 401
        assert (await login(c, "admin", old)).status_code == 401
        assert (await login(c, "admin", "a much better one")).status_code == 200
        # The generated password is gone, so is its file and the login page's hint.
        assert not (tmp_path / "api" / "initial-admin-password").exists()
        assert (await c.get("/api/v1/auth/first-login")).json() == {
            "initial_password_file": None}


async def test_the_login_hint_names_the_real_password_file(mosquitto: Broker, station: str,
                                                           tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path), as_admin=False) as (c, _):
        r = await c.get("/api/v1/auth/first-login")  # open: the login page has no token yet
        assert r.status_code == 200
        assert r.json()["initial_password_file"] == str(
            (tmp_path / "api" / "initial-admin-password").resolve())


async def test_admin_manages_users_and_roles_a_viewer_cannot(
        mosquitto: Broker, station: str, tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path), as_admin=False) as (c, _):
        admin = {"Authorization": "Bearer " + (await login(
            c, "admin", initial_password(tmp_path))).json()["token"]}
        c.cookies.clear()
        r = await c.post("/api/v1/users", headers=admin,
                         json={"username": "vera", "password": "viewer password"})
        assert r.status_code == 201
        assert r.json() == {"username": "vera", "role": "viewer"}
        r = await c.post("/api/v1/users", headers=admin,
                         json={"username": "vera", "password": "another password"})
        assert r.status_code == 409
        users = (await c.get("/api/v1/users", headers=admin)).json()
        assert users == [{"username": "admin", "role": "admin"},
                         {"username": "vera", "role": "viewer"}]
        vera = {"Authorization": "Bearer " + (await login(
            c, "vera", "viewer password")).json()["token"]}
        c.cookies.clear()
        for method, path, body in [
                ("GET", "/api/v1/users", None),
                ("POST", "/api/v1/users", {"username": "x", "password": "0123456789"}),
                ("PUT", "/api/v1/users/vera/role", {"role": "admin"}),
                ("DELETE", "/api/v1/users/admin", None)]:
            r = await c.request(method, path, headers=vera, json=body)
            assert r.status_code == 403, (method, path)
        # A viewer changes her own password.
        r = await c.put("/api/v1/auth/password", headers=vera, json={
            "current_password": "viewer password", "new_password": "vera's own password"})
        assert r.status_code == 204
        # The last admin can neither be demoted nor deleted; nor can one change one's own role.
        r = await c.put("/api/v1/users/admin/role", headers=admin, json={"role": "viewer"})
        assert r.status_code == 409
        r = await c.put("/api/v1/users/vera/role", headers=admin, json={"role": "owner"})
        assert r.status_code == 422
        r = await c.put("/api/v1/users/nobody/role", headers=admin, json={"role": "admin"})
        assert r.status_code == 404
        r = await c.put("/api/v1/users/vera/role", headers=admin, json={"role": "admin"})
        assert r.json() == {"username": "vera", "role": "admin"}
        vera = {"Authorization": "Bearer " + (await login(
            c, "vera", "vera's own password")).json()["token"]}
        c.cookies.clear()
        assert (await c.get("/api/v1/auth/me", headers=vera)).json()["role"] == "admin"
        # Two admins now: vera may delete admin, never herself.
        assert (await c.delete("/api/v1/users/vera", headers=vera)).status_code == 409
        assert (await c.delete("/api/v1/users/admin", headers=vera)).status_code == 204
        assert (await c.delete("/api/v1/users/admin", headers=vera)).status_code == 404
        assert (await c.get("/api/v1/auth/me", headers=admin)).status_code == 401


async def test_container_admin_is_off_by_default_and_admin_only_when_on(
        mosquitto: Broker, station: str, tmp_path: Path) -> None:
    from voltbus_api.app import create_app
    from voltbus_api.docker_admin import DockerAdmin

    async with running_api(api_settings(mosquitto, station, tmp_path)) as (c, _):
        assert (await c.get("/api/v1/admin/containers")).status_code == 404
    settings = api_settings(mosquitto, station, tmp_path)
    app = create_app(settings, docker_admin=DockerAdmin(url="unix:///nonexistent.sock",
                                                        project="voltbus"))
    assert "/api/v1/admin/containers" in app.openapi()["paths"]
    async with running_api(settings, app=app) as (c, _):
        r = await c.post("/api/v1/users", json={"username": "vera", "password": "viewer password"})
        assert r.status_code == 201
        token = (await login(c, "vera", "viewer password")).json()["token"]
        c.cookies.clear()
        r = await c.get("/api/v1/admin/containers", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403
        r = await c.post("/api/v1/admin/containers/gateway/restart",
                         headers={"Authorization": ""})
        assert r.status_code == 401
