"""The energy manager's limit inside the station model (pure, fake clock): it holds while it is
refreshed, lapses to the fail-safe limit after the timeout or on its site's offline status, is
back at once with the next limit; a connector never limited never changes; 0 s turns it off,
0 A pauses; managed connectors restored after a restart lapse from the start."""

from __future__ import annotations

from datetime import timedelta

from tests.ocpp_gateway.test_model import FakeClock, build
from tests.ocpp_gateway.test_offpeak_model import charging_session, limits, news
from voltbus_common.enums import ConnectorStatus, LimitSource
from voltbus_ocpp.model.authorisation import Authoriser
from voltbus_ocpp.model.energy_limit import (
    LINK_DOWN_REASON,
    OFFLINE_REASON,
    EnergyGuard,
    EnergyLimit,
    EnergyManagerStatus,
    RememberEnergyManaged,
    SiteLinkChanged,
)
from voltbus_ocpp.model.events import LinkChanged, Tick
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.protocol.v16.config_store import ConfigStore


def guarded(guard: EnergyGuard) -> tuple[StationModel, FakeClock]:
    clock = FakeClock()
    cfg = ConfigStore(None, overrides={})
    model = StationModel(1, cfg, Authoriser(cfg, local_list={}, cache={}), max_current_a=16.0,
                         clock=clock, energy_guard=guard)
    model.startup()
    model.handle(LinkChanged(True))
    return model, clock


def test_the_limit_lapses_after_the_timeout_and_is_back_with_the_next() -> None:
    model, clock = build()
    charging_session(model)
    c = model.connectors[1]
    first = model.handle(EnergyLimit(1, 10.0, "S"))
    assert limits(first) == [10.0]
    assert [e.managed for e in first if isinstance(e, RememberEnergyManaged)] == [{1: "S"}]
    assert c.limit_source is LimitSource.ENERGY_MANAGER
    clock.advance(29)
    assert model.handle(Tick()) == []
    assert model.next_due(clock()) == clock() + timedelta(seconds=1)
    refreshed = model.handle(EnergyLimit(1, 10.0, "S"))  # the same limit again
    assert not any(isinstance(e, RememberEnergyManaged) for e in refreshed)
    clock.advance(30.5)
    lapsed = model.handle(Tick())
    assert limits(lapsed) == [6.0]
    assert c.facts.energy_fail_safe == "no energy manager limit for 30 s"
    assert (c.limit_source, c.effective_limit_a) == (LimitSource.ENERGY_FAIL_SAFE, 6.0)
    assert c.status is ConnectorStatus.CHARGING
    assert model.energy.next_due(model.connectors) is None  # no deadline while in fail-safe
    back = model.handle(EnergyLimit(1, 11.0, "S"))
    assert limits(back) == [11.0]
    assert c.facts.energy_fail_safe is None
    assert c.limit_source is LimitSource.ENERGY_MANAGER


def test_only_its_own_sites_offline_status_counts() -> None:
    model, _ = build()
    charging_session(model)
    c = model.connectors[1]
    model.handle(EnergyLimit(1, 10.0, "S"))
    assert model.handle(EnergyManagerStatus("other", False)) == []
    assert model.handle(EnergyManagerStatus("S", True)) == []
    lost = model.handle(EnergyManagerStatus("S", False))
    assert limits(lost) == [6.0]
    assert c.facts.energy_fail_safe == OFFLINE_REASON
    assert model.handle(EnergyManagerStatus("S", False)) == []  # already


def test_the_link_to_the_site_down_is_a_fail_safe_at_once() -> None:
    """The bridge's 0: every managed connector (whatever site its limits named) falls to the
    fail-safe at once, long before the timeout; the link's 1 changes nothing; the energy
    manager's next limit ends it. A connector never limited does not change; off (0 s) off."""
    model, clock = build()
    charging_session(model)
    c = model.connectors[1]
    model.handle(EnergyLimit(1, 10.0, "S"))
    assert model.handle(SiteLinkChanged(True)) == []
    clock.advance(1)
    lost = model.handle(SiteLinkChanged(False))
    assert limits(lost) == [6.0]
    assert c.facts.energy_fail_safe == LINK_DOWN_REASON
    assert (c.limit_source, c.effective_limit_a) == (LimitSource.ENERGY_FAIL_SAFE, 6.0)
    assert model.handle(SiteLinkChanged(False)) == []  # already
    assert model.handle(SiteLinkChanged(True)) == []  # up again: waits for the next limit
    assert c.facts.energy_fail_safe == LINK_DOWN_REASON
    back = model.handle(EnergyLimit(1, 11.0, "S"))
    assert limits(back) == [11.0]
    assert c.facts.energy_fail_safe is None
    # a paused connector stays paused (the fail-safe never raises a limit)
    model.handle(EnergyLimit(1, 0.0, "S"))
    model.handle(SiteLinkChanged(False))
    assert (c.facts.energy_fail_safe, c.effective_limit_a) == (LINK_DOWN_REASON, 0.0)

    never, _ = build()
    charging_session(never)
    assert never.handle(SiteLinkChanged(False)) == []
    assert never.connectors[1].facts.energy_fail_safe is None
    off, _ = guarded(EnergyGuard(timeout_s=0))
    charging_session(off)
    off.handle(EnergyLimit(1, 10.0, "S"))
    assert off.handle(SiteLinkChanged(False)) == []


