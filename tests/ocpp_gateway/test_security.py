"""Security profiles 1 (Basic auth over ws), 2 (wss, server checked against a CA) and 3 (wss with a
client certificate), with certificates from trustme; the key never appears in the logs."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from ocpp.v16 import call

from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig

KEY = "s3cret-Key-0123456789"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *, client_certs: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if client_certs:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
async def make_rig(mosquitto: Broker, station: str,
                   tmp_path: Path) -> AsyncIterator[object]:
    made: list[tuple[Rig, Csms]] = []

    async def make(**csms_args: object) -> Rig:
        server = Csms(**csms_args)
        server.behaviour.heartbeat_interval_s = 3600
        await server.start()
        rig = Rig(mosquitto, server, station, tmp_path / "data")
        await rig.start_buses()
        made.append((rig, server))
        return rig

    yield make
    for rig, server in made:
        await rig.close()
        await server.stop()


async def test_profile_1_basic_auth(make_rig, caplog: pytest.LogCaptureFixture,
                                    tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG, logger="voltbus_ocpp")
    rig = await make_rig(auth_keys={})
    rig.csms.central.auth_keys[rig.id] = KEY
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    await rig.start_gateway(csms_auth_key_file=key_file)
    await rig.csms.wait_for(rig.id, "BootNotification")
    # The central system rotates the key: write-only, used from the next connection; sent
    # hexadecimal as the security whitepaper says (test_defects_auth_key.py has the rest).
    new_key = "another-Key-98765"
    answer = await rig.csms.send(rig.id, call.ChangeConfiguration(
        key="AuthorizationKey", value=new_key.encode().hex()))
    assert answer == {"status": "Accepted"}
    rig.csms.central.auth_keys[rig.id] = new_key
    await rig.csms.central.disconnect(rig.id)
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("voltbus_ocpp"))
    assert "AuthorizationKey" in ours  # the frames were logged...
    assert KEY not in ours  # ...without the key
    assert new_key not in ours
    assert new_key.encode().hex() not in ours


async def test_profile_1_wrong_key_is_refused(make_rig) -> None:
    rig = await make_rig(auth_keys={})
    rig.csms.central.auth_keys[rig.id] = KEY
    await rig.start_gateway(csms_auth_key="wrong-key-0000000000")
    await rig.wait("connection", lambda p: p.connected is False)
    await asyncio.sleep(0.3)
    assert rig.csms.received(rig.id) == []


async def test_profile_2_tls_with_ca_and_basic_auth(make_rig, ca: trustme.CA,
                                                    tmp_path: Path) -> None:
    rig = await make_rig(ssl_context=server_context(ca, client_certs=False), auth_keys={})
    rig.csms.central.auth_keys[rig.id] = KEY
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    assert rig.csms.url.startswith("wss://")
    await rig.start_gateway(csms_ca_file=ca_file, csms_auth_key=KEY)
    await rig.csms.wait_for(rig.id, "BootNotification")


async def test_profile_2_unknown_server_certificate_is_refused(make_rig) -> None:
    other = trustme.CA()
    rig = await make_rig(ssl_context=server_context(other, client_certs=False))
    await rig.start_gateway()  # system CAs only: the test CA is not trusted
    await rig.wait("connection", lambda p: p.connected is False)
    await asyncio.sleep(0.3)
    assert rig.csms.received(rig.id) == []


async def test_profile_3_client_certificate(make_rig, ca: trustme.CA, tmp_path: Path) -> None:
    rig = await make_rig(ssl_context=server_context(ca, client_certs=True))
    ca_file, client_file = tmp_path / "ca.pem", tmp_path / "client.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca.issue_cert(rig.id).private_key_and_cert_chain_pem.write_to_path(str(client_file))
    await rig.start_gateway(csms_ca_file=ca_file, csms_client_cert_file=client_file)
    await rig.csms.wait_for(rig.id, "BootNotification")


async def test_profile_3_without_client_certificate_is_refused(make_rig, ca: trustme.CA,
                                                               tmp_path: Path) -> None:
    rig = await make_rig(ssl_context=server_context(ca, client_certs=True))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    await rig.start_gateway(csms_ca_file=ca_file)
    await rig.wait("connection", lambda p: p.connected is False)
    await asyncio.sleep(0.3)
    assert rig.csms.received(rig.id) == []
