"""Issue 14: frames are logged at DEBUG (not INFO), secrets never reach a log, and the message
history is bounded while the counts stay exact."""

from __future__ import annotations

import asyncio
import base64
import logging

import httpx
import pytest
from ocpp.v16 import call as v16_call
from ocpp.v201 import call
from websockets.asyncio.client import connect

from tests.devcsms.station201 import station201
from tests.devcsms.test_strict16 import station16
from tests.fixtures.csms import Csms
from voltbus_devcsms.central import CentralSystem
from voltbus_devcsms.logs import MASK, redact
from voltbus_devcsms.server import DevCsms

SECRET = "0123456789abcdef-very-secret"


def text_of(caplog: pytest.LogCaptureFixture) -> str:
    """What the central system's side logged (the test stations log their own frames)."""
    return "\n".join(r.getMessage() for r in caplog.records
                     if r.name.startswith(("voltbus_devcsms", "websockets.server")))


async def test_frames_are_not_logged_at_info(csms: Csms, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with station201(csms.url, "S1") as st:
        await st.boot()
    frames = [r for r in caplog.records if r.name.startswith("voltbus_devcsms")
              and "BootNotification" in r.getMessage()]
    assert frames == []
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="voltbus_devcsms.ocpp")
    async with station201(csms.url, "S1") as st:
        await st.boot()
    debug = [r for r in caplog.records if r.name == "voltbus_devcsms.ocpp"
             and "BootNotification" in r.getMessage()]
    assert debug
    assert all(r.levelno == logging.DEBUG for r in debug)


async def test_authorization_key_and_basic_auth_password_never_logged(
        csms: Csms, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with station16(csms) as _:
        await csms.send("P1", v16_call.ChangeConfiguration(key="AuthorizationKey", value=SECRET))
    async with station201(csms.url, "S1") as _:
        await csms.send("S1", call.SetVariables(set_variable_data=[{
            "attribute_value": SECRET, "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"}}]))
    logged = text_of(caplog)
    assert "ChangeConfiguration" in logged
    assert "SetVariables" in logged
    assert SECRET not in logged  # ...without the secret
    assert MASK in logged


async def test_basic_auth_header_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    central = CentralSystem(auth_keys={"S1": SECRET})
    await central.start()
    try:
        token = base64.b64encode(f"S1:{SECRET}".encode()).decode()
        async with connect(f"{central.url}/S1", subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                           additional_headers={"Authorization": f"Basic {token}"}):
            await central.wait_connected("S1")
    finally:
        await central.stop()
    logged = text_of(caplog)
    assert "Authorization" in logged  # websockets logged the request headers at DEBUG
    assert token not in logged
    assert SECRET not in logged


@pytest.mark.parametrize("frame", [
    '[2,"1","ChangeConfiguration",{"key":"AuthorizationKey","value":"s3cr3t"}]',
    '[2,"1","SetVariables",{"setVariableData":[{"attributeValue":"s3cr3t",'
    '"component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"}}]}]',
    '[3,"1",{"configurationKey":[{"key":"AuthorizationKey","readonly":false,"value":"s3cr3t"}]}]',
    "TEXT '[2,\"1\",\"ChangeConfiguration\",{\"key\":\"AuthorizationKey\","
    "\"value\":\"s3cr...' [9 bytes]",
    "Authorization: Basic czM6czNjcjN0",
])
def test_redact(frame: str) -> None:
    assert "s3cr3t" not in redact(frame)
    assert "czM6czNjcjN0" not in redact(frame)


def test_redact_leaves_ordinary_frames_alone() -> None:
    frame = '[2,"1","Heartbeat",{}]'
    assert redact(frame) == frame


async def test_history_is_bounded_and_counts_stay_exact() -> None:
    central = CentralSystem(history_limit=5)
    server = DevCsms(central)
    await server.start()
    try:
        async with station201(central.url, "S1") as st:
            for _ in range(12):
                await st.call(call.Heartbeat())
            await st.boot()
        kept = central.received("S1")
        assert len(kept) == 5
        assert [m.action for m in kept][-1] == "BootNotification"
        assert central.messages.counts("S1") == {"Heartbeat": 12, "BootNotification": 1}
        async with station201(central.url, "S2") as st2:
            for _ in range(3):
                await st2.call(call.Heartbeat())
        # the limit is for all stations together: the oldest records go first
        assert (len(central.received("S1")), len(central.received("S2"))) == (2, 3)
        assert central.received("S2")[0].payload == {}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as client:
            assert (await client.get("/chargers/S1/counts")).json() == {
                "Heartbeat": 12, "BootNotification": 1}
            assert (await client.get("/chargers")).json()[0]["messages"] == 13
            assert len((await client.get("/chargers/S1/messages")).json()) == 2
    finally:
        await server.stop()
    assert central.messages.dropping  # said once in the log
    with pytest.raises(ValueError, match="at least 1"):
        CentralSystem(history_limit=0)


async def test_waiters_are_woken_without_a_task_per_message(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        waiting = asyncio.create_task(csms.wait_for("S1", "Heartbeat", count=3))
        for _ in range(3):
            await st.call(call.Heartbeat())
        assert (await waiting) == {}
    assert csms.central.messages._waiters == set()


async def test_handler_signatures_are_computed_once(csms: Csms) -> None:
    from voltbus_devcsms.v201 import StationSession201

    async with station201(csms.url, "S1") as st:
        await st.boot()
    frozen = vars(StationSession201.on_transaction_event)["__signature__"]
    assert list(frozen.parameters)[:3] == ["self", "event_type", "timestamp"]
