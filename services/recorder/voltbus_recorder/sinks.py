"""Where points go: InfluxDB 1.x (`/write`, see http1.py) or 2.x/3.x (`influxdb-client`).

A sink answers every write with one Outcome: written, rejected (InfluxDB refused the data
itself: retrying the same bytes cannot help) or unavailable (network, auth, server trouble:
retry later). The writer decides what to do with each.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from voltbus_recorder.http1 import HttpError, http_client
from voltbus_recorder.settings import RecorderSettings

log = logging.getLogger(__name__)


class Result(Enum):
    """What became of a write."""

    WRITTEN = "written"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Outcome:
    """A write's result with InfluxDB's own words."""

    result: Result
    reason: str = ""


WRITTEN = Outcome(Result.WRITTEN)
# Answers that mean "this data is bad" rather than "try again later".
_REJECT_STATUS = frozenset({400, 413, 422})


def _classify(status: int, text: str) -> Outcome:
    if 200 <= status < 300:
        return WRITTEN
    reason = f"HTTP {status}: {text.strip()[:500]}"
    return Outcome(Result.REJECTED if status in _REJECT_STATUS else Result.UNAVAILABLE, reason)


class Sink(Protocol):
    """One InfluxDB API generation."""

    description: str

    async def write(self, body: bytes) -> Outcome:
        """Write newline-separated line protocol with nanosecond timestamps."""
        ...

    async def ping(self) -> str | None:
        """None if the server answers, else why not (says nothing about auth or database)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class InfluxV1Sink:
    """InfluxDB 1.x `/write` (also the 1.x compatibility API of 2.x and 3.x)."""

    def __init__(self, url: str, database: str, *, retention_policy: str | None = None,
                 username: str | None = None, password: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.description = f"InfluxDB 1.x API at {url}, database {database!r}"
        self._database = database
        self._params = {"db": database, "precision": "ns"}
        if retention_policy:
            self._params["rp"] = retention_policy
        self._client = http_client(url, username=username, password=password,
                                   timeout_s=timeout_s)
        self._tried_create = False

    async def write(self, body: bytes) -> Outcome:
        """POST /write; a missing database is created once (when the user may)."""
        try:
            response = await self._client.request("POST", "/write", self._params, body)
        except HttpError as exc:
            return Outcome(Result.UNAVAILABLE, str(exc))
        if (response.status == 404 and "database not found" in response.text
                and not self._tried_create):
            self._tried_create = True
            if await self._create_database():
                return await self.write(body)
        return _classify(response.status, response.text)

    async def _create_database(self) -> bool:
        """CREATE DATABASE (idempotent in InfluxDB); False if we may not or cannot."""
        try:
            response = await self._client.request(
                "POST", "/query", {"q": f'CREATE DATABASE "{self._database}"'})
        except HttpError as exc:
            log.warning("cannot create InfluxDB database %r: %s", self._database, exc)
            return False
        if not response.is_success or '"error"' in response.text:
            log.warning("cannot create InfluxDB database %r: HTTP %d %s", self._database,
                        response.status, response.text[:300])
            return False
        log.info("created InfluxDB database %r", self._database)
        return True

    async def ping(self) -> str | None:
        """GET /ping."""
        try:
            response = await self._client.request("GET", "/ping", {})
        except HttpError as exc:
            return str(exc)
        return None if response.is_success else f"ping: HTTP {response.status}"

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


class InfluxV2Sink:
    """InfluxDB 2.x / 3.x through `influxdb-client`'s synchronous write API, in a thread."""

    def __init__(self, url: str, *, org: str, bucket: str, token: str | None,
                 timeout_s: float = 10.0) -> None:
        # Imported here: only 2.x users pay for influxdb-client's imports.
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.description = f"InfluxDB 2.x API at {url}, org {org!r}, bucket {bucket!r}"
        self._org, self._bucket, self._url = org, bucket, url
        self._client = InfluxDBClient(url=url, token=token or "", org=org,
                                      timeout=int(timeout_s * 1000))
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def _write_blocking(self, body: bytes) -> Outcome:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._api.write(bucket=self._bucket, org=self._org, record=body,
                            write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except ApiException as exc:
            return _classify(int(exc.status or 0), str(exc.body or exc.reason or ""))
        except Exception as exc:  # urllib3 connection/timeouts: the server is not there
            return Outcome(Result.UNAVAILABLE, f"{type(exc).__name__}: {exc}")
        return WRITTEN

    async def write(self, body: bytes) -> Outcome:
        """Write through influxdb-client without blocking the event loop."""
        return await asyncio.to_thread(self._write_blocking, body)

    async def ping(self) -> str | None:
        """influxdb-client's ping (GET /ping)."""
        ok = await asyncio.to_thread(self._client.ping)
        return None if ok else f"no answer to ping at {self._url}"

    async def aclose(self) -> None:
        """Close the client's connection pool."""
        await asyncio.to_thread(self._client.close)


def build_sink(settings: RecorderSettings) -> Sink:
    """The sink VOLTBUS_INFLUX_API asks for."""
    if settings.influx_api >= 2:
        assert settings.influx_bucket is not None
        assert settings.influx_org is not None
        return InfluxV2Sink(settings.influx_url, org=settings.influx_org,
                            bucket=settings.influx_bucket, token=settings.influx_token_secret(),
                            timeout_s=settings.influx_timeout_s)
    return InfluxV1Sink(settings.influx_url, settings.influx_database,
                        retention_policy=settings.influx_retention_policy,
                        username=settings.influx_username,
                        password=settings.influx_password_secret(),
                        timeout_s=settings.influx_timeout_s)
