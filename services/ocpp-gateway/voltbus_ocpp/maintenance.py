"""Firmware Management: GetDiagnostics uploads a real archive, UpdateFirmware downloads at the
retrieve date (with retries) and hands the file to an install hook; both report their progress
with DiagnosticsStatusNotification / FirmwareStatusNotification.

Transfers use the standard library in a thread: http(s) and ftp for downloads, HTTP PUT and ftp
STOR for uploads.
"""

from __future__ import annotations

import asyncio
import ftplib
import io
import json
import logging
import shlex
import subprocess
import tarfile
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)


class LogRing(logging.Handler):
    """The last log records, for the diagnostics archive (the service logs to stderr)."""

    def __init__(self, size: int = 5000) -> None:
        super().__init__(logging.INFO)
        self.records: deque[tuple[float, str]] = deque(maxlen=size)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the formatted record."""
        self.records.append((record.created, self.format(record)))

    def between(self, start: datetime | None, stop: datetime | None) -> str:
        """The kept lines within [start, stop]."""
        lo = start.timestamp() if start else 0.0
        hi = stop.timestamp() if stop else float("inf")
        return "\n".join(line for at, line in self.records if lo <= at <= hi) + "\n"


def build_archive(files: dict[str, str]) -> bytes:
    """A tar.gz holding the given text files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload(location: str, file_name: str, data: bytes, timeout_s: float = 60) -> None:
    """Put the file at location (http/https: PUT location/file_name; ftp: STOR)."""
    url = urlparse(location)
    if url.scheme in ("http", "https"):
        target = location.rstrip("/") + "/" + file_name
        request = urllib.request.Request(target, data=data, method="PUT",
                                         headers={"Content-Type": "application/gzip"})
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            if answer.status >= 300:
                raise OSError(f"upload answered HTTP {answer.status}")
        return
    if url.scheme == "ftp":
        with ftplib.FTP() as ftp:
            ftp.connect(url.hostname or "", url.port or 21, timeout=timeout_s)
            ftp.login(url.username or "anonymous", url.password or "")
            if url.path.strip("/"):
                ftp.cwd(url.path)
            ftp.storbinary(f"STOR {file_name}", io.BytesIO(data))
        return
    raise ValueError(f"unsupported upload scheme {url.scheme!r}")


VERIFY_FAILED_EXIT = 65  # sysexits EX_DATAERR: the install hook found the image bad


def verify_image(command: str | None, image: Path) -> str | None:
    """Run VOLTBUS_FIRMWARE_VERIFY_COMMAND on the image; why it refused it, or None (also
    when no command is set)."""
    if not command:
        return None
    try:
        done = subprocess.run([*shlex.split(command), str(image)], check=False,
                              capture_output=True, text=True, timeout=600)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return f"the verify command could not run: {exc}"
    if done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip().splitlines()
        return f"the verify command exited {done.returncode}" + (
            f": {detail[-1][:200]}" if detail else "")
    return None


def download(location: str, target: Path, timeout_s: float = 300) -> None:
    """Fetch location (http, https or ftp) into target."""
    if urlparse(location).scheme not in ("http", "https", "ftp"):
        raise ValueError(f"unsupported download scheme in {location!r}")
    with urllib.request.urlopen(location, timeout=timeout_s) as answer:
        target.write_bytes(answer.read())


