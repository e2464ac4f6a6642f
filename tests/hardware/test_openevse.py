"""The OpenEVSE RAPI driver against a RAPI board on a pty: state, limit, enable, meter, faults."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.mosquitto import Broker
from tests.fixtures.rapi_peer import RapiBoard
from tests.hardware.helpers import rig
from voltbus_common import channels as ch
from voltbus_common.enums import ChargePointErrorCode, PilotState
from voltbus_common.models import CurrentLimitCommand, RelayCommand
from voltbus_hardware.config import parse_station
from voltbus_hardware.drivers.base import DeviceUnavailable
from voltbus_hardware.drivers.openevse_rapi import (
    OpenEvse,
    OpenEvseMeter,
    RapiLink,
    checksum,
    frame,
)
from voltbus_hardware.registry import build_station

P = PilotState


def board_evse(board: RapiBoard) -> OpenEvse:
    return OpenEvse(RapiLink(board.port, timeout_s=0.3))


def test_checksums_match_the_firmware_examples() -> None:
    assert frame("$FE") == b"$FE^27\r"  # from the RAPI documentation
    assert checksum("$GS") == "30"


@pytest.mark.parametrize(("state", "pilot", "code"), [
    (6, P.F, ChargePointErrorCode.GROUND_FAILURE),
    (7, P.F, ChargePointErrorCode.GROUND_FAILURE),
    (8, P.F, ChargePointErrorCode.POWER_SWITCH_FAILURE),
    (10, P.F, ChargePointErrorCode.HIGH_TEMPERATURE),
    (11, P.F, ChargePointErrorCode.OVER_CURRENT_FAILURE),
])
async def test_fault_states_map_to_pilot_and_error(rapi_board: RapiBoard, state: int,
                                                   pilot: PilotState,
                                                   code: ChargePointErrorCode) -> None:
    evse = board_evse(rapi_board)
    rapi_board.fault_state = state
    status = await evse.status()
    evse.close()
    assert (status.pilot, status.error) == (pilot, code)


async def test_states_enable_sleep_and_current_capacity(rapi_board: RapiBoard) -> None:
    evse = board_evse(rapi_board)
    assert (await evse.status()).pilot is P.A
    rapi_board.plug(True)
    await evse.set_enabled(False)
    assert (await evse.status()).pilot is P.B  # sleeping, EV connected
    await evse.set_enabled(True)
    assert (await evse.status()).pilot is P.C
    await evse.set_current_limit(10)
    assert rapi_board.capacity_a == 10
    assert "$SC 10 V" in rapi_board.commands
    await evse.set_current_limit(0)  # pause: the board sleeps
    assert not rapi_board.enabled
    assert (await evse.status()).pilot is P.B
    await evse.set_current_limit(16)
    assert rapi_board.enabled
    evse.close()


async def test_board_refusing_a_capacity_is_reported(rapi_board: RapiBoard) -> None:
    evse = board_evse(rapi_board)
    with pytest.raises(DeviceUnavailable, match=r"refused \$SC 40 V"):
        await evse.set_current_limit(40)
    evse.close()


async def test_meter_from_gg_and_gu(rapi_board: RapiBoard) -> None:
    evse = board_evse(rapi_board)
    rapi_board.milliamps, rapi_board.millivolts = 15_500, 231_000
    rapi_board.wattseconds, rapi_board.wh_total = 7200, 1_000_000
    reading = await OpenEvseMeter(evse).read()
    rapi_board.millivolts = -1  # firmware without VOLTMETER
    with pytest.raises(DeviceUnavailable, match="no ammeter/voltmeter"):
        await OpenEvseMeter(evse).read()
    evse.close()
    assert reading.current_a == [15.5]
    assert reading.voltage_v == [231.0]
    assert reading.power_w == pytest.approx(15.5 * 231)
    assert reading.energy_wh == 1_000_002.0


async def test_one_bad_checksum_is_retried(rapi_board: RapiBoard) -> None:
    evse = board_evse(rapi_board)
    rapi_board.bad_checksums_left = 1
    status = await evse.status()
    evse.close()
    assert status.pilot is P.A
    assert rapi_board.commands.count("$GS") == 2


async def test_persistent_bad_checksum_and_silence_raise(rapi_board: RapiBoard) -> None:
    evse = board_evse(rapi_board)
    rapi_board.fault = "bad_checksum"
    with pytest.raises(DeviceUnavailable, match="bad checksum"):
        await evse.status()
    rapi_board.fault = "silent"
    with pytest.raises(DeviceUnavailable, match="no answer"):
        await evse.status()
    rapi_board.fault = None
    assert (await evse.status()).pilot is P.A
    evse.close()


async def test_openevse_station_through_the_service(rapi_board: RapiBoard, mosquitto: Broker,
                                                    station: str) -> None:
    cfg = parse_station({"connectors": [{
        "max_current_a": 32,
        "evse": {"type": "openevse", "port": rapi_board.port, "timeout_s": 0.3},
        "relay": {"type": "evse"}, "meter": {"type": "evse"}}]})
    rapi_board.milliamps = 0
    async with rig(mosquitto, station, hardware=build_station(cfg, station)) as r:
        w = r.watches
        await w["pilot"].until(lambda m: m.payload.state is P.A)
        assert not rapi_board.enabled  # relay opened at start-up: the board sleeps
        rapi_board.plug(True)  # $AT wakes the controller
        await w["pilot"].until(lambda m: m.payload.state is P.B)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await w["relay"].until(lambda m: m.payload.closed)
        await w["pilot"].until(lambda m: m.payload.state is P.C)
        rapi_board.milliamps = 16_000
        reading = await w["meter"].until(lambda m: m.payload.current_a == [16.0])
        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=12), connector=1)
        async with asyncio.timeout(5):
            while rapi_board.capacity_a != 12:  # noqa: ASYNC110 (the board lives in a thread)
                await asyncio.sleep(0.02)
        rapi_board.fault_state = 6  # GFI trip
        rapi_board.announce()
        err = await w["error"].until(lambda m: m.payload.code != "NoError")
        await w["relay"].until(lambda m: not m.payload.closed)
        assert not rapi_board.enabled
        rapi_board.fault_state = None
        rapi_board.fault = "silent"  # the board stops answering
        gone = await w["error"].until(lambda m: m.payload.code == "InternalError")
        rapi_board.fault = None
        await w["error"].until(lambda m: m.payload.code == "NoError")
    assert reading.payload.voltage_v == [240.0]
    assert err.payload.code is ChargePointErrorCode.GROUND_FAILURE
    assert "no answer" in (gone.payload.info or "")
