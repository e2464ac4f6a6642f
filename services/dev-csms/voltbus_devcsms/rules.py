"""The rules of the specification the dev central system enforces, as data and pure checks.

Issue 10's lesson: a central system written by the same team shares the team's reading of the
spec, so it must hold stations to the letter where the spec is strict. Each rule has a stable
name; a station breaking one is recorded as a Violation (and logged at WARNING).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

# Rule names (tests assert on these).
CALL_IN_FLIGHT = "call-in-flight"  # OCPP-J 4.1.1 / 2.0.1 part 4 4.1.1: one CALL at a time
UNEXPECTED_ANSWER = "unexpected-answer"  # a CALLRESULT/CALLERROR for no CALL in flight
FUTURE_TIMESTAMP = "timestamp-in-future"
UNKNOWN_TRANSACTION = "unknown-transaction"
TRANSACTION_ENDED = "transaction-already-ended"
STARTED_TWICE = "transaction-started-twice"
CONNECTOR_BUSY = "connector-has-transaction"
METER_STOP_BELOW_START = "meter-stop-below-start"
STOP_BEFORE_START = "stop-before-start"
STATUS_TRANSITION = "status-transition"
STATUS_CONNECTOR_0 = "status-not-for-connector-0"
CALL_WHILE_REJECTED = "call-while-rejected"
# 1.6 4.2: after a Rejected BootNotification the station "SHALL NOT send any OCPP message to the
# Central System until the aforementioned retry interval has expired" (its BootNotification too)
# and "SHALL NOT respond to any Central System initiated message" (2.0.1 B03 the same)
CALL_BEFORE_RETRY_INTERVAL = "call-before-retry-interval"
ANSWER_WHILE_REJECTED = "answer-while-rejected"
SEQNO_GAP = "seqno-gap"
SEQNO_DUPLICATE = "seqno-duplicate"
SEQNO_ORDER = "seqno-out-of-order"
METER_DECREASED = "meter-register-decreased"
# 1.6 5.13: a reserved connector refuses "all incoming idTags ... except when the incoming idTag
# or the parent idTag match the idTag or parent idTag of the reservation"
RESERVATION_TAG = "reservation-tag-mismatch"
# 1.6 5.11: "The Charge Point MAY send an Authorize.req ... if AuthorizeRemoteTxRequests is true,
# the Charge Point SHALL behave as if in response to a local action at the Charge Point to start
# a transaction with the idTag given" - online and without LocalPreAuthorize that is an
# Authorize.req before the StartTransaction (and on a reservation with a parent idTag, 5.13, the
# only way to learn the tag's parent). Checked when this central system set
# AuthorizeRemoteTxRequests true (and not LocalPreAuthorize) by ChangeConfiguration.
REMOTE_START_UNAUTHORIZED = "remote-start-not-authorized"
# 1.6 4.5: FirmwareStatusNotification follows the job (Downloading -> Downloaded -> Installing ->
# Installed, or a *Failed), and "the Charge Point SHALL only send the status Idle after receipt of
# a TriggerMessage for a Firmware Status Notification, when it is not busy"
FIRMWARE_STATUS = "firmware-status-order"
_FIRMWARE_IDLE = frozenset({"Idle", "Installed", "InstallationFailed", "DownloadFailed"})
FIRMWARE_NEXT_16: dict[str, frozenset[str]] = {
    "Downloading": frozenset({"Downloading", "Downloaded", "DownloadFailed"}),
    "Downloaded": frozenset({"Installing", "InstallationFailed"}),
    "Installing": frozenset({"Installed", "InstallationFailed"}),
}


def firmware_status_16(previous: str | None, status: str, *, triggered: bool) -> str | None:
    """Why a FirmwareStatusNotification breaks 1.6 4.5 after `previous` (None: no job since the
    last UpdateFirmware this central system sent), or None."""
    if triggered and (status == previous or (
            status == "Idle" and (previous is None or previous in _FIRMWARE_IDLE))):
        return None
    if status == "Idle":
        return ("Idle without a TriggerMessage for it" if not triggered else
                f"Idle while the firmware job is {previous}")
    allowed = FIRMWARE_NEXT_16.get(previous or "Idle", frozenset({"Downloading"}))
    if status in allowed:
        return None
    return f"{previous or 'no job'} -> {status} is not a firmware update's progress"
# 1.6 security whitepaper edition 2, L01 and SignedFirmwareStatusNotification's enum (the
# FirmwareStatusEnumType of 2.0.1): a signed update goes (DownloadScheduled) -> Downloading ->
# Downloaded -> SignatureVerified | InvalidSignature -> (InstallScheduled) -> Installing ->
# (InstallRebooting) -> Installed, or ends in DownloadFailed, InvalidSignature,
# InstallVerificationFailed ("verification of the new firmware ... failed and installation will
# not proceed") or InstallationFailed. A final status ends the job: it comes once, nothing follows
# it for that requestId.
SIGNED_FIRMWARE_STATUS = "signed-firmware-status-order"
SIGNED_FIRMWARE_FINAL = frozenset({"Installed", "DownloadFailed", "InvalidSignature",
                                   "InstallVerificationFailed", "InstallationFailed"})
SIGNED_FIRMWARE_NEXT: dict[str, frozenset[str]] = {
    "DownloadScheduled": frozenset({"Downloading", "DownloadFailed"}),
    "Downloading": frozenset({"Downloading", "Downloaded", "DownloadFailed"}),
    "Downloaded": frozenset({"SignatureVerified", "InvalidSignature"}),
    "SignatureVerified": frozenset({"InstallScheduled", "Installing",
                                    "InstallVerificationFailed", "InstallationFailed"}),
    "InstallScheduled": frozenset({"Installing", "InstallVerificationFailed",
                                   "InstallationFailed"}),
    "Installing": frozenset({"InstallRebooting", "Installed", "InstallVerificationFailed",
                             "InstallationFailed"}),
    "InstallRebooting": frozenset({"Installed", "InstallationFailed"}),
}


def signed_firmware_status(previous: str | None, status: str) -> str | None:
    """Why a SignedFirmwareStatusNotification breaks L01 after `previous` (the last status
    of the same requestId, None: the first), or None. Idle is the job-request-id rule's."""
    if status == "Idle":
        return None
    if previous in SIGNED_FIRMWARE_FINAL:
        return f"{status} after the final {previous} of the same request"
    allowed = SIGNED_FIRMWARE_NEXT.get(previous or "", frozenset({"DownloadScheduled",
                                                                   "Downloading"}))
    if status in allowed:
        return None
    return f"{previous or 'no status yet'} -> {status} is not a signed firmware update's progress"