def test_a_fail_safe_at_the_same_limit_is_still_told() -> None:
    """The last limit was 6 A: the fail-safe moves nothing at the EVSE, but the bus hears of
    it (and of its end)."""
    model, _ = build()
    charging_session(model)
    model.handle(EnergyLimit(1, 6.0, "S"))
    lost = model.handle(EnergyManagerStatus("S", False))
    assert limits(lost) == []
    assert [n.limit_a for n in news(lost)] == [6.0]
    assert model.connectors[1].limit_source is LimitSource.ENERGY_FAIL_SAFE
    back = model.handle(EnergyLimit(1, 6.0, "S"))
    assert [n.limit_a for n in news(back)] == [6.0]
    assert model.connectors[1].limit_source is LimitSource.ENERGY_MANAGER


def test_the_fail_safe_never_raises_a_lower_limit() -> None:
    """A connector the energy manager paused (0 A: its share went to others, maybe behind
    another bridge) stays paused when the energy manager is lost, not raised to the 6 A
    fail-safe."""
    model, _ = build()
    charging_session(model)
    c = model.connectors[1]
    assert limits(model.handle(EnergyLimit(1, 0.0, "S"))) == [0.0]
    assert c.status is ConnectorStatus.SUSPENDED_EVSE
    lost = model.handle(EnergyManagerStatus("S", False))
    assert limits(lost) == []
    assert [n.limit_a for n in news(lost)] == [0.0]  # told, at 0 A
    assert (c.limit_source, c.effective_limit_a, c.status) == (
        LimitSource.ENERGY_FAIL_SAFE, 0.0, ConnectorStatus.SUSPENDED_EVSE)
    assert limits(model.handle(EnergyLimit(1, 8.0, "S"))) == [8.0]  # back: its limit
    assert c.status is ConnectorStatus.CHARGING


def test_a_limit_without_a_site_lapses_by_the_timeout_only() -> None:
    model, clock = build()
    charging_session(model)
    model.handle(EnergyLimit(1, 10.0))
    assert model.handle(EnergyManagerStatus("S", False)) == []
    clock.advance(31)
    assert limits(model.handle(Tick())) == [6.0]


def test_a_connector_never_limited_never_changes() -> None:
    model, clock = build()
    charging_session(model)
    assert model.handle(EnergyManagerStatus("S", False)) == []
    clock.advance(3600)
    model.handle(Tick())
    c = model.connectors[1]
    assert (c.effective_limit_a, c.limit_source, c.facts.energy_fail_safe) == (
        16.0, LimitSource.HARDWARE, None)
    assert model.energy.next_due(model.connectors) is None


def test_off_and_pause() -> None:
    off, clock = guarded(EnergyGuard(timeout_s=0))
    charging_session(off)
    off.handle(EnergyLimit(1, 10.0, "S"))
    clock.advance(3600)
    assert off.handle(Tick()) == []
    assert off.handle(EnergyManagerStatus("S", False)) == []
    assert off.connectors[1].effective_limit_a == 10.0

    pause, _ = guarded(EnergyGuard(timeout_s=30, failsafe_a=0.0))
    charging_session(pause)
    pause.handle(EnergyLimit(1, 10.0, "S"))
    assert limits(pause.handle(EnergyManagerStatus("S", False))) == [0.0]
    assert pause.connectors[1].status is ConnectorStatus.SUSPENDED_EVSE


def test_managed_connectors_restored_lapse_from_the_start() -> None:
    """After a restart: the limit is unknown (not applied, not released) until the energy
    manager speaks; none within the timeout from the start, or its offline status: fail-safe."""
    model, clock = guarded(EnergyGuard(timeout_s=30))
    model.energy.restore(model.connectors, {1: "S", 7: "S"}, clock())  # 7: no such connector
    c = model.connectors[1]
    assert c.facts.energy_limit_a is None
    assert model.next_due(clock()) == clock() + timedelta(seconds=30)
    clock.advance(30)
    model.handle(Tick())
    assert (c.facts.energy_fail_safe, c.effective_limit_a) == (
        "no energy manager limit for 30 s", 6.0)

    again, _ = guarded(EnergyGuard(timeout_s=30))
    again.energy.restore(again.connectors, {1: "S"}, clock())
    again.handle(EnergyManagerStatus("S", False))  # the retained Will, at subscription
    assert again.connectors[1].facts.energy_fail_safe == OFFLINE_REASON
