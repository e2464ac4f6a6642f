"""OpenEVSE over RAPI (serial): state ($GS), current capacity ($SC), enable/sleep ($FE/$FS),
current and voltage ($GG), energy ($GU), XOR checksums, and the board's asynchronous `$AT`.

A reader thread owns the port's input: `$OK`/`$NK` lines answer the pending command, `$AT`/`$ST`
lines are state changes that wake the controller at once. Commands are serialised by a lock
and run in a thread. A wrong checksum is retried once; no answer raises DeviceUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Self

import serial

from voltbus_common.enums import ChargePointErrorCode, PilotState
from voltbus_common.models import MeterReading
from voltbus_hardware.config import OpenEvseConfig
from voltbus_hardware.drivers.base import DeviceUnavailable, EvseStatus

log = logging.getLogger(__name__)
E = ChargePointErrorCode
SLEEPING, DISABLED = 0xFE, 0xFF
# EVSE_STATE_xxx -> (pilot, error, info); 1..4 are the J1772 states themselves.
STATES: dict[int, tuple[PilotState, ChargePointErrorCode, str | None]] = {
    1: (PilotState.A, E.NO_ERROR, None), 2: (PilotState.B, E.NO_ERROR, None),
    3: (PilotState.C, E.NO_ERROR, None), 4: (PilotState.D, E.NO_ERROR, None),
    5: (PilotState.F, E.EV_COMMUNICATION_ERROR, "diode check failed"),
    6: (PilotState.F, E.GROUND_FAILURE, "GFI tripped"),
    7: (PilotState.F, E.GROUND_FAILURE, "no ground"),
    8: (PilotState.F, E.POWER_SWITCH_FAILURE, "stuck relay"),
    9: (PilotState.F, E.GROUND_FAILURE, "GFI self test failed"),
    10: (PilotState.F, E.HIGH_TEMPERATURE, "over temperature"),
    11: (PilotState.F, E.OVER_CURRENT_FAILURE, "over current"),
}


def checksum(body: str) -> str:
    """RAPI's XOR checksum: two hex digits over every character before '^'."""
    value = 0
    for char in body.encode():
        value ^= char
    return f"{value:02X}"


def frame(command: str) -> bytes:
    """`$GS` -> b'$GS^30\\r'."""
    return f"{command}^{checksum(command)}\r".encode()


def parse_line(line: str) -> tuple[str, list[str]] | None:
    """(kind, fields) of a board line, or None when its checksum is wrong."""
    body, sep, given = line.partition("^")
    if sep and checksum(body) != given.strip().upper()[:2]:
        return None
    parts = body.split()
    return parts[0], parts[1:]