EVSE_ZERO = "evse-0-not-allowed"
# 2.0.1 part 2 B07/B08 (and K09 for ReportChargingProfiles): report pages answer a request the
# central system made and the station Accepted; nothing follows the page with tbc false.
REPORT_UNREQUESTED = "report-not-requested"
REPORT_AFTER_LAST = "report-page-after-last"
# 2.0.1 part 2 section 2, VariableAttributeType.value: "may only be omitted when mutability is
# set to WriteOnly"; a WriteOnly value is never read back (B06: GetVariables on one is Rejected).
REPORT_ATTRIBUTE_VALUE = "report-attribute-value"
# B05/B06: a Get/SetVariablesResponse has one result per requested item, for the component and
# variable requested; GetVariableResultType.attributeValue "can only be empty when the given
# status is NOT accepted".
VARIABLE_RESULTS = "variable-results-mismatch"
UNKNOWN_SECURITY_EVENT = "unknown-security-event"  # 1.6 security whitepaper appendix 1
# LogStatusNotification / SignedFirmwareStatusNotification: the requestId of a GetLog /
# SignedUpdateFirmware the station took; left out only for Idle (a triggered one, nothing running)
JOB_REQUEST_ID = "job-request-id"
BAD_CSR = "bad-csr"  # SignCertificate: not a valid PKCS#10 CSR for the charge point identity
# K09: ReportChargingProfiles carries the profiles GetChargingProfiles asked for (its evseId and
# criteria); K01: a ChargingStationMaxProfile is on evseId 0, a TxProfile on an EVSE.
REPORT_CRITERIA = "report-criteria-mismatch"
PROFILE_EVSE = "profile-evse-mismatch"
# K08: GetCompositeSchedule Accepted carries the schedule for the evseId and rate unit requested,
# at most the duration requested, its periods from startPeriod 0 in increasing order.
COMPOSITE_SCHEDULE = "composite-schedule-mismatch"