class Maintenance:
    """Diagnostics and firmware jobs of one station."""

    def __init__(self, station: str, work_dir: Path, *, report: Callable[[str, str], None],
                 snapshot: Callable[[], dict[str, str]], ring: LogRing,
                 install_command: str | None, time_scale: float = 1.0,
                 verify_command: str | None = None,
                 idle: Callable[[], bool] = lambda: True,
                 installed: Callable[[], None] | None = None,
                 hold: Callable[[bool], None] = lambda _on: None) -> None:
        self.station = station
        self.idle = idle  # no transaction runs: the install may start
        self.installed = installed  # the hook succeeded: restart; Installed follows the boot
        self.hold = hold  # True: no new session until the install (idle connectors Unavailable)
        self.work_dir = work_dir
        self.report = report
        self.snapshot = snapshot
        self.ring = ring
        self.install_command = install_command
        self.verify_command = verify_command
        self.time_scale = time_scale
        self.diagnostics_status = "Idle"
        self.firmware_status = "Idle"

    def _diag(self, status: str) -> None:
        self.diagnostics_status = status
        self.report("diagnostics", status)

    def _firmware(self, status: str) -> None:
        self.firmware_status = status
        self.report("firmware", status)

    def diagnostics_name(self) -> str:
        """The file name GetDiagnostics answers with."""
        return f"diagnostics-{self.station}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.tar.gz"

    async def diagnostics(self, location: str, file_name: str, retries: int,
                          retry_interval_s: int, start: datetime | None,
                          stop: datetime | None) -> None:
        """Build the archive and upload it, retrying; Uploaded or UploadFailed."""
        files = {"log.txt": self.ring.between(start, stop), **self.snapshot()}
        data = build_archive(files)
        for attempt in range(max(1, retries + 1)):
            self._diag("Uploading")
            try:
                await asyncio.to_thread(upload, location, file_name, data)
            except (OSError, ValueError, ftplib.Error) as exc:
                log.warning("%s: diagnostics upload to %s failed (attempt %d): %s",
                            self.station, location, attempt + 1, exc)
                await asyncio.sleep(retry_interval_s * self.time_scale)
                continue
            self._diag("Uploaded")
            return
        self._diag("UploadFailed")

    async def firmware(self, location: str, retrieve_at: datetime, retries: int,
                       retry_interval_s: int) -> None:
        """Wait for the retrieve date, download with retries, run the install hook."""
        delay = (retrieve_at - datetime.now(UTC)).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        target = self.work_dir / (Path(urlparse(location).path).name or "firmware.bin")
        for attempt in range(max(1, retries + 1)):
            self._firmware("Downloading")
            try:
                await asyncio.to_thread(download, location, target)
                break
            except (OSError, ValueError) as exc:
                log.warning("%s: firmware download from %s failed (attempt %d): %s",
                            self.station, location, attempt + 1, exc)
                await asyncio.sleep(retry_interval_s * self.time_scale)
        else:
            self._firmware("DownloadFailed")
            return
        self._firmware("Downloaded")
        if not self.install_command:
            log.warning("%s: firmware %s downloaded; no VOLTBUS_FIRMWARE_INSTALL_COMMAND set",
                        self.station, target)
            self._firmware("InstallationFailed")
            return
        refused = await asyncio.to_thread(verify_image, self.verify_command, target)
        if refused:  # 1.6's FirmwareStatus has no InstallVerificationFailed: InstallationFailed
            log.error("%s: firmware %s refused before the install: %s", self.station,
                      target.name, refused)
            target.unlink(missing_ok=True)
            self._firmware("InstallationFailed")
            return
        self.hold(True)  # 5.19: connectors not in use Unavailable while it waits
        if not self.idle():  # installing stops charging, so it waits for the sessions
            log.warning("%s: firmware %s downloaded; installing once no transaction runs "
                        "(no new session meanwhile)", self.station, target.name)
            while True:  # polled: a transaction's end is a model state, not an event here
                await asyncio.sleep(0.1)
                if self.idle():
                    break
        self._firmware("Installing")
        done = await asyncio.to_thread(subprocess.run, [*shlex.split(self.install_command),
                                                        str(target)], check=False)
        if done.returncode != 0:
            log.warning("%s: firmware install hook exited %d", self.station, done.returncode)
            self.hold(False)
            self._firmware("InstallationFailed")
        elif self.installed is None:
            self.hold(False)
            self._firmware("Installed")
        else:  # the new firmware runs after the restart: Installed follows its BootNotification
            log.warning("%s: firmware %s installed; restarting", self.station, target.name)
            self.installed()


def snapshot_files(config: dict[str, str], queued: list[dict[str, Any]],
                   statuses: dict[int, str]) -> dict[str, str]:
    """The state files of the diagnostics archive."""
    return {"config.json": json.dumps(config, indent=2),
            "outbox.json": json.dumps(queued, indent=2),
            "connectors.json": json.dumps(statuses, indent=2)}