class RapiLink:
    """The serial port to one board: request/response plus asynchronous notifications."""

    def __init__(self, port: str, *, baudrate: int = 115200, timeout_s: float = 1.0) -> None:
        self.port, self.baudrate, self.timeout_s = port, baudrate, timeout_s
        self.on_async: Callable[[str, list[str]], None] | None = None
        self._serial: serial.Serial | None = None
        self._replies: queue.Queue[tuple[str, list[str]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None

    def _open(self) -> serial.Serial:
        if self._serial is None:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=0.05)
            self._stop.clear()
            self._reader = threading.Thread(target=self._read_loop, args=(self._serial,),
                                            name=f"rapi-{self.port}", daemon=True)
            self._reader.start()
        return self._serial

    def _read_loop(self, port: serial.Serial) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                buffer += port.read(64)
            except (serial.SerialException, OSError, TypeError):
                return  # closed or unplugged: the next command reopens
            while b"\r" in buffer:
                raw, buffer = buffer.split(b"\r", 1)
                self._on_line(raw.decode(errors="replace").strip())

    def _on_line(self, line: str) -> None:
        if not line.startswith("$"):
            return
        parsed = parse_line(line)
        if parsed is None:
            log.debug("RAPI %s: bad checksum: %r", self.port, line)
            if line.startswith(("$OK", "$NK")):
                self._replies.put(None)
            return
        if parsed[0] in ("$OK", "$NK"):
            self._replies.put(parsed)
        elif self.on_async is not None:
            self.on_async(*parsed)

    def request(self, command: str) -> list[str]:
        """Send a command, return the `$OK` fields (blocking; call in a thread)."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    port = self._open()
                    while not self._replies.empty():
                        self._replies.get_nowait()
                    port.write(frame(command))
                    reply = self._replies.get(timeout=self.timeout_s)
                except queue.Empty:
                    raise DeviceUnavailable(f"OpenEVSE: no answer to {command}",
                                            E.INTERNAL_ERROR) from None
                except (serial.SerialException, OSError) as exc:
                    self.close()
                    raise DeviceUnavailable(f"OpenEVSE: port {self.port}: {exc.strerror or exc}",
                                            E.INTERNAL_ERROR) from exc
                if reply is None:  # bad checksum: ask once more
                    if attempt == 2:
                        raise DeviceUnavailable(f"OpenEVSE: bad checksum on {command}",
                                                E.INTERNAL_ERROR)
                    continue
                kind, fields = reply
                if kind == "$NK":
                    raise RapiRefused(command, fields)
                return fields
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the reader and close the port."""
        self._stop.set()
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(1)
        self._serial, self._reader = None, None


class RapiRefused(DeviceUnavailable):
    """The board answered $NK."""

    def __init__(self, command: str, fields: list[str]) -> None:
        super().__init__(f"OpenEVSE refused {command} ({' '.join(fields)})", E.OTHER_ERROR)
        self.fields = fields


class OpenEvse:
    """An OpenEVSE board: pilot and faults, current capacity, enable/sleep."""

    def __init__(self, link: RapiLink) -> None:
        self.link = link
        self._enabled = False
        self._paused = False
        self._wake: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        link.on_async = self._on_async

    @classmethod
    def from_config(cls, cfg: OpenEvseConfig) -> Self:
        """From an `evse: {type: openevse, port: ...}` entry."""
        return cls(RapiLink(cfg.port, baudrate=cfg.baudrate, timeout_s=cfg.timeout_s))

    async def _ask(self, command: str) -> list[str]:
        self._loop = asyncio.get_running_loop()
        return await asyncio.to_thread(self.link.request, command)

    async def status(self) -> EvseStatus:
        """$GS: EVSE state (hex), elapsed, pilot state (hex), vflags."""
        fields = await self._ask("$GS")
        try:
            state = int(fields[0], 16)
            pilot_code = int(fields[2], 16) if len(fields) > 2 else None
        except (IndexError, ValueError):
            raise DeviceUnavailable(f"OpenEVSE: bad $GS answer {fields}",
                                    E.INTERNAL_ERROR) from None
        if state in (SLEEPING, DISABLED):
            if pilot_code is None:  # older firmware: ask whether an EV is connected
                connected = (await self._ask("$G0"))[0] == "1"
                return EvseStatus(PilotState.B if connected else PilotState.A)
            pilot = STATES.get(pilot_code, (PilotState.A, E.NO_ERROR, None))[0]
            return EvseStatus(PilotState.B if pilot in (PilotState.C, PilotState.D) else pilot)
        if state not in STATES:
            return EvseStatus(PilotState.F, E.OTHER_ERROR, f"OpenEVSE state {state:#x}")
        return EvseStatus(*STATES[state])

    async def set_enabled(self, enabled: bool) -> None:
        """$FE enables charging, $FS sleeps (relay open, pilot stays)."""
        self._enabled = enabled
        await self._apply()

    async def set_current_limit(self, amps: float) -> None:
        """$SC amps V (volatile: no EEPROM wear); 0 pauses by sleeping the board."""
        self._paused = amps == 0
        if amps > 0:
            await self._ask(f"$SC {int(amps)} V")
        await self._apply()

    async def _apply(self) -> None:
        await self._ask("$FE" if self._enabled and not self._paused else "$FS")

    def _on_async(self, kind: str, fields: list[str]) -> None:
        if kind in ("$AT", "$ST") and self._wake is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def set_wake(self, wake: Callable[[], None]) -> None:
        """Poll at once when the board announces a state change ($AT)."""
        self._wake = wake

    def close(self) -> None:
        """Close the serial port."""
        self.link.close()


class OpenEvseMeter:
    """The board's own ammeter/voltmeter ($GG) and energy counter ($GU), single phase."""

    def __init__(self, evse: OpenEvse) -> None:
        self.evse = evse

    async def read(self) -> MeterReading:
        """A reading; DeviceUnavailable when the board lacks the ammeter or voltmeter."""
        try:
            milliamps, millivolts = (int(x) for x in (await self.evse._ask("$GG"))[:2])
            wattseconds, wh_total = (int(x) for x in (await self.evse._ask("$GU"))[:2])
        except DeviceUnavailable as exc:
            raise DeviceUnavailable(str(exc), E.POWER_METER_FAILURE) from exc
        except ValueError:
            raise DeviceUnavailable("OpenEVSE: bad $GG/$GU answer", E.POWER_METER_FAILURE) from None
        if milliamps < 0 or millivolts < 0:
            raise DeviceUnavailable("OpenEVSE has no ammeter/voltmeter", E.POWER_METER_FAILURE)
        amps, volts = milliamps / 1000, millivolts / 1000
        return MeterReading(energy_wh=wh_total + wattseconds / 3600, power_w=round(amps * volts, 1),
                            current_a=[amps], voltage_v=[volts])