# How far ahead of this machine's clock a station's timestamp may be (clock skew of a station
# synchronised by the central system's Heartbeat/BootNotification answers is far smaller).
FUTURE_TOLERANCE = timedelta(seconds=5)

# OCPP 1.6 edition 2, section 4.9 (StatusNotification): the transitions allowed between
# ChargePointStatus values for a connector > 0 (A2..I8 in the table). A status repeated is no
# transition and always allowed (a triggered or re-sent StatusNotification).
_A, _P, _C = "Available", "Preparing", "Charging"
_EV, _EVSE, _F = "SuspendedEV", "SuspendedEVSE", "Finishing"
_R, _U, _X = "Reserved", "Unavailable", "Faulted"
ALLOWED_16: dict[str, frozenset[str]] = {
    _A: frozenset({_P, _C, _EV, _EVSE, _R, _U, _X}),
    _P: frozenset({_A, _C, _EV, _EVSE, _F, _X}),
    _C: frozenset({_A, _EV, _EVSE, _F, _U, _X}),
    _EV: frozenset({_A, _C, _EVSE, _F, _U, _X}),
    _EVSE: frozenset({_A, _C, _EV, _F, _U, _X}),
    _F: frozenset({_A, _P, _U, _X}),
    _R: frozenset({_A, _P, _U, _X}),
    _U: frozenset({_A, _P, _C, _EV, _EVSE, _X}),
    _X: frozenset({_A, _P, _C, _EV, _EVSE, _F, _R, _U}),
}
# Section 4.9: connector 0 (the charge point as a whole) is only Available, Unavailable or Faulted.
CONNECTOR_0_16 = frozenset({_A, _U, _X})


def status_transition_16(previous: str | None, status: str) -> str | None:
    """Why previous -> status breaks the 1.6 state table, or None when it is allowed."""
    if previous is None or previous == status or previous not in ALLOWED_16:
        return None
    if status in ALLOWED_16[previous]:
        return None
    return f"{previous} -> {status} is not in the 1.6 state table (section 4.9)"


