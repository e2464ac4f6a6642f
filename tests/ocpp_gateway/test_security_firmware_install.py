"""After the download: the image refused by the verify step or the installer
(InstallVerificationFailed, never Installed), and the Installed that follows the restart kept in
the durable outbox, so a link that drops (or a process that dies) between the boot and its send
does not lose it and it is sent exactly once (issue 10 §3/§4). Against the dev central system
with its firmware-order rules (1.6 4.5 and the whitepaper's L01) over a real WebSocket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ocpp.v16 import call

from tests.fixtures.pki import CA, Issued
from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_firmware import FIRMWARE, FileServer, restarted
from tests.ocpp_gateway.test_security_firmware_log import (
    files,  # noqa: F401  (the fixture)
    online_with_maker,
    plain_update_until_installing,
    signed,
    statuses,
    update,
    when,
)

SIGNED = "SignedFirmwareStatusNotification"


async def _refused(rig: Rig, server: FileServer, request_id: int,
                   **settings: object) -> Issued:
    """A signed update of image.bin, waited for until InstallVerificationFailed; its signer."""
    maker = CA("voltbus test manufacturer")
    signer = maker.issue("firmware signer", usage="code")
    await online_with_maker(rig, maker, **settings)
    assert await update(rig, server, request_id, signer, signed(signer)) == {
        "status": "Accepted"}
    await rig.csms.wait_for(rig.id, SIGNED, where=lambda p: p["status"] ==
                            "InstallVerificationFailed")
    return signer


def _script(tmp_path: Path, name: str, body: str) -> str:
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.expected_errors  # "refused before the install: the verify command exited 3"
async def test_verify_command_refuses_the_image(rig: Rig, files: FileServer,  # noqa: F811
                                                tmp_path: Path) -> None:
    verify = _script(tmp_path, "verify.sh", 'echo "bad checksum" >&2; exit 3')
    await _refused(rig, files, 11, firmware_install_command=f"cp -t {tmp_path}",
                   firmware_verify_command=verify)
    await asyncio.sleep(0.2)  # nothing else follows
    assert statuses(rig, SIGNED) == [("Downloading", 11), ("Downloaded", 11),
                                     ("SignatureVerified", 11),
                                     ("InstallVerificationFailed", 11)]
    assert not (tmp_path / "image.bin").exists()  # never handed to the installer
    assert rig.gateway is not None
    assert not rig.gateway.reset_done  # no restart
    assert rig.csms.violations(rig.id) == []


@pytest.mark.expected_errors  # "firmware install hook exited 65"
async def test_installer_that_finds_the_image_bad(rig: Rig, files: FileServer,  # noqa: F811
                                                  tmp_path: Path) -> None:
    hook = _script(tmp_path, "install.sh", "exit 65")
    signer = await _refused(rig, files, 12, firmware_install_command=hook)
    assert statuses(rig, SIGNED)[-2:] == [("Installing", 12), ("InstallVerificationFailed", 12)]
    # another failure of the installer stays InstallationFailed
    (tmp_path / "install.sh").write_text("#!/bin/sh\nexit 1\n")
    assert await update(rig, files, 13, signer, signed(signer)) == {"status": "Accepted"}
    await rig.csms.wait_for(rig.id, SIGNED, where=lambda p: p["status"] == "InstallationFailed")
    assert statuses(rig, SIGNED)[-1] == ("InstallationFailed", 13)
    assert rig.csms.violations(rig.id) == []


async def _link_drops_after_boot_then_killed(rig: Rig, **settings: object) -> None:
    """Restarted into the new firmware: the central system drops the link right after the
    BootNotification answer (before anything else is read), and the process is stopped while
    it reconnects; then started again."""
    rig.csms.behaviour.close_after_answer["BootNotification"] = 1
    await restarted(rig, **settings)
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)
    await rig.stop_gateway()  # the kill between the boot and the send
    assert rig.csms.behaviour.close_after_answer["BootNotification"] == 0
    await rig.start_gateway(**settings)
    await rig.csms.wait_for(rig.id, "BootNotification", count=3)


async def test_signed_installed_survives_a_drop_and_a_kill_after_the_boot(
        rig: Rig, files: FileServer, tmp_path: Path) -> None:  # noqa: F811
    maker = CA("voltbus test manufacturer")
    signer = maker.issue("firmware signer", usage="code")
    hook = f"cp -t {tmp_path}"
    await online_with_maker(rig, maker, firmware_install_command=hook)
    assert await update(rig, files, 21, signer, signed(signer)) == {"status": "Accepted"}
    await rig.csms.wait_for(rig.id, SIGNED, where=lambda p: p["status"] == "InstallRebooting")
    await _link_drops_after_boot_then_killed(rig, firmware_install_command=hook,
                                             firmware_version="2.1")
    await rig.csms.wait_for(rig.id, SIGNED, where=lambda p: p["status"] == "Installed")
    await asyncio.sleep(0.3)  # a second one would be here by now
    assert statuses(rig, SIGNED) == [
        ("Downloading", 21), ("Downloaded", 21), ("SignatureVerified", 21), ("Installing", 21),
        ("InstallRebooting", 21), ("Installed", 21)]
    calls = rig.csms.received(rig.id)
    last_boot = max(i for i, m in enumerate(calls) if m.action == "BootNotification")
    installed = next(i for i, m in enumerate(calls) if m.action == SIGNED
                     and m.payload["status"] == "Installed")
    assert installed > last_boot
    updated = [m for m in rig.csms.received(rig.id, "SecurityEventNotification")
               if m.payload["type"] == "FirmwareUpdated"]
    assert [m.payload["techInfo"] for m in updated] == ["2.1"]
    assert (tmp_path / "image.bin").read_bytes() == FIRMWARE
    assert rig.csms.violations(rig.id) == []


async def test_installed_survives_a_drop_and_a_kill_after_the_boot(
        rig: Rig, files: FileServer, tmp_path: Path) -> None:  # noqa: F811
    hook = await plain_update_until_installing(rig, files, tmp_path)
    await _link_drops_after_boot_then_killed(rig, firmware_install_command=hook,
                                             firmware_version="1.3")
    await rig.csms.wait_for(rig.id, "FirmwareStatusNotification",
                            where=lambda p: p["status"] == "Installed")
    await asyncio.sleep(0.3)
    assert [m.payload["status"] for m in rig.csms.received(rig.id, "FirmwareStatusNotification")
            ] == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert rig.csms.violations(rig.id) == []


@pytest.mark.expected_errors  # "firmware image.bin refused before the install"
async def test_plain_update_firmware_refused_by_the_verify_command(
        rig: Rig, files: FileServer, tmp_path: Path) -> None:  # noqa: F811
    """1.6's FirmwareStatus has no InstallVerificationFailed: Downloaded -> InstallationFailed,
    never Installing, the file never handed to the installer, no restart."""
    verify = _script(tmp_path, "verify.sh", "exit 1")
    await rig.start_gateway(firmware_install_command=f"cp -t {tmp_path}",
                            firmware_verify_command=verify)
    await rig.csms.wait_for(rig.id, "BootNotification")
    await rig.csms.send(rig.id, call.UpdateFirmware(
        location=f"http://127.0.0.1:{files.port}/fw/image.bin", retrieve_date=when()))
    await rig.csms.wait_for(rig.id, "FirmwareStatusNotification",
                            where=lambda p: p["status"] == "InstallationFailed")
    assert [m.payload["status"] for m in rig.csms.received(rig.id, "FirmwareStatusNotification")
            ] == ["Downloading", "Downloaded", "InstallationFailed"]
    assert not (tmp_path / "image.bin").exists()
    assert rig.gateway is not None
    assert not rig.gateway.reset_done
    assert rig.csms.violations(rig.id) == []
