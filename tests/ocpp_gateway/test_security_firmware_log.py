"""GetLog with LogStatusNotification and SignedUpdateFirmware with SignedFirmwareStatusNotification
(1.6 security extension, issue 10 §4), against a real HTTP server and the dev central system over
a real WebSocket. The firmware is signed here with a signing certificate from a manufacturer CA
made by tests/fixtures/pki.py; the station checks both against its ManufacturerRootCertificate."""

from __future__ import annotations

import base64
import io
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.v16 import call

from tests.fixtures.pki import CA, Issued
from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_firmware import FIRMWARE, FileServer, restarted

MF_ROOT = "ManufacturerRootCertificate"


@pytest.fixture
def files() -> Iterator[FileServer]:
    """The real HTTP server of test_firmware: PUT keeps uploads, GET serves FIRMWARE."""
    server = FileServer()
    yield server
    server.close()


def statuses(rig: Rig, action: str) -> list[tuple[str, int | None]]:
    return [(m.payload["status"], m.payload.get("requestId"))
            for m in rig.csms.received(rig.id, action)]


def when() -> str:
    return (datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")


def signed(signer: Issued, data: bytes = FIRMWARE) -> str:
    return base64.b64encode(signer.key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


async def update(rig: Rig, files: FileServer, request_id: int, signer: Issued,
                 signature: str) -> dict[str, object]:
    """SignedUpdateFirmware of image.bin from the file server, to be retrieved now."""
    return await rig.csms.send(rig.id, call.SignedUpdateFirmware(request_id=request_id, firmware={
        "location": f"http://127.0.0.1:{files.port}/fw/image.bin", "retrieve_date_time": when(),
        "signing_certificate": signer.cert_pem.decode(), "signature": signature}))


async def online_with_maker(rig: Rig, maker: CA, **extra: object) -> None:
    await rig.start_gateway(**extra)
    await rig.csms.wait_for(rig.id, "BootNotification")
    assert await rig.csms.send(rig.id, call.InstallCertificate(
        certificate_type=MF_ROOT, certificate=maker.cert_pem.decode())) == {"status": "Accepted"}


async def plain_update_until_installing(rig: Rig, files: FileServer, tmp_path: Path) -> str:
    """An UpdateFirmware of image.bin, installed by copying it into tmp_path, until Installing
    (the restart follows); the install hook."""
    hook = f"cp -t {tmp_path}"
    await rig.start_gateway(firmware_install_command=hook)
    await rig.csms.wait_for(rig.id, "BootNotification")
    await rig.csms.send(rig.id, call.UpdateFirmware(
        location=f"http://127.0.0.1:{files.port}/fw/image.bin", retrieve_date=when()))
    await rig.csms.wait_for(rig.id, "FirmwareStatusNotification",
                            where=lambda p: p["status"] == "Installing")
    return hook


async def test_get_security_log_uploads_the_security_events(rig: Rig, files: FileServer) -> None:
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "SecurityEventNotification")
    answer = await rig.csms.send(rig.id, call.GetLog(
        log={"remote_location": f"http://127.0.0.1:{files.port}/logs"}, log_type="SecurityLog",
        request_id=7))
    assert answer["status"] == "Accepted"
    name = answer["filename"]
    await rig.csms.wait_for(rig.id, "LogStatusNotification",
                            where=lambda p: p["status"] == "Uploaded")
    assert statuses(rig, "LogStatusNotification") == [("Uploading", 7), ("Uploaded", 7)]
    with tarfile.open(fileobj=io.BytesIO(files.uploads[f"/logs/{name}"])) as tar:
        text = tar.extractfile("security.log").read().decode()  # type: ignore[union-attr]
    assert "StartupOfTheDevice" in text
    # nothing running now: a triggered LogStatusNotification says Idle, without a request id
    assert await rig.csms.send(rig.id, call.ExtendedTriggerMessage(
        requested_message="LogStatusNotification")) == {"status": "Accepted"}
    await rig.csms.wait_for(rig.id, "LogStatusNotification", count=3)
    assert statuses(rig, "LogStatusNotification")[-1] == ("Idle", None)
    assert rig.csms.violations(rig.id) == []


async def test_get_diagnostics_log_and_a_failing_upload(rig: Rig, files: FileServer) -> None:
    await rig.start_gateway(csms_auth_key="never-in-the-log-0000")
    await rig.csms.wait_for(rig.id, "BootNotification")
    answer = await rig.csms.send(rig.id, call.GetLog(
        log={"remote_location": f"http://127.0.0.1:{files.port}/d"}, log_type="DiagnosticsLog",
        request_id=1))
    await rig.csms.wait_for(rig.id, "LogStatusNotification",
                            where=lambda p: p["status"] == "Uploaded")
    data = files.uploads[f"/d/{answer['filename']}"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert {"log.txt", "config.json"} <= set(tar.getnames())
    assert b"never-in-the-log" not in data
    files.close()  # the upload server is gone: 1 retry, then UploadFailure
    await rig.csms.send(rig.id, call.GetLog(
        log={"remote_location": f"http://127.0.0.1:{files.port}/d"}, log_type="DiagnosticsLog",
        request_id=2, retries=1, retry_interval=1))
    await rig.csms.wait_for(rig.id, "LogStatusNotification",
                            where=lambda p: p["status"] == "UploadFailure")
    assert [s for s in statuses(rig, "LogStatusNotification") if s[1] == 2] == [
        ("Uploading", 2), ("Uploading", 2), ("UploadFailure", 2)]
    assert (await rig.csms.send(rig.id, call.GetLog(
        log={"remote_location": "file:///etc/passwd"}, log_type="DiagnosticsLog",
        request_id=3)))["status"] == "Rejected"
    assert rig.csms.violations(rig.id) == []


async def test_signed_firmware_verified_and_installed(rig: Rig, files: FileServer,
                                                      tmp_path: Path) -> None:
    maker = CA("voltbus test manufacturer")
    signer = maker.issue("firmware signer", usage="code")
    await online_with_maker(rig, maker, firmware_install_command=f"cp -t {tmp_path}")
    answer = await update(rig, files, 42, signer, signed(signer))
    assert answer == {"status": "Accepted"}
    await rig.csms.wait_for(rig.id, "SignedFirmwareStatusNotification",
                            where=lambda p: p["status"] == "InstallRebooting")
    await restarted(rig, firmware_install_command=f"cp -t {tmp_path}", firmware_version="2.0")
    await rig.csms.wait_for(rig.id, "SignedFirmwareStatusNotification",
                            where=lambda p: p["status"] == "Installed")
    assert statuses(rig, "SignedFirmwareStatusNotification") == [
        ("Downloading", 42), ("Downloaded", 42), ("SignatureVerified", 42), ("Installing", 42),
        ("InstallRebooting", 42), ("Installed", 42)]
    assert (tmp_path / "image.bin").read_bytes() == FIRMWARE
    boots = rig.csms.received(rig.id, "BootNotification")
    assert [b.payload["firmwareVersion"] for b in boots] == ["0.1.0", "2.0"]
    event = await rig.csms.wait_for(rig.id, "SecurityEventNotification",
                                    where=lambda p: p["type"] == "FirmwareUpdated")
    assert event["techInfo"] == "2.0"  # the version running after the restart
    assert rig.csms.violations(rig.id) == []


@pytest.mark.expected_errors  # "firmware image.bin: the signature does not verify"
async def test_bad_signature_is_not_installed(rig: Rig, files: FileServer,
                                              tmp_path: Path) -> None:
    maker = CA("voltbus test manufacturer")
    signer = maker.issue("firmware signer", usage="code")
    await online_with_maker(rig, maker, firmware_install_command=f"cp -t {tmp_path}")
    assert await update(rig, files, 5, signer, signed(signer, b"another image")) == {
        "status": "Accepted"}
    await rig.csms.wait_for(rig.id, "SignedFirmwareStatusNotification",
                            where=lambda p: p["status"] == "InvalidSignature")
    assert statuses(rig, "SignedFirmwareStatusNotification")[-1] == ("InvalidSignature", 5)
    event = await rig.csms.wait_for(rig.id, "SecurityEventNotification",
                                    where=lambda p: p["type"] == "InvalidFirmwareSignature")
    assert event["techInfo"] == "image.bin"
    assert not (tmp_path / "image.bin").exists()  # never handed to the install command


async def test_signing_certificate_from_another_maker_is_refused(rig: Rig,
                                                                 files: FileServer) -> None:
    maker, stranger = CA("voltbus test manufacturer"), CA("someone else")
    signer = stranger.issue("firmware signer", usage="code")
    await online_with_maker(rig, maker)
    answer = await update(rig, files, 6, signer, signed(signer))
    assert answer == {"status": "InvalidCertificate"}
    await rig.csms.wait_for(rig.id, "SecurityEventNotification",
                            where=lambda p: p["type"] == "InvalidFirmwareSigningCertificate")
    assert files.gets == 0
    assert rig.csms.received(rig.id, "SignedFirmwareStatusNotification") == []


async def test_plain_update_firmware_is_a_firmware_updated_event(rig: Rig, files: FileServer,
                                                                 tmp_path: Path) -> None:
    """UpdateFirmware (Firmware Management, unsigned) raises FirmwareUpdated too, after the
    restart into the new version."""
    hook = await plain_update_until_installing(rig, files, tmp_path)
    await restarted(rig, firmware_install_command=hook, firmware_version="1.9")
    event = await rig.csms.wait_for(rig.id, "SecurityEventNotification",
                                    where=lambda p: p["type"] == "FirmwareUpdated")
    assert event["techInfo"] == "1.9"
