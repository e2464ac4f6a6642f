"""2.0.1 frames are logged at DEBUG, as 1.6's (the ocpp package logs every frame at INFO: a
FullInventory report alone was pages of INFO lines)."""

from __future__ import annotations

import logging

import pytest

from tests.ocpp_gateway.conftest import Rig


async def test_201_frames_are_debug_not_info(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="voltbus_ocpp.wire201")
    rig.pilot("A")
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.csms.wait_for(rig.id, "StatusNotification")
    await rig.csms.send_action(rig.id, "GetBaseReport", {"requestId": 1,
                                                        "reportBase": "SummaryInventory"})
    await rig.csms.wait_report(rig.id, 1)
    wire = [r for r in caplog.records if r.name == "voltbus_ocpp.wire201"]
    frames = [r for r in wire if "BootNotification" in r.getMessage()
              or "NotifyReport" in r.getMessage()]
    assert frames  # they are logged ...
    assert {r.levelno for r in frames} == {logging.DEBUG}  # ... at DEBUG only
    assert rig.csms.violations(rig.id) == []
