"""Hostile frames from a central system speaking OCPP 2.0.1 (issue 11 with issue 15's fuzz).

The socket fuzz of test_fuzz_csms.py on a 2.0.1 connection: the real gateway
(VOLTBUS_OCPP_VERSION=2.0.1) and the simulated hardware as processes on a real Mosquitto, a
hostile 2.0.1 central system that starts a transaction (RequestStartTransaction) and throws 2000+
malformed frames at it. Each gets the CALLERROR OCPP-J 2.0.1 (4.3) names: FormatViolation
(no JSON object payload, unknown field, nesting too deep), OccurrenceConstraintViolation,
TypeConstraintViolation, PropertyConstraintViolation, RpcFrameworkError (a CALL of the wrong
shape), MessageTypeNotSupported, NotSupported (an action 2.0.1 does not have), NotImplemented
(a 2.0.1 action a station does not serve); nothing for a frame without a readable CALL id or a
CALLRESULT/CALLERROR for no CALL in flight. The connection, the transaction (relay closed, no
TransactionEvent Ended, TransactionEvent Updated going on) and the process stay; a frame over the
4 MiB limit closes with 1009 and the transaction goes on over the new connection.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.hostile_csms import corpus
from tests.faults.test_fuzz_csms import V201, hostile_frames, over_the_limit
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from voltbus_ocpp.protocol.v201.frames import check_frame


def test_every_kind_of_bad_frame_gets_its_201_code_from_the_frame_check() -> None:
    """The corpus's expectations and the frame check agree (no socket): what the socket test
    then asserts end to end is what OCPP-J 2.0.1 names."""
    handled = {"RequestStartTransaction", "RequestStopTransaction", "ChangeAvailability", "Reset",
               "UnlockConnector", "DataTransfer", "TriggerMessage", "SendLocalList",
               "ReserveNow", "CancelReservation", "GetCompositeSchedule", "SetVariables",
               "GetLocalListVersion"}
    frames = [f for f in corpus(seed=3, count=600, version="2.0.1") if f.kind != "1MB"]
    codes = set()
    for f in frames:
        answer = check_frame(f.data, handled)
        if f.expect == "no answer":
            if f.kind != "reply to nothing":
                assert answer == "", f
            continue
        if f.expect == "CALLRESULT":
            assert answer is None, f
            continue
        assert answer, f
        codes.add(json.loads(answer)[2])
        assert json.loads(answer)[2] == f.expect, (f.kind, f.data[:200], answer)
    assert {"FormatViolation", "OccurrenceConstraintViolation", "TypeConstraintViolation",
            "PropertyConstraintViolation", "RpcFrameworkError", "MessageTypeNotSupported",
            "NotSupported", "NotImplemented"} <= codes


@pytest.mark.expected_errors
async def test_hostile_201_frames_get_the_right_answers_and_the_transaction_goes_on(
        mosquitto: Broker, station: str, services: ServiceGroup, tmp_path: Path) -> None:
    await hostile_frames(mosquitto, station, services, tmp_path / "data", V201)


@pytest.mark.expected_errors
async def test_a_201_frame_over_the_limit_closes_with_1009_and_the_transaction_goes_on(
        mosquitto: Broker, station: str, services: ServiceGroup, tmp_path: Path) -> None:
    await over_the_limit(mosquitto, station, services, tmp_path / "data", V201)
