"""`voltbus up --ocpp 1.6|2.0.1|auto`: the README's session by hand, the same in both OCPP
versions (auto: the station offers both and speaks the one the dev central system selects).

Everything but the gateway's wire format is the same whichever version it speaks (issue 11):
the bus, the API, the CLI; the dev central system sees a whole transaction in its own terms.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.system.test_cli import banner_of, start_up, stop_up, voltbus, wait_for
from voltbus_common.devbroker import free_port

pytestmark = pytest.mark.system

TAG = "04A1B2C3"


@pytest.mark.parametrize(("version", "speaks"), [
    ("1.6", "1.6"), ("2.0.1", "2.0.1"),
    ("auto", "2.0.1")])  # both offered; the dev central system takes the station's first
def test_the_same_session_by_hand_in_both_versions(tmp_path: Path, version: str,
                                                   speaks: str) -> None:
    data = tmp_path / "var"
    mqtt_port, api_port, csms_port = free_port(), free_port(), free_port()
    while csms_port + 1 in (mqtt_port, api_port):
        csms_port = free_port()
    up = start_up(tmp_path, "--mqtt-port", str(mqtt_port), "--api-port", str(api_port),
                  "--csms-port", str(csms_port), "--ocpp", version, "--no-house",
                  "--no-influx")
    try:
        banner_of(tmp_path)
        info = json.loads((data / "up.json").read_text())
        token = (data / "secrets" / "api_admin_token").read_text().strip()
        api = httpx.Client(base_url=info["api_url"], timeout=5,
                           headers={"Authorization": f"Bearer {token}"})
        csms = httpx.Client(base_url=info["csms_http_url"], timeout=5)
        connector = "/api/v1/stations/CP1/connectors/1"

        def status() -> str | None:
            try:
                response = api.get(connector)
            except httpx.TransportError:
                return None
            return (response.json().get("status") or {}).get("status") \
                if response.is_success else None

        wait_for(lambda: status() == "Available", 60, "Available in the API")
        assert voltbus(data, "sim", "plug", "1").returncode == 0
        wait_for(lambda: status() == "Preparing", 20, "Preparing")
        assert voltbus(data, "sim", "tap", TAG).returncode == 0
        wait_for(lambda: status() == "Charging", 20, "Charging")
        limited = voltbus(data, "cmd", "limit", "1", "10")
        assert limited.returncode == 0, limited.stderr
        assert "set_current_limit: Accepted" in limited.stdout
        assert voltbus(data, "sim", "tap", TAG).returncode == 0
        wait_for(lambda: status() == "Finishing", 20, "Finishing after the second tap")
        last = api.get(connector).json()["last_session"]
        assert last["id_tag"] == TAG
        assert last["stop_reason"] == "Local"
        assert voltbus(data, "sim", "unplug", "1").returncode == 0
        wait_for(lambda: status() == "Available", 20, "Available after unplugging")

        (charger,) = csms.get("/chargers").json()
        assert charger["ocpp_version"] == speaks
        (transaction,) = csms.get("/chargers/CP1/transactions").json()
        if speaks == "1.6":
            assert transaction["id_tag"] == TAG
            assert transaction["reason"] == "Local"
            assert transaction["meter_stop"] >= transaction["meter_start"]
        else:
            assert transaction["ended"]
            events = transaction["events"]
            assert [e["seq_no"] for e in events] == list(range(events[0]["seq_no"],
                                                               events[0]["seq_no"] + len(events)))
            assert events[0]["event_type"] == "Started"
            assert events[-1]["event_type"] == "Ended"
        assert csms.get("/violations").json() == []
        api.close()
        csms.close()
    finally:
        stop_up(up, tmp_path)
