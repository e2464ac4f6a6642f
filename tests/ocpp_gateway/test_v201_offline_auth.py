"""2.0.1 offline authorisation (C12/C13/C15, AuthCtrlr LocalAuthorizeOffline and
OfflineTxForUnknownIdEnabled) against the dev central system, which goes down and comes back:
the variables set over SetVariables decide what a card tapped while it is away may do, on the
model's authorisation (cache, then the unknown-card rule); the transactions started offline
reach it afterwards, flagged offline."""

from __future__ import annotations

import asyncio

from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_v201_local_auth import set_variable


def closed_since(rig: Rig, mark: int) -> bool:
    return any(m.payload.closed for m in rig.seen["relay_set"][mark:])


async def offline(rig: Rig) -> None:
    await rig.csms.stop()
    await rig.wait("connection", lambda p: p.connected is False,
                   count=sum(1 for m in rig.seen["connection"] if m.payload.connected is False)
                   + 1)


async def online(rig: Rig) -> None:
    before = sum(1 for m in rig.seen["connection"] if m.payload.registration is not None)
    await rig.csms.start()
    await rig.wait("connection", lambda p: p.registration is not None, count=before + 1,
                   timeout=10)


async def refused(rig: Rig, tag: str) -> None:
    mark = len(rig.seen["relay_set"])
    rig.tap(tag)
    await asyncio.sleep(0.5)
    assert not closed_since(rig, mark), f"{tag} started offline"


async def started(rig: Rig, tag: str) -> None:
    mark = len(rig.seen["relay_set"])
    rig.tap(tag)
    await rig.wait("relay_set", lambda p: p.closed is True, count=sum(
        1 for m in rig.seen["relay_set"][:mark] if m.payload.closed) + 1)


async def test_offline_authorisation_follows_the_auth_ctrlr_variables(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201(pilot="B")
    await rig.status("Preparing")
    await set_variable(rig, "AuthCtrlr", "LocalAuthorizeOffline", "false")
    await set_variable(rig, "AuthCtrlr", "OfflineTxForUnknownIdEnabled", "false")
    await started(rig, "KNOWN")  # online: Authorize Accepted, into the authorisation cache
    rig.tap("KNOWN")  # presented again: the transaction ends
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Ended")
    rig.pilot("A")
    await rig.status("Available")
    rig.pilot("B")
    await rig.status("Preparing")

    await offline(rig)  # neither rule: no card starts offline, a cached one neither
    await refused(rig, "KNOWN")
    await refused(rig, "NEWCARD")
    await online(rig)
    await set_variable(rig, "AuthCtrlr", "LocalAuthorizeOffline", "true")

    await offline(rig)  # LocalAuthorizeOffline: the cached card starts, an unknown one not
    await refused(rig, "NEWCARD")
    await started(rig, "KNOWN")
    rig.tap("KNOWN")  # ends it, offline too
    await rig.wait("session", lambda p: p is not None and p.id_tag == "KNOWN", count=2)
    rig.pilot("A")
    await rig.status("Available")
    rig.pilot("B")
    await rig.status("Preparing")
    await online(rig)
    await set_variable(rig, "AuthCtrlr", "OfflineTxForUnknownIdEnabled", "true")

    await offline(rig)  # OfflineTxForUnknownIdEnabled: an unknown card starts as well
    await started(rig, "NEWCARD")
    await online(rig)
    new = await csms.wait_for(rig.id, "TransactionEvent", timeout=10, where=lambda p: (
        p["eventType"] == "Started" and p.get("idToken", {}).get("idToken") == "NEWCARD"))
    assert new["offline"] is True
    starts = [m.payload for m in csms.received(rig.id, "TransactionEvent")
              if m.payload["eventType"] == "Started"]
    assert [(s["idToken"]["idToken"], s.get("offline", False)) for s in starts] == [
        ("KNOWN", False), ("KNOWN", True), ("NEWCARD", True)]
    authorized = [m.payload["idToken"]["idToken"] for m in csms.received(rig.id, "Authorize")]
    assert authorized == ["KNOWN"]  # only the online tap asked the central system
    assert csms.violations(rig.id) == []
