"""The OCPP version is chosen by what the station offers, in its order; a setting can force one."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.devcsms.station201 import station201
from tests.fixtures.csms import Csms
from voltbus_devcsms.central import CentralSystem


@pytest.mark.parametrize(("offered", "chosen"), [
    (["ocpp2.0.1"], "ocpp2.0.1"), (["ocpp1.6"], "ocpp1.6"),
    (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1"), (["ocpp1.6", "ocpp2.0.1"], "ocpp1.6"),
    (["ocpp2.1", "ocpp1.6"], "ocpp1.6"),
])
async def test_the_stations_preferred_version_is_chosen(csms: Csms, offered: list[str],
                                                        chosen: str) -> None:
    async with connect(f"{csms.url}/S1", subprotocols=offered) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == chosen
        session = await csms.wait_connected("S1")
        assert session.ocpp_version == chosen.removeprefix("ocpp")


async def test_a_station_offering_no_version_we_speak_is_refused(csms: Csms) -> None:
    for offered in (["ocpp2.1"], []):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{csms.url}/S1", subprotocols=offered):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 400
    assert csms.central.connections == {}


async def test_a_forced_version_refuses_the_other() -> None:
    central = CentralSystem(subprotocols=("ocpp1.6",))
    await central.start()
    try:
        with pytest.raises(InvalidStatus):
            async with station201(central.url, "S1"):
                pass
        async with station201(central.url, "S2", subprotocols=("ocpp2.0.1", "ocpp1.6")):
            session = await central.wait_connected("S2")
            assert session.ocpp_version == "1.6"
    finally:
        await central.stop()
    with pytest.raises(ValueError, match="subprotocols"):
        CentralSystem(subprotocols=("ocpp2.1",))
