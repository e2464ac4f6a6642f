"""A SmartEVSE v3's C2 output as the 1p/3p phase switch, through the board's REST API.

The SmartEVSE-3 firmware drives a second contactor (C2, on L2/L3) by its `enable_C2` setting:
`POST /settings?enable_C2=3` ("Always On": 3 phases) or `=1` ("Always Off": 1 phase), read back
from `GET /settings` as `settings.enable_C2`. The board applies C2 at its next change to state C
(charging), so a switch made while no current flows (which phase_switches.py guarantees) takes
effect when the car charges again: the IEC pause the energy manager runs around the switch.
The setting is only believed once `GET /settings` shows it (the confirmation, as the GPIO
contactor's auxiliary contact is). The API has no authentication: it belongs on the LAN only.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any, Self

from voltbus_common.enums import ChargePointErrorCode
from voltbus_hardware.config import SmartEvseC2Config
from voltbus_hardware.drivers.base import DeviceUnavailable

ALWAYS_OFF, ALWAYS_ON = 1, 3  # the firmware's enable_C2 codes for 1 and 3 phases
POLL_S = 0.1
MAX_BODY = 64 * 1024  # /settings is about 1.5 KB


class SmartEvseC2:
    """C2 through `enable_C2`; settings other than Always On/Off count as 3 phases (the most
    the board may use, so the fuse guard is never short) until voltbus switches."""

    def __init__(self, url: str, *, timeout_s: float = 3.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    @classmethod
    def from_config(cls, cfg: SmartEvseC2Config) -> Self:
        """From a `phase_switch: {type: smartevse_c2, url: ...}` entry."""
        return cls(cfg.url, timeout_s=cfg.timeout_s)

    def _request(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(self.url + path, method=method,
                                         data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                body = answer.read(MAX_BODY + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeviceUnavailable(f"SmartEVSE {method} {path}: {reason}") from exc
        if len(body) > MAX_BODY:
            raise DeviceUnavailable(f"SmartEVSE {method} {path}: answer over {MAX_BODY} bytes")
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            raise DeviceUnavailable(f"SmartEVSE {method} {path}: not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise DeviceUnavailable(f"SmartEVSE {method} {path}: not a JSON object")
        return data

    async def _c2(self) -> str:
        data = await asyncio.to_thread(self._request, "GET", "/settings")
        setting = data.get("settings", {}) if isinstance(data.get("settings"), dict) else {}
        value = setting.get("enable_C2")
        if not isinstance(value, str):
            raise DeviceUnavailable("SmartEVSE GET /settings: no settings.enable_C2 (firmware "
                                    "without C2 support?)")
        return value

    async def phases(self) -> int:
        """1 for 'Always Off'; 3 for 'Always On' and for the settings the board decides by
        itself ('Solar Off', 'Auto') or 'Not present' (then L2/L3 are wired straight)."""
        return 1 if await self._c2() == "Always Off" else 3

    async def set_phases(self, phases: int) -> int:
        """Set enable_C2 and wait until the board reports it; DeviceUnavailable with
        PowerSwitchFailure when it does not within timeout_s, or when C2 is 'Not present'."""
        if (now := await self._c2()) == "Not present":
            raise DeviceUnavailable("SmartEVSE: C2 is 'Not present' (no second contactor "
                                    "configured on the board)",
                                    ChargePointErrorCode.POWER_SWITCH_FAILURE)
        want = "Always On" if phases == 3 else "Always Off"
        code = ALWAYS_ON if phases == 3 else ALWAYS_OFF
        loop = asyncio.get_running_loop()
        start = loop.time()
        if now != want:
            await asyncio.to_thread(self._request, "POST", f"/settings?enable_C2={code}")
        while (now := await self._c2()) != want:
            if loop.time() - start >= self.timeout_s:
                raise DeviceUnavailable(
                    f"SmartEVSE: enable_C2 still {now!r} after {self.timeout_s:g}s",
                    ChargePointErrorCode.POWER_SWITCH_FAILURE)
            await asyncio.sleep(POLL_S)
        return phases
