"""Grid meters on real Modbus peers: an Eastron SDM630/SDM72D grid map read by minimalmodbus from
a pymodbus RTU server on a pty, and SunSpec meters (201-204) and inverters (101-103) read by the
pymodbus client from a pymodbus TCP server on loopback. The register images here are written
from the makers' and SunSpec's documents, not from the maps under test."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from tests.fixtures.modbus_slave import ModbusSlave
from tests.fixtures.mosquitto import Broker, collector, running
from tests.fixtures.services import ServiceGroup, wait_online
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.devbroker import free_port
from voltbus_common.registermap import Register, decode, plan_blocks
from voltbus_energy.sources.base import GridReading, MeterUnavailable, Poller
from voltbus_energy.sources.modbus_grid import GridRegisterMap, ModbusGridMeter
from voltbus_energy.sources.sunspec import SunSpecDevice, SunSpecGridMeter, SunSpecInverter

F32 = DataType.FLOAT32


def sdm630_grid(current_a: tuple[float, float, float], phase_w: tuple[float, float, float]
                ) -> list[SimData]:
    """Eastron SDM630 input registers 30001..: volts, amps (magnitudes), phase watts (signed),
    ..., 30053 total system power."""
    return [
        SimData(0x0000, values=[230.2, 229.9, 231.1, *current_a, *phase_w], datatype=F32),
        SimData(0x0012, count=17, values=0.0, datatype=F32),
        SimData(0x0034, values=sum(phase_w), datatype=F32),
    ]


@pytest.mark.parametrize("model", ["eastron_sdm630", "eastron_sdm72d"])
async def test_modbus_rtu_grid_meter_signs_currents_by_phase_power(
        modbus_slave: ModbusSlave, model: str) -> None:
    # L2 exports (PV on L2): its power is negative, its current register a magnitude
    await modbus_slave.start({3: sdm630_grid((10.5, 4.25, 12.0), (2415.0, -977.5, 2760.0))})
    meter = ModbusGridMeter(modbus_slave.port, 3, GridRegisterMap.load(model), baudrate=19200,
                            timeout_s=0.3)
    reading = await meter.read()
    assert reading == GridReading(4197.5, (10.5, -4.25, 12.0))
    assert len(meter.blocks) == 1  # one request for the whole map (gaps read through)
    meter.close()


async def test_the_service_reads_its_grid_meter_over_rs485(
        modbus_slave: ModbusSlave, mosquitto: Broker, services: ServiceGroup,
        station: str) -> None:
    """`python -m voltbus_energy` with VOLTBUS_ENERGY_GRID=modbus: the reading is on energy/site."""
    await modbus_slave.start({5: sdm630_grid((3.0, 2.0, 1.0), (690.0, 460.0, -230.0))})
    site = f"S{station}"
    services.start("energy", {
        **mosquitto.env("energy"), "VOLTBUS_STATIONS": station, "VOLTBUS_ENERGY_SITE": site,
        "VOLTBUS_ENERGY_GRID": "modbus", "VOLTBUS_ENERGY_GRID_MODEL": "eastron_sdm72d",
        "VOLTBUS_ENERGY_GRID_SERIAL_PORT": modbus_slave.port,
        "VOLTBUS_ENERGY_GRID_BAUDRATE": "19200", "VOLTBUS_ENERGY_GRID_MODBUS_ADDRESS": "5"})
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    sites = collector(operator, ch.ENERGY_SITE, station=site)
    async with running(operator):
        await wait_online(mosquitto, site, ("energy",))
        for _ in range(50):
            msg = await asyncio.wait_for(sites.get(), 15)
            if msg.payload is not None and msg.payload.grid_power_w is not None:
                break
        else:
            raise AssertionError(services.logs())
        assert msg.payload.grid_power_w == 920.0
        assert msg.payload.grid_current_a == [3.0, 2.0, -1.0]
        assert not msg.payload.fail_safe


@pytest.mark.expected_errors
async def test_a_silent_grid_meter_delivers_nothing_and_recovers(
        modbus_slave: ModbusSlave, caplog: pytest.LogCaptureFixture) -> None:
    await modbus_slave.start({3: sdm630_grid((1.0, 1.0, 1.0), (230.0, 230.0, 230.0))})
    got: list[GridReading] = []
    poller = Poller(ModbusGridMeter(modbus_slave.port, 3, GridRegisterMap.load("eastron_sdm630"),
                                    baudrate=19200, timeout_s=0.2), period_s=0.05)
    poller.attach(None, got.append)  # type: ignore[arg-type]  # a polled meter needs no bus
    assert await poller.poll_once() is not None
    modbus_slave.fault = "silent"
    assert await poller.poll_once() is None
    modbus_slave.fault = "crc"
    assert await poller.poll_once() is None
    assert poller.failures == 2
    assert "grid meter: meter 3 on" in caplog.text
    modbus_slave.fault = None
    assert await poller.poll_once() == GridReading(690.0, (1.0, 1.0, 1.0))
    assert len(got) == 2
    assert poller.failures == 0


def test_grid_maps_and_shared_register_definitions() -> None:
    with pytest.raises(ValueError, match=r"unknown grid meter model 'nope'.*eastron_sdm630"):
        GridRegisterMap.load("nope")
    reg = Register(address=0, type="float32")
    assert decode([0x4128, 0x0000], reg, "big") == 10.5
    assert decode([0x0000, 0x4128], reg, "little") == 10.5
    assert plan_blocks([Register(address=0, type="int16"), Register(address=10, type="int32")],
                       4, max_gap=9) == [(4, 0, 12)]


# --- SunSpec over Modbus TCP ------------------------------------------------------------------


def s16(value: int) -> int:
    """An int16 as its register word."""
    return value & 0xFFFF


def text(value: str, words: int) -> list[int]:
    raw = value.encode().ljust(words * 2, b"\0")
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def common_model(maker: str, model: str) -> list[int]:
    """Model 1 (L = 66): Mn, Md, Opt, Vr, SN, DA, Pad."""
    body = text(maker, 16) + text(model, 16) + text("", 8) + text("1.2.3", 8) \
        + text("12345678", 16) + [1, 0]
    return [1, 66, *body]


def meter_model(model_id: int, amps: tuple[int, int, int, int], a_sf: int,
                watts: tuple[int, int, int, int], w_sf: int) -> list[int]:
    """Models 201-204 (L = 105): A, AphA, AphB, AphC, A_SF, PhV.. (8 + V_SF), Hz, Hz_SF,
    W, WphA, WphB, WphC, W_SF, then VA, VAR, PF and energies (left 'not implemented')."""
    body = [s16(a) for a in amps] + [s16(a_sf)]
    body += [2301, 2299, 2305, 2311, 3990, 3985, 3992, 3994, s16(-1)]  # volts, V_SF = -1
    body += [5000, s16(-2)]  # 50.00 Hz
    body += [s16(w) for w in watts] + [s16(w_sf)]
    body += [0x8000] * (105 - len(body))
    return [model_id, 105, *body]


def inverter_model(model_id: int, watts: int, w_sf: int) -> list[int]:
    """Models 101-103 (L = 50): A, AphA..C, A_SF, PPV x3, PhV x3, V_SF, W, W_SF, ..."""
    body = [2270, 757, 756, 757, s16(-2), 0xFFFF, 0xFFFF, 0xFFFF, 2301, 2299, 2305, s16(-1),
            s16(watts), s16(w_sf)]
    body += [0x8000] * (50 - len(body))
    return [model_id, 50, *body]


def sunspec_image(*models: list[int]) -> list[int]:
    return [0x5375, 0x6E53, *(w for m in models for w in m), 0xFFFF, 0]


@contextlib.asynccontextmanager
async def sunspec_server(devices: dict[int, tuple[int, list[int]]]) -> AsyncIterator[int]:
    """A pymodbus TCP server on loopback: unit id -> (base address, register image)."""
    port = free_port()
    server = ModbusTcpServer(
        [SimDevice(unit, simdata=[SimData(base, values=image, datatype=DataType.REGISTERS)])
         for unit, (base, image) in devices.items()], address=("127.0.0.1", port))
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.2)
    try:
        yield port
    finally:
        await server.shutdown()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


@pytest.mark.parametrize(("model_id", "expected"), [
    # wye meter, L2 exporting: the current's sign follows its phase power
    (203, GridReading(3986.0, (10.53, -4.2, 11.0))),
    (204, GridReading(3986.0, (10.53, -4.2, 11.0))),
    (201, GridReading(3986.0, (10.53, 0.0, 0.0))),  # single phase: all on L1
])
async def test_sunspec_meter_as_the_grid_meter(model_id: int, expected: GridReading) -> None:
    meter_regs = meter_model(model_id, (2733, 1053, 420, 1100), -2, (3986, 2422, -966, 2530), 0)
    image = sunspec_image(common_model("Fronius", "Smart Meter TS 65A-3"), meter_regs)
    async with sunspec_server({240: (40000, image)}) as port:
        device = SunSpecDevice("127.0.0.1", port, unit=240)
        assert await SunSpecGridMeter(device).read() == expected
        assert sorted(device.models) == [1, model_id]
        assert device.models[model_id].address == 40000 + 2 + 68 + 2
        assert device.name == "Fronius Smart Meter TS 65A-3"
        device.close()


async def test_sunspec_inverter_at_base_50000_and_a_meter_on_another_unit() -> None:
    inverter = sunspec_image(common_model("SolarEdge", "SE8K"), inverter_model(103, 523, 1))
    meter = sunspec_image(common_model("SolarEdge", "WND-3Y"),
                          meter_model(202, (100, 50, 50, 0x8000), -1, (-2300, -1150, -1150,
                                                                        0x8000), 0))
    async with sunspec_server({1: (50000, inverter), 2: (0, meter)}) as port:
        pv = SunSpecInverter(SunSpecDevice("127.0.0.1", port, unit=1))
        assert await pv.read_power_w() == 5230.0
        grid = SunSpecGridMeter(SunSpecDevice("127.0.0.1", port, unit=2))
        # split phase, exporting: both currents negative, L3 not implemented (0)
        assert await grid.read() == GridReading(-2300.0, (-5.0, -5.0, 0.0))
        with pytest.raises(MeterUnavailable, match=r"none of the models \(201, 202, 203, 204\)"):
            await SunSpecGridMeter(pv.device).read()
        pv.device.close()
        grid.device.close()


@pytest.mark.expected_errors
async def test_sunspec_server_gone_then_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    image = sunspec_image(common_model("Fronius", "TS"), meter_model(
        203, (300, 100, 100, 100), -1, (690, 230, 230, 230), 0))
    async with sunspec_server({1: (40000, image)}) as port:
        device = SunSpecDevice("127.0.0.1", port, unit=1, timeout_s=0.5)
        poller = Poller(SunSpecGridMeter(device), period_s=0.05, name="SunSpec grid meter")
        got: list[GridReading] = []
        poller.attach(None, got.append)  # type: ignore[arg-type]
        assert await poller.poll_once() == GridReading(690.0, (10.0, 10.0, 10.0))
    assert await poller.poll_once() is None  # the server is gone
    assert "SunSpec grid meter: SunSpec 127.0.0.1" in caplog.text
    server = ModbusTcpServer([SimDevice(1, simdata=[SimData(40000, values=image,
                                                            datatype=DataType.REGISTERS)])],
                             address=("127.0.0.1", port))
    task = asyncio.create_task(server.serve_forever())
    try:
        await asyncio.sleep(0.2)
        assert await poller.poll_once() == GridReading(690.0, (10.0, 10.0, 10.0))
        assert len(got) == 2
    finally:
        device.close()
        await server.shutdown()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
