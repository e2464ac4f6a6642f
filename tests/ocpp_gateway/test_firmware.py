"""Firmware Management against a real HTTP server: diagnostics archive uploaded, firmware
downloaded at the retrieve date with retries and handed to the install hook."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ocpp.v16 import call

from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_protocol_ops import charging, online
from voltbus_common.devbroker import free_port

FIRMWARE = b"\x7fELF pretend firmware image"


class FileServer:
    """PUT stores the body, GET serves FIRMWARE after `fail_gets` HTTP 500s."""

    def __init__(self) -> None:
        self.uploads: dict[str, bytes] = {}
        self.fail_gets = 0
        self.gets = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers["Content-Length"])
                owner.uploads[self.path] = self.rfile.read(length)
                self.send_response(201)
                self.end_headers()

            def do_GET(self) -> None:
                owner.gets += 1
                if owner.gets <= owner.fail_gets:
                    self.send_response(500)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(FIRMWARE)))
                self.end_headers()
                self.wfile.write(FIRMWARE)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


def statuses(rig: Rig, action: str) -> list[str]:
    return [m.payload["status"] for m in rig.csms.received(rig.id, action)]


async def test_get_diagnostics_uploads_a_log_archive(rig: Rig, files: FileServer) -> None:
    await rig.start_gateway(csms_auth_key="do-not-put-me-in-archives")
    await rig.csms.wait_for(rig.id, "StatusNotification")
    answer = await rig.csms.send(rig.id, call.GetDiagnostics(
        location=f"http://127.0.0.1:{files.port}/upload"))
    name = answer["fileName"]
    assert name.startswith(f"diagnostics-{rig.id}-")
    await rig.csms.wait_for(rig.id, "DiagnosticsStatusNotification",
                            where=lambda p: p["status"] == "Uploaded")
    assert statuses(rig, "DiagnosticsStatusNotification") == ["Uploading", "Uploaded"]
    with tarfile.open(fileobj=io.BytesIO(files.uploads[f"/upload/{name}"])) as tar:
        members = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}
    assert set(members) == {"log.txt", "config.json", "outbox.json", "connectors.json"}
    assert "accepted by the central system" in members["log.txt"]
    config = json.loads(members["config.json"])
    assert config["NumberOfConnectors"] == "1"
    assert "AuthorizationKey" not in config
    assert json.loads(members["connectors.json"]) == {"1": "Available"}


async def test_get_diagnostics_upload_failure_is_reported(rig: Rig) -> None:
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "StatusNotification")
    await rig.csms.send(rig.id, call.GetDiagnostics(
        location=f"http://127.0.0.1:{free_port()}/nothing", retries=1, retry_interval=1))
    await rig.csms.wait_for(rig.id, "DiagnosticsStatusNotification",
                            where=lambda p: p["status"] == "UploadFailed")
    assert statuses(rig, "DiagnosticsStatusNotification") == [
        "Uploading", "Uploading", "UploadFailed"]


async def restarted(rig: Rig, **settings: object) -> None:
    """The station ended by itself after the install (as a hard Reset); start it again, as its
    supervisor does, with the new firmware's settings."""
    assert rig._gw_task is not None
    await asyncio.wait_for(asyncio.shield(rig._gw_task), 5)
    assert rig.gateway is not None
    assert rig.gateway.reset_done
    await rig.stop_gateway()
    await rig.start_gateway(**settings)


async def test_update_firmware_downloads_with_retries_and_installs(rig: Rig, files: FileServer,
                                                                   tmp_path: Path) -> None:
    """§5.19/§4.5: Installed comes after the restart, once the BootNotification of the new
    firmware (its firmwareVersion) was accepted."""
    files.fail_gets = 1
    installed = tmp_path / "installed"
    installed.mkdir()
    hook = f"cp --target-directory={installed}"
    await rig.start_gateway(firmware_install_command=hook)
    await rig.csms.wait_for(rig.id, "StatusNotification")
    retrieve = datetime.now(UTC) + timedelta(seconds=0.3)
    answer = await rig.csms.send(rig.id, call.UpdateFirmware(
        location=f"http://127.0.0.1:{files.port}/fw/voltbus-1.2.bin",
        retrieve_date=retrieve.isoformat().replace("+00:00", "Z"), retries=2, retry_interval=1))
    assert answer == {}
    await rig.csms.wait_for(rig.id, "FirmwareStatusNotification",
                            where=lambda p: p["status"] == "Installing")
    await restarted(rig, firmware_install_command=hook, firmware_version="1.2")
    await rig.csms.wait_for(rig.id, "FirmwareStatusNotification",
                            where=lambda p: p["status"] == "Installed")
    assert statuses(rig, "FirmwareStatusNotification") == [
        "Downloading", "Downloading", "Downloaded", "Installing", "Installed"]
    first = rig.csms.received(rig.id, "FirmwareStatusNotification")[0]
    assert first.at >= retrieve
    assert (installed / "voltbus-1.2.bin").read_bytes() == FIRMWARE
    boots = rig.csms.received(rig.id, "BootNotification")
    assert [b.payload["firmwareVersion"] for b in boots] == ["0.1.0", "1.2"]
    calls = rig.csms.received(rig.id)
    second_boot = [i for i, m in enumerate(calls) if m.action == "BootNotification"][1]
    assert second_boot < next(i for i, m in enumerate(calls)
                              if m.action == "FirmwareStatusNotification"
                              and m.payload["status"] == "Installed")
    assert rig.csms.violations(rig.id) == []