def parse_time(value: object) -> datetime | None:
    """An OCPP dateTime as an aware datetime (naive ones are UTC); None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def in_future(value: object, now: datetime | None = None) -> str | None:
    """Why a timestamp is in the future (beyond the tolerance), or None."""
    stamp = parse_time(value)
    now = now or datetime.now(UTC)
    if stamp is not None and stamp > now + FUTURE_TOLERANCE:
        return f"timestamp {value} is {(stamp - now).total_seconds():.1f} s in the future"
    return None


# 2.0.1 part 2 E01-E03, E02 (start at plug-in, "cable plugin first") and E03 ("IdToken first"):
# the TransactionEvent reporting the authorisation (triggerReason Authorized) carries the idToken
# that authorised it (TransactionEventRequest.idToken: "the identifier which needs to be stored
# for authorization"); and a transaction started before its authorisation transfers no energy
# until then (E02: energy transfer begins after the Authorized event; C01 authorisation
# precedes charging). Checked on the energy register the events carry.
TX_AUTHORIZED_TOKEN = "tx-authorized-without-idtoken"
# 2.0.1 IdTokenEnumType NoAuthorization: "IdToken field SHALL be left empty"
NO_AUTHORIZATION_TOKEN = "noauthorization-idtoken-not-empty"
# 2.0.1 F01/F02: the transaction a RequestStartTransaction starts is the one "with the IdToken
# given"; an IdToken is its value and its type (IdTokenType), so its Authorize and its
# TransactionEvents carry the type the CSMS gave (a Central token is not an ISO14443 card)
REMOTE_TOKEN_TYPE = "remote-start-idtoken-type-changed"


def id_token_problems(id_token: dict[str, Any] | None, remote_start_id: int | None,
                      requested: dict[int, tuple[str, str]], *,
                      by_value: bool = True) -> list[tuple[str, str]]:
    """(rule, why) for an idToken (snake_case, as the ocpp package passes it) an Authorize or a
    TransactionEvent carries: NoAuthorization with a value; a token whose value a
    RequestStartTransaction gave with another type: the request of the event's remoteStartId
    when it names one, else (by_value: an Authorize, which has no remoteStartId) any request
    that gave this value. A TransactionEvent without remoteStartId is not a remote start's
    (F02.FR.01: the remote start's first event carries it, rule remote-start-id-missing): a
    card tapped later with the same characters as another type is no type change."""
    if not id_token:
        return []
    value, kind = str(id_token.get("id_token", "")), str(id_token.get("type", ""))
    problems = []
    if kind == "NoAuthorization" and value:
        problems.append((NO_AUTHORIZATION_TOKEN,
                         f"idToken {value!r} of type NoAuthorization (it must be empty)"))
    if remote_start_id is not None:
        given = {remote_start_id: requested[remote_start_id]} if (
            remote_start_id in requested) else {}
    elif by_value:
        given = {k: t for k, t in requested.items() if t[0] == value}
    else:
        given = {}
    for start_id, (want_value, want_type) in given.items():
        if want_value == value and want_type != kind:
            problems.append((REMOTE_TOKEN_TYPE, f"idToken {value!r} sent as {kind}; "
                             f"RequestStartTransaction {start_id} gave it as {want_type}"))
    return problems

# 2.0.1 F02.FR.01: the remoteStartId is sent in the next TransactionEventRequest after the
# RequestStartTransactionRequest with it (the transaction started, F01, or running already and
# given the token, F02): the first TransactionEvent with an idToken (or a remoteStartId) on the
# request's EVSE (any EVSE when it named none) after an Accepted RequestStartTransaction carries
# that request's transactionInfo.remoteStartId, not none and not another. Events with neither
# are not counted: the remote start gives the token, and one without may have been in flight.
REMOTE_START_ID = "remote-start-id-missing"


def remote_start_id_problem(expected: int, got: int | None) -> str | None:
    """Why the first TransactionEvent after an Accepted RequestStartTransaction (remoteStartId
    expected) breaks REMOTE_START_ID (got: its transactionInfo.remoteStartId), or None."""
    if got == expected:
        return None
    if got is None:
        return (f"the first TransactionEvent after RequestStartTransaction {expected} carries "
                f"no remoteStartId")
    return (f"the first TransactionEvent after RequestStartTransaction {expected} carries "
            f"remoteStartId {got}")


ENERGY_BEFORE_AUTH = "energy-before-authorization"


def tx_token_problem(trigger_reason: str, id_token: dict[str, Any] | None) -> str | None:
    """Why a TransactionEvent breaks TX_AUTHORIZED_TOKEN, or None."""
    if trigger_reason == "Authorized" and not id_token:
        return "a TransactionEvent with triggerReason Authorized carries no idToken"
    return None


def energy_before_auth_problem(authorised: bool, first_wh: float | None,
                               energy_wh: float | None) -> str | None:
    """Why an event's register breaks ENERGY_BEFORE_AUTH (1 Wh tolerance), or None."""
    if authorised or first_wh is None or energy_wh is None or energy_wh <= first_wh + 1.0:
        return None
    return (f"energy register {energy_wh:g} Wh rose above the {first_wh:g} Wh at the start "
            f"before the transaction was authorised (no idToken yet)")


# 2.0.1 E01 (FR.01-FR.06): a transaction starts at the first of the TxStartPoint values
# reached, and the Started event's triggerReason names what happened (TriggerReasonEnumType):
# EVDetected for ParkingBayOccupancy, CablePluggedIn for EVConnected, Authorized (or RemoteStart)
# for Authorized, ChargingStateChanged for EnergyTransfer, SignedDataReceived for DataSigned;
# PowerPathClosed is reached by the last of authorisation and plug-in. Checked once this central
# system knows the list (it set it with SetVariables, or read it with GetVariables).
TX_START_TRIGGER = "tx-start-trigger"
START_TRIGGERS: dict[str, frozenset[str]] = {
    "ParkingBayOccupancy": frozenset({"EVDetected"}),
    "EVConnected": frozenset({"CablePluggedIn"}),
    "Authorized": frozenset({"Authorized", "RemoteStart"}),
    "PowerPathClosed": frozenset({"Authorized", "RemoteStart", "CablePluggedIn"}),
    "EnergyTransfer": frozenset({"ChargingStateChanged"}),
    "DataSigned": frozenset({"SignedDataReceived"}),
}


def tx_start_trigger_problem(points: frozenset[str] | None, trigger_reason: str) -> str | None:
    """Why a Started event's triggerReason is none of the configured start points', or None."""
    if not points:
        return None
    allowed = frozenset().union(*(START_TRIGGERS.get(p, frozenset()) for p in points))
    if trigger_reason in allowed:
        return None
    return (f"Started with triggerReason {trigger_reason} while TxStartPoint is "
            f"{','.join(sorted(points))} (expected {' or '.join(sorted(allowed))})")


# 2.0.1 TriggerReasonEnumType ChargingStateChanged ("the state of the charging process has
# changed"), E02/E06 and TransactionEventRequest transactionInfo.chargingState: an event with this
# trigger reports the state the transaction went to, so it carries chargingState, and that state
# is not the one last reported for the transaction (by any of its events).
CHARGING_STATE_UNCHANGED = "charging-state-unchanged"


def charging_state_problem(trigger_reason: str, state: str | None,
                           previous: str | None) -> str | None:
    """Why an event breaks CHARGING_STATE_UNCHANGED (previous: the chargingState last reported
    for its transaction, None: none yet), or None."""
    if trigger_reason != "ChargingStateChanged":
        return None
    if state is None:
        return "triggerReason ChargingStateChanged without transactionInfo.chargingState"
    if state == previous:
        return (f"triggerReason ChargingStateChanged with chargingState {state}, the state "
                f"already reported for the transaction")
    return None


def seq_no_problem(seen: set[int], last: int | None, seq_no: int) -> tuple[str, str] | None:
    """(rule, detail) when seq_no is a duplicate, leaves a gap or comes out of order."""
    if seq_no in seen:
        return SEQNO_DUPLICATE, f"seqNo {seq_no} was already received"
    if last is not None and seq_no > last + 1:
        missing = ", ".join(str(n) for n in range(last + 1, min(seq_no, last + 6)))
        return SEQNO_GAP, f"seqNo {seq_no} after {last}: missing {missing}"
    if last is not None and seq_no < last:
        return SEQNO_ORDER, f"seqNo {seq_no} after {last}"
    return None


def attribute_value_problem(report_data: dict[str, Any]) -> str | None:
    """Why one NotifyReport reportData's attributes break VariableAttributeType (camelCase)."""
    component, variable = report_data.get("component", {}), report_data.get("variable", {})
    name = f"{component.get('name')}.{variable.get('name')}"
    for attribute in report_data.get("variableAttribute", []):
        write_only = attribute.get("mutability", "ReadWrite") == "WriteOnly"
        if write_only and "value" in attribute:
            return f"{name}: a WriteOnly attribute's value was reported"
        if not write_only and "value" not in attribute:
            return f"{name}: the {attribute.get('type', 'Actual')} attribute has no value"
    return None


def _named(item: dict[str, Any]) -> tuple[str, str]:
    component, variable = item.get("component", {}), item.get("variable", {})
    return (json.dumps(component, sort_keys=True), json.dumps(variable, sort_keys=True))


def variable_results_problem(action: str, requested: list[dict[str, Any]],
                             results: list[dict[str, Any]]) -> str | None:
    """Why a Get/SetVariables answer (camelCase items) does not answer what was requested."""
    if len(results) != len(requested):
        return f"{action}: {len(results)} result(s) for {len(requested)} requested item(s)"
    if sorted(map(_named, results)) != sorted(map(_named, requested)):
        return f"{action}: the results name other components/variables than requested"
    for r in results:
        if action == "GetVariables" and r.get("attributeStatus") == "Accepted" and (
                "attributeValue" not in r):
            return f"GetVariables: {_named(r)} Accepted without an attributeValue"
    return None


# K11.FR.05/K12.FR.04: "the Charging Station SHALL NOT set the chargingLimitSource to CSO in the
# NotifyChargingLimitRequest" (a CSO limit is a profile the CSMS installed); its evseId "must be
# > 0" (NotifyChargingLimitRequest field description; absent: the whole station).
LIMIT_SOURCE = "charging-limit-source"
LIMIT_EVSE = "charging-limit-evse"
# K13: ClearedChargingLimit tells that an external limit was released. Every limit that starts
# is notified (none -> a limit is a change beyond any LimitChangeSignificance, K11.FR.02 and
# K12.FR.02), so a Cleared for a source and EVSE with no notified limit in force releases
# nothing: our reading (the spec names no such rule), kept across the station's connections.
CLEARED_WITHOUT_LIMIT = "cleared-without-limit"
# K11.FR.06: an external limit is reported with purpose ChargingStationExternalConstraints; a
# profile the CSMS set (CSO) never has it (K01 refuses it). ReportChargingProfiles carries the
# chargingLimitSource its profiles come from, one the request's criteria asked for (K09).
EXTERNAL = "ChargingStationExternalConstraints"


def notify_limit_problem(payload: dict[str, Any]) -> tuple[str, str] | None:
    """(rule, detail) when a NotifyChargingLimit (camelCase) breaks K11/K12, or None."""
    source = payload.get("chargingLimit", {}).get("chargingLimitSource")
    if source == "CSO":
        return LIMIT_SOURCE, "NotifyChargingLimit with chargingLimitSource CSO"
    evse = payload.get("evseId")
    if evse is not None and evse <= 0:
        return LIMIT_EVSE, f"NotifyChargingLimit evseId {evse} (must be > 0, or absent)"
    return None


def profiles_report_problem(request: dict[str, Any], evse_id: int,
                            profiles: list[dict[str, Any]], source: str = "CSO"
                            ) -> tuple[str, str] | None:
    """(rule, detail) when a ReportChargingProfiles page (camelCase) does not answer its
    GetChargingProfiles request (camelCase) or puts a profile on the wrong kind of EVSE."""
    wanted_evse = request.get("evseId")
    if wanted_evse is not None and evse_id != wanted_evse:
        return REPORT_CRITERIA, f"profiles of EVSE {evse_id} for a request of EVSE {wanted_evse}"
    criteria = request.get("chargingProfile", {})
    sources = criteria.get("chargingLimitSource")
    if sources and source not in sources:
        return REPORT_CRITERIA, f"profiles of source {source} for a request of sources {sources}"
    for p in profiles:
        purpose = p.get("chargingProfilePurpose")
        if (purpose == EXTERNAL) != (source != "CSO"):
            return LIMIT_SOURCE, f"profile {p.get('id')}: {purpose} reported as source {source}"
        if purpose == "ChargingStationMaxProfile" and evse_id != 0:
            return PROFILE_EVSE, f"ChargingStationMaxProfile {p.get('id')} on EVSE {evse_id}"
        if purpose == "TxProfile" and evse_id == 0:
            return PROFILE_EVSE, f"TxProfile {p.get('id')} on evseId 0"
        ids = criteria.get("chargingProfileId")
        if (criteria.get("chargingProfilePurpose") not in (None, purpose)
                or criteria.get("stackLevel") not in (None, p.get("stackLevel"))
                or (ids and p.get("id") not in ids)):
            return REPORT_CRITERIA, f"profile {p.get('id')} does not match the criteria {criteria}"
    return None


# N07.FR.07/N08.FR.04: a NotifyEvent's first (or only) part has seqNo 0, the next ones 1, 2, ...
# after a part with tbc true; N07.FR.06: each event names its monitor, and a CustomMonitor event
# one this central system set (SetVariableMonitoring Accepted) and did not clear.
NOTIFY_EVENT_PAGING = "notify-event-paging"
NOTIFY_EVENT_MONITOR = "notify-event-monitor"


def notify_event_problem(expected: int, seq_no: int) -> str | None:
    """Why a NotifyEvent's seqNo is not the part expected (0 unless an earlier part had tbc)."""
    if seq_no != expected:
        return f"NotifyEvent seqNo {seq_no}, expected {expected}"
    return None


def event_monitor_problem(events: list[dict[str, Any]], known: set[int]) -> str | None:
    """Why events (camelCase eventData) do not come from monitors the station has."""
    for e in events:
        if e.get("eventNotificationType") == "HardWiredNotification":
            continue
        mid = e.get("variableMonitoringId")
        if mid is None:
            return f"event {e.get('eventId')} from a monitor without its variableMonitoringId"
        if e.get("eventNotificationType") == "CustomMonitor" and mid not in known:
            return (f"event {e.get('eventId')} from custom monitor {mid}, which was never "
                    f"accepted or was cleared")
    return None


# O03/O04: NotifyDisplayMessages answers a GetDisplayMessages the station Accepted (the report
# rules above), and each message it lists matches every criterion the request gave (ids,
# priority, state), once across the pages.
DISPLAY_CRITERIA = "display-messages-criteria"


def display_messages_problem(request: dict[str, Any], infos: list[dict[str, Any]],
                             seen: set[Any]) -> str | None:
    """Why a NotifyDisplayMessages page (camelCase messageInfo) does not answer its
    GetDisplayMessages request (camelCase): a message outside its criteria, or one already on an
    earlier page (seen: the ids of those)."""
    ids = request.get("id")
    for info in infos:
        mid = info.get("id")
        if mid in seen:
            return f"message {mid} reported twice for request {request.get('requestId')}"
        seen.add(mid)
        if ids and mid not in ids:
            return f"message {mid} reported for a request of ids {ids}"
        for key in ("priority", "state"):
            if request.get(key) is not None and info.get(key) != request[key]:
                return (f"message {mid} has {key} {info.get(key)} for a request of "
                        f"{key} {request[key]}")
    return None


def composite_problem(request: dict[str, Any], answer: dict[str, Any]) -> str | None:
    """Why a GetCompositeSchedule answer (camelCase) does not answer its request."""
    if answer.get("status") != "Accepted":
        return None
    schedule = answer.get("schedule")
    if schedule is None:
        return "Accepted without a schedule"
    if schedule.get("evseId") != request.get("evseId"):
        return f"schedule of EVSE {schedule.get('evseId')} for EVSE {request.get('evseId')}"
    unit = request.get("chargingRateUnit")
    if unit is not None and schedule.get("chargingRateUnit") != unit:
        return f"schedule in {schedule.get('chargingRateUnit')}, {unit} requested"
    if schedule.get("duration", 0) > request.get("duration", 0):
        return f"schedule of {schedule.get('duration')} s, {request.get('duration')} s requested"
    starts = [p.get("startPeriod") for p in schedule.get("chargingSchedulePeriod", [])]
    if not starts or starts[0] != 0 or any(b <= a for a, b in pairwise(starts)):
        return f"periods start at {starts}: from 0, increasing"
    return None
