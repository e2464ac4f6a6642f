"""Issue 10 §2: the AuthorizationKey a central system sets (ChangeConfiguration) is hexadecimal,
as the OCPP 1.6 security whitepaper says and SteVe sends it (certification test TC_085_CS): the
station decodes it and uses the bytes as its Basic-auth password, and refuses a value that is not
16 to 20 bytes of hex. Against the dev central system with Basic auth on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ocpp.v16 import call

from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig

OLD = "old-password-0123"  # 17 bytes


@pytest.fixture
async def auth_rig(mosquitto: Broker, station: str, tmp_path: Path) -> AsyncIterator[Rig]:
    server = Csms(auth_keys={station: OLD})
    server.behaviour.heartbeat_interval_s = 3600
    await server.start()
    rig = Rig(mosquitto, server, station, tmp_path / "data")
    await rig.start_buses()
    yield rig
    await rig.close()
    await server.stop()


@pytest.mark.parametrize("new", ["sixteen-bytes-pw", "twenty-bytes-pw-0123"])
async def test_hex_authorization_key_is_decoded_and_used(auth_rig: Rig, new: str) -> None:
    rig = auth_rig
    await rig.start_gateway(csms_auth_key=OLD)
    await rig.csms.wait_for(rig.id, "BootNotification")
    answer = await rig.csms.send(rig.id, call.ChangeConfiguration(
        key="AuthorizationKey", value=new.encode().hex().upper()))
    assert answer == {"status": "Accepted"}
    rig.csms.central.auth_keys[rig.id] = new  # the central system now expects the new one
    await rig.csms.central.disconnect(rig.id)
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)  # before: 401 for ever
    assert rig.csms.violations(rig.id) == []


@pytest.mark.parametrize("value", [
    "not-hex-at-all-but-long-enough",  # not hexadecimal (used verbatim before)
    "00" * 15,  # 15 bytes: too short
    "41" * 21,  # 21 bytes: too long
    "4" * 33,  # odd number of digits
    "ff" * 16,  # 16 bytes that are not a UTF-8 password
])
async def test_invalid_authorization_key_is_rejected_and_the_old_one_kept(
        auth_rig: Rig, value: str) -> None:
    rig = auth_rig
    await rig.start_gateway(csms_auth_key=OLD)
    await rig.csms.wait_for(rig.id, "BootNotification")
    answer = await rig.csms.send(rig.id, call.ChangeConfiguration(key="AuthorizationKey",
                                                                  value=value))
    assert answer == {"status": "Rejected"}
    await rig.csms.central.disconnect(rig.id)
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)  # still the old key
    assert rig.csms.violations(rig.id) == []


async def test_a_new_key_the_central_system_refuses_falls_back_to_the_old_one(
        auth_rig: Rig) -> None:
    """The central system sets a new key but still expects the old one (its UI saved the change
    half-way): the 401 with the new key makes the station connect with the old one, and it keeps
    using the old one (no 401 on every reconnect), across a restart too."""
    rig = auth_rig
    await rig.start_gateway(csms_auth_key=OLD)
    await rig.csms.wait_for(rig.id, "BootNotification")
    answer = await rig.csms.send(rig.id, call.ChangeConfiguration(
        key="AuthorizationKey", value=b"never-accepted-01".hex()))
    assert answer == {"status": "Accepted"}
    await rig.stop_gateway()  # the previous key is on disk, not only in memory
    await rig.start_gateway(csms_auth_key=OLD)
    await rig.csms.wait_for(rig.id, "BootNotification", count=2, timeout=8)
    await rig.csms.central.disconnect(rig.id)
    await rig.csms.wait_for(rig.id, "BootNotification", count=3, timeout=8)
    assert rig.gateway is not None
    assert rig.gateway.link.connects == 2  # the second connection came at the first try
    assert rig.csms.violations(rig.id) == []


async def test_a_key_set_by_the_central_system_replaces_the_environment_key(
        auth_rig: Rig) -> None:
    """Once the new key was accepted the old one is forgotten: the central system refusing the
    old one afterwards does not matter."""
    rig = auth_rig
    await rig.start_gateway(csms_auth_key=OLD)
    await rig.csms.wait_for(rig.id, "BootNotification")
    new = "accepted-key-0001"
    assert await rig.csms.send(rig.id, call.ChangeConfiguration(
        key="AuthorizationKey", value=new.encode().hex())) == {"status": "Accepted"}
    rig.csms.central.auth_keys[rig.id] = new
    await rig.csms.central.disconnect(rig.id)
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)
    assert rig.gateway is not None
    assert rig.gateway.link.rotation is not None
    assert rig.gateway.link.rotation.state == ""
    await rig.csms.central.disconnect(rig.id)
    await rig.csms.wait_for(rig.id, "BootNotification", count=3)
    assert rig.gateway.link.connects == 3


async def test_the_station_database_is_private(auth_rig: Rig) -> None:
    """It holds the AuthorizationKey: 0600, its WAL side files too."""
    rig = auth_rig
    await rig.start_gateway(csms_auth_key=OLD)
    await rig.csms.wait_for(rig.id, "BootNotification")
    assert rig.gateway is not None
    db = rig.gateway.settings.station_dir(rig.id) / "state.sqlite"
    files = [p for p in db.parent.iterdir() if p.name.startswith("state.sqlite")]
    assert db in files
    assert {p.name: p.stat().st_mode & 0o777 for p in files} == {p.name: 0o600 for p in files}
