"""API fuzz: schemathesis over the OpenAPI schema as nobody, a forger, a viewer, an admin.

Every operation of the served schema gets generated requests, valid (positive) and invalid
(negative), each sent four times over real HTTP to a real uvicorn: without a token, with a
forged one, with a viewer token and with an admin token. The API runs against the real broker
with a gateway peer that answers every command (so commands end in 200, not in a 504 for want
of a gateway) and with InfluxDB configured (the history routes' time arithmetic runs on that
path). It must answer:

- no 5xx to anyone, and no ERROR in the log (the tripwire in tests/conftest.py);
- 401 to a request without a token, or with a well-formed token never issued, on every
  operation but the open ones;
- 403 to a viewer on every admin operation.

Bounded for CI: VOLTBUS_FUZZ_EXAMPLES (default 8: 30-45 s) examples per operation and mode,
derandomised so a run is repeatable; raise it (and set VOLTBUS_FUZZ_SEED) for a longer hunt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from tests.api.conftest import Peers, api_settings, eventually
from tests.api.served import served_api
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker
from tests.fixtures.mosquitto import running as running_buses
from voltbus_api.auth_store import Role
from voltbus_api.context import ApiContext
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import ConnectorStatus
from voltbus_common.models import OcppConnectorStatus

EXAMPLES = int(os.environ.get("VOLTBUS_FUZZ_EXAMPLES", "8"))
SEED = os.environ.get("VOLTBUS_FUZZ_SEED")
OPEN = {("GET", "/api/v1/health"), ("POST", "/api/v1/auth/login"),
        ("GET", "/api/v1/auth/first-login")}
ADMIN_PREFIXES = ("/api/v1/users", "/api/v1/tokens")
FORGED = "vb_" + "A" * 43  # well-formed, never issued: as good as no token
STREAMS = {"/api/v1/events"}  # never ends: checked by test_event_stream_needs_a_token


def admin_only(method: str, path: str) -> bool:
    """Operations the API documents for the admin role (users, tokens and every command)."""
    return path.startswith(ADMIN_PREFIXES) or (method == "POST" and path.startswith(
        "/api/v1/stations/"))


@dataclass
class Fuzzed:
    """The served API, its station, and tokens kept valid while the admin fuzz revokes them."""

    url: str
    station: str
    ctx: ApiContext
    loop: asyncio.AbstractEventLoop
    tokens: dict[Role, str]

    def on_loop(self, fn: Any, *args: Any) -> Any:
        """Run fn on the server's loop (the auth store belongs to that thread)."""
        async def call() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(5)

    def ensure_tokens(self) -> None:
        """Mint a new token for a role whose token the fuzz revoked (DELETE /tokens/1, logout)."""
        for role, token in self.tokens.items():
            if self.on_loop(self.ctx.auth.authenticate, token) is None:
                _, self.tokens[role] = self.on_loop(self.ctx.auth.create_api_token,
                                                    f"fuzz-{role.value}", role)


@pytest.fixture(scope="module")
def fuzzed(mosquitto: Broker, influxdb: InfluxServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """The API served by uvicorn in a thread of its own, a gateway peer and a known connector."""
    station = f"F{uuid.uuid4().hex[:10]}"
    data_dir: Path = tmp_path_factory.mktemp("fuzz-api")
    settings = api_settings(mosquitto, station, data_dir, influx_url=influxdb.url,
                            influx_database=influxdb.create_database())
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future[Fuzzed] = concurrent.futures.Future()
    stop = asyncio.Event()

    async def serve() -> None:
        gateway = Bus(mosquitto.settings("gateway", stations=[station]), station=station,
                      service="gateway")
        hardware = Bus(mosquitto.settings("hardware", stations=[station]), station=station,
                       service="hardware")
        peers = Peers(gateway, hardware)
        gateway.on(ch.COMMAND, peers.answer)
        async with running_buses(gateway, hardware), served_api(settings) as served:
            gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(
                status=ConnectorStatus.AVAILABLE), connector=1)

            async def known() -> bool:
                return served.ctx.cache.connector(station, 1) is not None

            await eventually(known)
            _, viewer = served.ctx.auth.create_api_token("fuzz-viewer", Role.VIEWER)
            ready.set_result(Fuzzed(served.url, station, served.ctx, loop,
                                    {Role.ADMIN: served.token, Role.VIEWER: viewer}))
            await stop.wait()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported to the fixture instead of a silent thread
            if not ready.done():
                ready.set_exception(exc)
            raise
        finally:  # what the server left (live-stream getters) ends here, not in a closed loop
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:  # gather() of nothing looks for this thread's loop, which has none
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    thread = threading.Thread(target=run, name="fuzz-api", daemon=True)
    thread.start()
    try:
        yield ready.result(30)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def schema_for(f: Fuzzed) -> Any:
    """The served schema, with the fuzz station as the station example so requests reach it."""
    spec = httpx.get(f"{f.url}/api/v1/openapi.json").json()
    for op in (o for ops in spec["paths"].values() for o in ops.values()):
        for p in op.get("parameters", []):
            if p["name"] == "station":
                p["schema"]["examples"] = [f.station]
    config = SchemathesisConfig.from_dict({"generation": {"with-security-parameters": False}})
    return schemathesis.openapi.from_dict(spec, config=config)


