"""Dynamic price feeds against a real HTTP server on loopback serving recorded answers: each
format fetched, the Tibber query and token sent, the last good prices cached on disk and read
back at start, and a failing feed keeps its table with a status that says why."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.energy.price_server import DATA, PriceServer, Route
from tests.fixtures.mosquitto import Broker, collector, running
from tests.fixtures.services import ServiceGroup, wait_online
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_energy.tariff.feed import FeedTariff, PriceFeed
from voltbus_energy.tariff.prices import FixedTariff

NOW = datetime(2026, 12, 3, 5, 10, tzinfo=UTC)
DAY = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)
H = timedelta(hours=1)


def feed(url: str, fmt: str, tmp_path: Path, **kw: object) -> PriceFeed:
    return PriceFeed(url, fmt, cache=tmp_path / "prices.json",  # type: ignore[arg-type]
                     clock=lambda: NOW, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fmt", "sample", "count"), [
    ("awattar", "awattar_2026-12-03.json", 24),
    ("energycharts", "energycharts_2026-12-03.json", 24),
    ("tibber", "tibber_priceinfo.json", 48),
    ("generic", "generic_prices.csv", 24),
])
async def test_each_format_over_http(price_server: PriceServer, tmp_path: Path, fmt: str,
                                     sample: str, count: int) -> None:
    prices = feed(price_server.serve(f"/{fmt}", sample), fmt, tmp_path, token="t0ken")
    assert await prices.refresh()
    assert len(prices.table) == count
    assert prices.status.startswith(f"ok: {count} prices until ")
    method, _, headers, body = price_server.requests[-1]
    assert headers["Authorization"] == "Bearer t0ken"
    if fmt == "tibber":  # GraphQL: the priceInfo query is POSTed
        assert method == "POST"
        assert "priceInfo" in json.loads(body)["query"]
    else:
        assert method == "GET"


async def test_factor_and_offset_make_the_end_price(price_server: PriceServer,
                                                    tmp_path: Path) -> None:
    """aWATTar's market price plus VAT (x1.2) and a grid fee (0.15/kWh)."""
    prices = feed(price_server.serve("/a", "awattar_2026-12-03.json"), "awattar", tmp_path,
                  factor=1.2, offset_per_kwh=0.15)
    await prices.refresh()
    assert prices.table[0].price_per_kwh == pytest.approx(0.09241 * 1.2 + 0.15)


async def test_a_failing_feed_keeps_the_last_prices_and_says_why(price_server: PriceServer,
                                                                 tmp_path: Path) -> None:
    url = price_server.serve("/p", "awattar_2026-12-03.json")
    prices = feed(url, "awattar", tmp_path)
    assert await prices.refresh()
    good = list(prices.table)
    for route, reason in [(Route(503, b"busy"), "HTTP 503"),
                          (Route(200, b"<html>maintenance</html>"), "not JSON"),
                          (Route(200, b'{"data": []}'), "no prices")]:
        price_server.routes["/p"] = route
        assert not await prices.refresh()
        assert prices.table == good
        assert prices.status.startswith(f"price feed failed ({reason}")
        assert "keeping 24 prices until 2026-12-03T23:00Z (fetched 2026-12-03T05:10Z)" \
            in prices.status
    price_server.routes["/p"] = Route(200, b"{}", delay_s=1.0)
    slow = feed(url, "awattar", tmp_path, timeout_s=0.2)
    assert not await slow.refresh()
    assert slow.status == "price feed failed (timeout); no prices"


async def test_cache_on_disk_is_read_at_start(price_server: PriceServer, tmp_path: Path) -> None:
    first = feed(price_server.serve("/t", "tibber_priceinfo.json"), "tibber", tmp_path)
    await first.refresh()
    cached = json.loads((tmp_path / "prices.json").read_text())
    assert len(cached["slots"]) == 48
    # a restart with the feed down: the cached prices, the failure said
    price_server.routes["/t"] = Route(500, b"")
    again = feed(price_server.url("/t"), "tibber", tmp_path)
    assert again.load_cache()
    assert again.table == first.table
    await again.refresh()
    assert again.table == first.table
    assert again.status.startswith("price feed failed (HTTP 500); keeping 48 prices")
    # an unreadable cache is ignored, not fatal
    (tmp_path / "prices.json").write_text("{broken")
    assert not feed(price_server.url("/t"), "tibber", tmp_path).load_cache()


