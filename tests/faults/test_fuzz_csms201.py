"""Hostile frames from a central system speaking OCPP 2.0.1 (issue 11 with issue 15's fuzz).

The socket tests are test_fuzz_csms.py's, parametrized [2.0.1]; this file checks that the 2.0.1
corpus's expectations are what the frame check answers. The socket fuzz on a 2.0.1 connection: the
real gateway (VOLTBUS_OCPP_VERSION=2.0.1) and the simulated hardware as processes on a real
Mosquitto, a hostile 2.0.1 central system that starts a transaction (RequestStartTransaction) and
throws 2000+ malformed frames at it. Each gets the CALLERROR OCPP-J 2.0.1 (4.3) names:
FormatViolation (no JSON object payload, unknown field, nesting too deep),
OccurrenceConstraintViolation, TypeConstraintViolation, PropertyConstraintViolation,
RpcFrameworkError (a CALL of the wrong shape), MessageTypeNotSupported, NotSupported (an action
2.0.1 does not have), NotImplemented (a 2.0.1 action a station does not serve); nothing for a frame
without a readable CALL id or a CALLRESULT/CALLERROR for no CALL in flight. The connection, the
transaction (relay closed, no TransactionEvent Ended, TransactionEvent Updated going on) and the
process stay; a frame over the 4 MiB limit closes with 1009 and the transaction goes on over the new
connection.
"""

from __future__ import annotations

import json

from tests.faults.hostile_csms import corpus
from voltbus_ocpp.protocol.v201.frames import check_frame


def test_every_kind_of_bad_frame_gets_its_201_code_from_the_frame_check() -> None:
    """The corpus's expectations and the frame check agree (no socket): what the socket test
    then asserts end to end is what OCPP-J 2.0.1 names."""
    handled = {"RequestStartTransaction", "RequestStopTransaction", "ChangeAvailability", "Reset",
               "UnlockConnector", "DataTransfer", "TriggerMessage", "SendLocalList",
               "ReserveNow", "CancelReservation", "GetCompositeSchedule", "SetVariables",
               "GetLocalListVersion", "SetMonitoringLevel", "SetMonitoringBase",
               "GetMonitoringReport"}
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