def check(f: Fuzzed, session: requests.Session, case: Any, seen: dict[str, int]) -> None:
    """One generated request as each caller; the assertions of the module docstring."""
    method, path = case.operation.method.upper(), case.operation.path
    f.ensure_tokens()
    case.headers = {k: v for k, v in (case.headers or {}).items()
                    if k.lower() not in ("authorization", "cookie")}
    callers: list[tuple[str, str | None]] = [
        ("nobody", None), ("forger", FORGED), ("viewer", f.tokens[Role.VIEWER]),
        ("admin", f.tokens[Role.ADMIN])]
    for who, token in callers:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = case.call(base_url=f.url, session=session, headers=headers, timeout=15)
        seen["requests"] += 1
        where = f"{method} {r.request.url} as {who}"
        assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
        if who in ("nobody", "forger") and (method, path) not in OPEN:
            assert r.status_code == 401, f"auth bypass: {where}: {r.status_code} {r.text[:200]}"
        if who == "viewer" and admin_only(method, path):
            assert r.status_code == 403, f"auth bypass: {where}: {r.status_code} {r.text[:200]}"
        if who == "admin" and r.status_code < 300:
            seen["admin_2xx"] += 1


def test_api_fuzz_no_5xx_no_auth_bypass(fuzzed: Fuzzed) -> None:
    schema = schema_for(fuzzed)
    settings = hypothesis.settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=SEED is None,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
        print_blob=True)
    seen = {"requests": 0, "admin_2xx": 0, "operations": 0}
    started, took = time.monotonic(), {}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            op = result.ok()
            if op.path in STREAMS:
                continue
            seen["operations"] += 1
            op_started = time.monotonic()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                @settings
                @hypothesis.given(case=op.as_strategy(generation_mode=mode))
                def fuzz(case: Any) -> None:
                    check(fuzzed, session, case, seen)

                if SEED is not None:
                    fuzz = hypothesis.seed(int(SEED))(fuzz)
                try:
                    fuzz()
                except hypothesis.errors.Unsatisfiable:
                    # No invalid request exists (GET /health has no parameters).
                    assert mode is GenerationMode.NEGATIVE, op.path
            took[f"{op.method.upper()} {op.path}"] = time.monotonic() - op_started
    elapsed = time.monotonic() - started
    print(f"API fuzz: {seen['operations']} operations, {seen['requests']} requests, "
          f"{seen['admin_2xx']} admin successes, {elapsed:.1f} s; slowest: " + ", ".join(
              f"{k} {v:.1f} s" for k, v in sorted(took.items(), key=lambda kv: -kv[1])[:3]))
    assert seen["operations"] >= 25  # the whole schema, not an empty one
    assert seen["admin_2xx"] > seen["operations"]  # valid requests got through, not only 4xx


def test_event_stream_needs_a_token(fuzzed: Fuzzed) -> None:
    url = f"{fuzzed.url}/api/v1/events"
    assert httpx.get(url).status_code == 401
    fuzzed.ensure_tokens()
    with httpx.stream("GET", url, headers={
            "Authorization": f"Bearer {fuzzed.tokens[Role.VIEWER]}"}) as r:
        assert r.status_code == 200
        assert next(r.iter_lines()).startswith("event: snapshot")