async def test_update_firmware_installs_only_once_no_transaction_runs(
        rig: Rig, files: FileServer, tmp_path: Path) -> None:
    """§5.19: installing stops the charge point, so a downloaded firmware waits for the running
    transaction to end; then Installing, the restart, and Installed after the new boot."""
    installed = tmp_path / "installed"
    installed.mkdir()
    hook = f"cp --target-directory={installed}"
    rig.meter(100.0)
    await online(rig, firmware_install_command=hook, connectors=2)
    await charging(rig)
    await rig.csms.send(rig.id, call.UpdateFirmware(
        location=f"http://127.0.0.1:{files.port}/fw/voltbus-1.3.bin",
        retrieve_date=datetime.now(UTC).isoformat().replace("+00:00", "Z")))
    await rig.csms.wait_for(rig.id, "FirmwareStatusNotification",
                            where=lambda p: p["status"] == "Downloaded")
    # the connector not in use is Unavailable while the install waits, and starts nothing
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["connectorId"] == 2 and p["status"] == "Unavailable")
    rig.command(2, command="start", id_tag="OTHER", request_id="fw-wait")
    refused = await rig.wait("result", lambda p: p.request_id == "fw-wait")
    assert refused.status.value == "Rejected"
    assert "about to restart" in (refused.reason or "")
    await asyncio.sleep(0.3)
    assert statuses(rig, "FirmwareStatusNotification") == ["Downloading", "Downloaded"]
    assert not (installed / "voltbus-1.3.bin").exists()
    rig.tap("TAG")  # the driver ends the session
    stop = await rig.csms.wait_for(rig.id, "StopTransaction")
    assert stop["reason"] == "Local"
    await rig.csms.wait_for(rig.id, "FirmwareStatusNotification",
                            where=lambda p: p["status"] == "Installing")
    calls = rig.csms.received(rig.id)
    assert [i for i, m in enumerate(calls) if m.action == "StopTransaction"] < [
        i for i, m in enumerate(calls) if m.payload.get("status") == "Installing"]
    await restarted(rig, firmware_install_command=hook, firmware_version="1.3", connectors=2)
    await rig.csms.wait_for(rig.id, "FirmwareStatusNotification",
                            where=lambda p: p["status"] == "Installed")
    assert rig.csms.received(rig.id, "BootNotification")[-1].payload["firmwareVersion"] == "1.3"
    assert (installed / "voltbus-1.3.bin").read_bytes() == FIRMWARE
    assert len(rig.csms.received(rig.id, "StopTransaction")) == 1
    await rig.csms.wait_for(rig.id, "StatusNotification", count=2,  # free again after it
                            where=lambda p: p["connectorId"] == 2 and p["status"] == "Available")
    answer = await rig.csms.send(rig.id, call.TriggerMessage(
        requested_message="FirmwareStatusNotification"))
    assert answer == {"status": "Accepted"}
    idle = await rig.csms.wait_for(rig.id, "FirmwareStatusNotification", count=5)
    assert idle == {"status": "Idle"}
    assert rig.csms.violations(rig.id) == []


async def test_update_firmware_without_install_hook_fails_installation(
        rig: Rig, files: FileServer) -> None:
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "StatusNotification")
    await rig.csms.send(rig.id, call.UpdateFirmware(
        location=f"http://127.0.0.1:{files.port}/fw.bin",
        retrieve_date=datetime.now(UTC).isoformat().replace("+00:00", "Z")))
    await rig.csms.wait_for(rig.id, "FirmwareStatusNotification",
                            where=lambda p: p["status"] == "InstallationFailed")
    assert statuses(rig, "FirmwareStatusNotification") == [
        "Downloading", "Downloaded", "InstallationFailed"]
