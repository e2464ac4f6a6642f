"""The fuse guard, pure: never more than the fuse per phase or the import cap (property test)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from voltbus_energy.fuse import Demand, Grid, Site, allocate, house_load

THREE = (0, 1, 2)


def test_equal_share_when_the_fuse_is_short() -> None:
    site = Site(fuse_a=25.0)
    house = Grid((5.0, 5.0, 5.0), 3450.0)
    limits = allocate(site, house, [Demand("a", THREE, 16.0), Demand("b", THREE, 16.0)])
    assert limits == {"a": 10.0, "b": 10.0}


def test_below_minimum_one_connector_pauses_and_the_other_charges() -> None:
    site = Site(fuse_a=25.0)
    house = Grid((15.0, 15.0, 15.0), 10350.0)
    limits = allocate(site, house, [Demand("a", THREE, 16.0), Demand("b", THREE, 16.0)])
    assert limits == {"a": 10.0, "b": 0.0}


def test_priority_is_served_first() -> None:
    site = Site(fuse_a=25.0)
    house = Grid((5.0, 5.0, 5.0), 3450.0)
    limits = allocate(site, house, [Demand("low", THREE, 16.0),
                                    Demand("high", THREE, 16.0, priority=5)])
    assert limits == {"high": 16.0, "low": 0.0}  # 4 A left is below 6 A: pause


def test_single_phase_and_three_phase_cars_share_a_phase_equally() -> None:
    site = Site(fuse_a=20.0)
    house = Grid((10.0, 2.0, 2.0), 3220.0)
    limits = allocate(site, house, [Demand("one", (1,), 16.0), Demand("three", THREE, 16.0)])
    assert limits == {"one": 9.0, "three": 9.0}  # phase 2 (18 A left) is shared equally


def test_import_cap_in_watts() -> None:
    site = Site(fuse_a=63.0, max_import_w=11000.0)
    house = Grid((5.0, 5.0, 5.0), 3450.0)
    limits = allocate(site, house, [Demand("a", THREE, 32.0)])
    assert limits["a"] == 10.9  # (11000 - 3450) / 690, rounded down


def test_house_over_the_fuse_pauses_every_car() -> None:
    limits = allocate(Site(fuse_a=25.0), Grid((30.0, 1.0, 1.0), 7000.0),
                      [Demand("a", THREE, 16.0), Demand("b", (1,), 16.0)])
    assert limits == {"a": 0.0, "b": 16.0}


def _phase_sum(limits: dict[str, float], demands: list[Demand], p: int) -> float:
    return sum(limits[d.key] for d in demands if p in d.phases)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cars=st.integers(1, 6),
       fuse=st.sampled_from([16.0, 25.0, 35.0, 63.0]),
       cap=st.one_of(st.none(), st.floats(3000.0, 40000.0)))
def test_fuse_never_exceeded_over_a_random_house_load_trace(seed: int, cars: int, fuse: float,
                                                            cap: float | None) -> None:
    """Thousands of steps of a random-walk house load; the cars draw up to their last limit
    (and sometimes less). Measured with the cars, the house plus every new limit fits the fuse
    on each phase and the import cap."""
    rng = random.Random(seed)
    site = Site(fuse_a=fuse, max_import_w=cap)
    demands = [Demand(f"c{i}", THREE if rng.random() < 0.6 else (rng.randrange(3),),
                      rng.choice([16.0, 32.0]), priority=rng.randrange(3)) for i in range(cars)]
    limits = {d.key: 0.0 for d in demands}
    house = [rng.uniform(0, fuse / 2) for _ in range(3)]
    for _ in range(2500):
        house = [min(fuse * 1.3, max(0.0, h + rng.gauss(0, 1.5))) for h in house]
        drawn = {d.key: tuple(limits[d.key] * rng.choice([1.0, 1.0, 0.7, 0.0])
                              if p in d.phases else 0.0 for p in range(3)) for d in demands}
        grid_a = [house[p] + sum(a[p] for a in drawn.values()) for p in range(3)]
        grid = Grid((grid_a[0], grid_a[1], grid_a[2]), sum(grid_a) * 230.0)
        limits = allocate(site, house_load(grid, drawn), demands)  # type: ignore[arg-type]
        for p in range(3):
            if house[p] <= fuse:
                assert house[p] + _phase_sum(limits, demands, p) <= fuse + 1e-6
            else:
                assert _phase_sum(limits, demands, p) == 0.0
        for d in demands:
            assert limits[d.key] == 0.0 or 6.0 <= limits[d.key] <= d.max_a
        if cap is not None and sum(house) * 230.0 <= cap:
            charge_w = sum(limits[d.key] * len(d.phases) * 230.0 for d in demands)
            assert sum(house) * 230.0 + charge_w <= cap + 1e-3
