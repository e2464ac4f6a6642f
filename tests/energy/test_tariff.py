"""Tariffs and the planner, pure: each feed format parsed from a recorded sample, time-of-use
windows across midnight and DST, and plans that take the cheapest (or cleanest) slots."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from tests.energy.price_server import DATA
from voltbus_energy.plan import make_plan
from voltbus_energy.tariff.formats import (
    FeedFormatError,
    parse_awattar,
    parse_energycharts,
    parse_generic,
    parse_tibber,
)
from voltbus_energy.tariff.prices import FixedTariff, PriceSlot, cut, merge_co2
from voltbus_energy.tariff.tou import TouTariff, parse_windows, parse_zone

H = timedelta(hours=1)
DAY = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)  # 2026-12-03 00:00 CET


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_awattar_market_data_in_eur_per_kwh() -> None:
    slots = parse_awattar(sample("awattar_2026-12-03.json"))
    assert len(slots) == 24
    assert (slots[0].start, slots[0].end) == (DAY, DAY + H)
    assert slots[0].price_per_kwh == pytest.approx(0.09241)
    assert slots[17].price_per_kwh == pytest.approx(0.17148)  # the 17:00 CET peak
    assert all(a.end == b.start for a, b in itertools.pairwise(slots))


def test_energycharts_quarter_hours_last_until_the_next() -> None:
    slots = parse_energycharts(sample("energycharts_2026-12-03.json"))
    assert len(slots) == 24
    assert all(s.end - s.start == timedelta(minutes=15) for s in slots)
    assert slots[0].start == DAY
    assert slots[0].price_per_kwh == pytest.approx((92.41 - 1.5 * 1.7) / 1000)


def test_tibber_today_and_tomorrow_totals() -> None:
    slots = parse_tibber(sample("tibber_priceinfo.json"))
    assert len(slots) == 48
    assert slots[0].start == DAY  # "2026-12-03T00:00:00.000+01:00"
    assert slots[-1].end == DAY + 48 * H
    assert slots[6].price_per_kwh == pytest.approx(0.2486)  # the answer's "current"


def test_tibber_error_answer_is_reported() -> None:
    with pytest.raises(FeedFormatError, match="Tibber: Unauthorized"):
        parse_tibber(b'{"errors": [{"message": "Unauthorized"}], "data": null}')


def test_generic_csv_with_co2_and_json_co2_only() -> None:
    prices = parse_generic(sample("generic_prices.csv"))
    assert len(prices) == 24
    assert (prices[0].price_per_kwh, prices[0].co2_g_per_kwh) == (pytest.approx(0.2724), 312)
    co2 = parse_generic(sample("generic_co2.json"))
    assert co2[7].price_per_kwh is None
    assert co2[7].co2_g_per_kwh == 402
    assert co2[7].start == DAY + 7 * H


@pytest.mark.parametrize(("raw", "message"), [
    (b"start,end,price_per_kwh\n2026-12-03T00:00Z,2026-12-03T01:00Z,abc\n", "not a number"),
    (b"start,price\n1,2\n", "header"),
    (b'{"data": [{"start_timestamp": 1}]}', "needs start_timestamp"),
    (b"[]", "no prices"),
    (b"<html>", "header"),
    (b'[{"start": "2026-12-03T02:00:00Z", "end": "2026-12-03T01:00:00Z", "price": 1}]',
     "ends before it starts"),
])
def test_bad_answers_say_what_is_wrong(raw: bytes, message: str) -> None:
    parser = parse_awattar if b"start_timestamp" in raw else parse_generic
    with pytest.raises(FeedFormatError, match=message):
        parser(raw)


def test_cut_fills_gaps_and_merge_adds_co2() -> None:
    table = [PriceSlot(DAY, DAY + H, 0.1), PriceSlot(DAY + 2 * H, DAY + 3 * H, 0.3)]
    pieces = cut(table, DAY + H / 2, DAY + 4 * H)
    assert [(s.start, s.end, s.price_per_kwh) for s in pieces] == [
        (DAY + H / 2, DAY + H, 0.1), (DAY + H, DAY + 2 * H, None),
        (DAY + 2 * H, DAY + 3 * H, 0.3), (DAY + 3 * H, DAY + 4 * H, None)]
    merged = merge_co2(table[:1], [PriceSlot(DAY + H / 2, DAY + 2 * H, None, 250.0)])
    assert [(s.end, s.co2_g_per_kwh) for s in merged] == [(DAY + H / 2, None), (DAY + H, 250.0)]


def test_time_of_use_across_midnight_in_local_time() -> None:
    tou = TouTariff(parse_windows("mon-fri 22:00-06:00=0.20; sat,sun 00:00-24:00=0.22"),
                    base_price_per_kwh=0.35, zone=parse_zone("Europe/Vienna"))
    thu = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # Thursday 13:00 in Vienna
    slots = tou.slots(thu, thu + 12 * H)
    assert sum(s.hours for s in slots) == pytest.approx(12)
    by_local_hour = {s.start.astimezone(tou.zone).hour: s.price_per_kwh for s in slots}
    assert by_local_hour[13] == 0.35
    assert by_local_hour[21] == 0.35
    assert by_local_hour[22] == 0.20
    assert by_local_hour[0] == 0.20  # Friday 00:00, still Thursday's window
    assert tou.price(datetime(2026, 12, 5, 11, tzinfo=UTC)) == 0.22  # Saturday
    # Monday 05:00: Sunday has no evening window and Monday's starts at 22:00
    assert tou.price(datetime(2026, 12, 7, 4, tzinfo=UTC)) == 0.35
    # Saturday 05:00: Friday's 22:00-06:00 (listed first) wins over the weekend price
    assert tou.price(datetime(2026, 12, 5, 4, tzinfo=UTC)) == 0.20


def test_time_of_use_window_edges_on_a_dst_day() -> None:
    """On the spring-forward day (Europe/Vienna, 2027-03-28) a 01:00-05:00 window lasts 3 h."""
    tou = TouTariff(parse_windows("daily 01:00-05:00=0.10"), base_price_per_kwh=0.30,
                    zone=parse_zone("Europe/Vienna"))
    start = datetime(2027, 3, 27, 23, 0, tzinfo=UTC)  # 00:00 CET
    cheap = [s for s in tou.slots(start, start + 24 * H) if s.price_per_kwh == 0.10]
    assert sum(s.hours for s in cheap) == pytest.approx(3)


@pytest.mark.parametrize(("text", "message"), [
    ("mon-fri 23:00-07:00", "expected 'mon-fri"),
    ("mon-fri 23:00=0.2", "HH:MM-HH:MM"),
    ("someday 01:00-02:00=0.2", "not a weekday"),
    ("daily 25:00-02:00=0.2", "not a time"),
    ("daily 01:00-02:00=cheap", "not a price"),
])
def test_bad_windows(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_windows(text)


def test_plan_takes_the_cheapest_hours_and_shortens_the_last() -> None:
    table = parse_awattar(sample("awattar_2026-12-03.json"))
    now = DAY + 20 * H + 15 * timedelta(minutes=1)  # Thursday 21:15 CET (prices till 24:00)
    plan = make_plan(table, now=now, departure=DAY + 24 * H, energy_wh=15000, power_w=11040)
    # 21:15-22:00 at 0.11825, 22-23 0.10466, 23-24 0.09713: 0.75 h + 1 h + 1 h = 30.4 kWh free
    # cheapest first: 23-24 (11.04 kWh), then 22-23 for the 3.96 kWh left
    assert [(s.start, round(s.energy_wh)) for s in plan.slots] == [
        (DAY + 22 * H, 3960), (DAY + 23 * H, 11040)]
    assert plan.slots[0].end - plan.slots[0].start == timedelta(seconds=3960 / 11040 * 3600)
    assert plan.missing_wh == 0
    assert plan.cost == pytest.approx(3.96 * 0.10466 + 11.04 * 0.09713)
    assert plan.active(DAY + 22 * H + 5 * timedelta(minutes=1))
    assert not plan.active(now)


def test_plan_for_lowest_co2_and_when_time_runs_short() -> None:
    table = parse_generic(sample("generic_prices.csv"))
    plan = make_plan(table, now=DAY, departure=DAY + 24 * H, energy_wh=2 * 3680, power_w=3680,
                     objective="co2")
    assert [s.co2_g_per_kwh for s in plan.slots] == [296, 297]  # 03:00 and 13:00 CET
    assert plan.co2_g == pytest.approx(3.68 * (296 + 297))
    short = make_plan(table, now=DAY, departure=DAY + 2 * H, energy_wh=10000, power_w=3680)
    assert short.missing_wh == pytest.approx(10000 - 2 * 3680)


def test_plan_uses_unknown_prices_only_when_it_must() -> None:
    table = [PriceSlot(DAY, DAY + H, 0.40)]
    slots = FixedTariff(0.3).slots(DAY, DAY + H)
    assert [s.price_per_kwh for s in slots] == [0.3]
    plan = make_plan(cut(table, DAY, DAY + 3 * H), now=DAY, departure=DAY + 3 * H,
                     energy_wh=1000, power_w=1000)
    assert [s.price_per_kwh for s in plan.slots] == [0.40]
    plan = make_plan(cut(table, DAY, DAY + 3 * H), now=DAY, departure=DAY + 3 * H,
                     energy_wh=1500, power_w=1000)
    assert [s.price_per_kwh for s in plan.slots] == [0.40, None]
    assert plan.cost is None