async def test_a_newer_fetch_replaces_from_its_first_slot_and_keeps_the_hour_before(
        price_server: PriceServer, tmp_path: Path) -> None:
    prices = feed(price_server.serve("/g", "generic_prices.csv"), "generic", tmp_path)
    await prices.refresh()
    later = "start,end,price_per_kwh\n2026-12-03T05:00:00Z,2026-12-03T06:00:00Z,0.5\n"
    price_server.routes["/g"] = Route(200, later.encode(), "text/csv")
    await prices.refresh()
    assert [s.start for s in prices.table][-2:] == [DAY + 5 * H, DAY + 6 * H]
    assert prices.table[-1].price_per_kwh == 0.5
    assert len(prices.table) == 7  # 23:00..05:00 UTC kept, then the new slot


async def test_file_feed_and_co2_feed(tmp_path: Path) -> None:
    prices = feed(str(DATA / "awattar_2026-12-03.json"), "awattar", tmp_path)
    co2 = PriceFeed(str(DATA / "generic_co2.json"), "generic", cache=None, what="CO2 feed",
                    clock=lambda: NOW)
    assert await prices.refresh()
    assert await co2.refresh()
    tariff = FeedTariff(prices, co2=co2)
    slots = tariff.slots(DAY + 2 * H, DAY + 4 * H)
    assert [(s.price_per_kwh, s.co2_g_per_kwh) for s in slots] == [
        (pytest.approx(0.08502), 298), (pytest.approx(0.08397), 296)]
    assert tariff.status.startswith("ok: 24 prices")
    assert "; CO2 ok: 24 prices" in tariff.status
    missing = PriceFeed(str(tmp_path / "nope.csv"), "generic", cache=None)
    assert not await missing.refresh()
    assert missing.status == "price feed failed (file not found); no prices"
    fixed_with_co2 = FeedTariff(None, co2=co2, fallback=FixedTariff(0.3))
    assert fixed_with_co2.slots(DAY, DAY + H)[0].co2_g_per_kwh == 312


async def test_the_service_fetches_its_feed_caches_it_and_says_so_on_the_bus(
        price_server: PriceServer, mosquitto: Broker, services: ServiceGroup, station: str,
        tmp_path: Path) -> None:
    """`python -m voltbus_energy` with a Tibber feed (token from a file): energy/site's
    price_status, and the cache in $VOLTBUS_DATA_DIR/energy/prices.json."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    answer = {"data": {"viewer": {"homes": [{"currentSubscription": {"priceInfo": {
        "today": [{"total": 0.25 + i / 100, "startsAt": (hour + i * H).isoformat()}
                  for i in range(24)], "tomorrow": []}}}]}}}
    price_server.routes["/gql"] = Route(200, json.dumps(answer).encode())
    url = price_server.url("/gql")
    (tmp_path / "token").write_text("s3cret\n")
    site = f"S{station}"
    services.start("energy", {
        **mosquitto.env("energy"), "VOLTBUS_STATIONS": station, "VOLTBUS_ENERGY_SITE": site,
        "VOLTBUS_DATA_DIR": str(tmp_path / "data"), "VOLTBUS_ENERGY_TARIFF": "feed",
        "VOLTBUS_ENERGY_TARIFF_SOURCE": url, "VOLTBUS_ENERGY_TARIFF_FORMAT": "tibber",
        "VOLTBUS_ENERGY_TARIFF_TOKEN_FILE": str(tmp_path / "token")})
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    sites = collector(operator, ch.ENERGY_SITE, station=site)
    async with running(operator):
        await wait_online(mosquitto, site, ("energy",))

        async def ok() -> str:
            while True:
                msg = await sites.get()
                status = msg.payload.price_status if msg.payload else None
                if status and status.startswith("ok"):
                    return str(status)

        try:
            status = await asyncio.wait_for(ok(), 15)
        except TimeoutError:
            raise AssertionError(services.logs()) from None
    until = (hour + 24 * H).strftime("%Y-%m-%dT%H:%MZ")
    assert status.startswith(f"ok: 24 prices until {until}")
    method, _, headers, _ = price_server.requests[0]
    assert (method, headers["Authorization"]) == ("POST", "Bearer s3cret")
    cache = tmp_path / "data" / "energy" / "prices.json"
    for _ in range(50):  # written right after the table is taken (in a thread)
        if cache.exists():
            break
        await asyncio.sleep(0.1)
    assert len(json.loads(cache.read_text())["slots"]) == 24
