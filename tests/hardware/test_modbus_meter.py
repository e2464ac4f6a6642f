"""The generic Modbus meter driver (minimalmodbus) against a pymodbus RTU server on a pty."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pymodbus.simulator import DataType, SimData

from tests.fixtures.modbus_slave import MeterValues, ModbusSlave
from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import FAST, rig
from voltbus_common.enums import ChargePointErrorCode
from voltbus_common.settings import ConfigError
from voltbus_hardware.config import parse_station
from voltbus_hardware.drivers.base import DeviceUnavailable
from voltbus_hardware.drivers.modbus_meter import ModbusLine, ModbusMeter, RegisterMap
from voltbus_hardware.registry import build_station

THREE = MeterValues()
ONE = MeterValues(voltage_v=(231.5,), current_a=(6.5,), power_w=1504.75, energy_kwh=42.125)


def meter(slave: ModbusSlave, address: int, model: str) -> ModbusMeter:
    return ModbusMeter(ModbusLine(slave.port, baudrate=19200, timeout_s=0.2), address,
                       RegisterMap.load(model))


@pytest.mark.parametrize("model", ["eastron_sdm630", "eastron_sdm72d", "abb_b23"])
async def test_three_phase_models(modbus_slave: ModbusSlave, model: str) -> None:
    await modbus_slave.start({7: (model, THREE)})
    reading = await meter(modbus_slave, 7, model).read()
    assert reading.voltage_v == pytest.approx(list(THREE.voltage_v), abs=0.01)
    assert reading.current_a == pytest.approx(list(THREE.current_a), abs=0.01)
    assert reading.power_w == pytest.approx(THREE.power_w, abs=0.01)
    assert reading.energy_wh == pytest.approx(THREE.energy_kwh * 1000, abs=0.5)


async def test_single_phase_sdm120(modbus_slave: ModbusSlave) -> None:
    await modbus_slave.start({1: ("eastron_sdm120", ONE)})
    reading = await meter(modbus_slave, 1, "eastron_sdm120").read()
    assert reading.voltage_v == [231.5]
    assert reading.current_a == [6.5]
    assert reading.power_w == 1504.75
    assert reading.energy_wh == 42125.0


async def test_several_meters_on_one_bus_by_address(modbus_slave: ModbusSlave) -> None:
    await modbus_slave.start({1: ("eastron_sdm630", THREE), 2: ("eastron_sdm120", ONE),
                              3: ("abb_b23", MeterValues(energy_kwh=7.77))})
    line = ModbusLine(modbus_slave.port, baudrate=19200, timeout_s=0.2)
    meters = [ModbusMeter(line, 1, RegisterMap.load("eastron_sdm630")),
              ModbusMeter(line, 2, RegisterMap.load("eastron_sdm120")),
              ModbusMeter(line, 3, RegisterMap.load("abb_b23"))]
    readings = await asyncio.gather(*(m.read() for m in meters))  # the line serialises them
    assert [r.energy_wh for r in readings] == pytest.approx([1234500.0, 42125.0, 7770.0])
    assert len(readings[1].current_a) == 1
    line.close()


async def test_generic_meter_from_a_register_map_file(modbus_slave: ModbusSlave,
                                                      tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "name: my meter\nfunction_code: 3\nword_order: little\nvalues:\n"
        "  voltage_v: [{address: 100, type: uint16, scale: 0.1}]\n"
        "  current_a: [{address: 101, type: int16, scale: 0.01}]\n"
        "  power_w: {address: 110, type: int32}\n"
        "  energy_wh: {address: 200, type: uint32, scale: 10, function_code: 4}\n")
    # little word order: low word first
    await modbus_slave.start({5: [
        SimData(100, values=[2299, 1234], datatype=DataType.UINT16),
        SimData(110, values=[0x0B40, 0x0000], datatype=DataType.UINT16),   # 2880 W
        SimData(200, values=[0x5BA0, 0x0001], datatype=DataType.UINT16),   # 0x15BA0 * 10 Wh
    ]})
    reading = await meter(modbus_slave, 5, str(tmp_path / "mine.yaml")).read()
    assert reading.voltage_v == [229.9]
    assert reading.current_a == [12.34]
    assert reading.power_w == 2880
    assert reading.energy_wh == 0x15BA0 * 10


@pytest.mark.parametrize(("fault", "reason"), [("silent", "no answer"), ("crc", "CRC error")])
async def test_faults_raise_device_unavailable(modbus_slave: ModbusSlave, fault: str,
                                               reason: str) -> None:
    await modbus_slave.start({1: ("eastron_sdm630", THREE)})
    m = meter(modbus_slave, 1, "eastron_sdm630")
    await m.read()
    modbus_slave.fault = fault
    with pytest.raises(DeviceUnavailable) as caught:
        await m.read()
    assert caught.value.code is ChargePointErrorCode.POWER_METER_FAILURE
    assert reason in str(caught.value)
    modbus_slave.fault = None
    assert (await m.read()).energy_wh == 1234500.0


async def test_missing_port_is_unavailable_not_a_crash() -> None:
    m = ModbusMeter(ModbusLine("/dev/ttyNOPE0"), 1, RegisterMap.load("eastron_sdm630"))
    with pytest.raises(DeviceUnavailable, match="serial port unavailable"):
        await m.read()


def test_unknown_model_is_a_wrapped_config_error() -> None:
    cfg = parse_station({"serial": {"rs485": {"port": "/dev/ttyUSB0"}}, "connectors": [
        {"evse": {"type": "sim"}, "relay": {"type": "sim"},
         "meter": {"type": "modbus", "model": "sdm999", "bus": "rs485", "address": 3}}]})
    with pytest.raises(ConfigError) as caught:
        build_station(cfg, "CP1")
    assert str(caught.value).startswith(
        "cannot create meter type 'modbus' (connectors[0].meter): unknown meter model 'sdm999'")


@pytest.mark.expected_errors
async def test_service_reports_meter_failure_retries_with_backoff_and_recovers(
    modbus_slave: ModbusSlave, mosquitto: Broker, station: str
) -> None:
    await modbus_slave.start({2: ("eastron_sdm630", THREE)})
    cfg = parse_station({
        "serial": {"rs485": {"port": modbus_slave.port, "baudrate": 19200, "timeout_s": 0.1}},
        "connectors": [{"evse": {"type": "sim"}, "relay": {"type": "sim"},
                        "meter": {"type": "modbus", "model": "eastron_sdm630", "bus": "rs485",
                                  "address": 2}}]})
    async with rig(mosquitto, station, hardware=build_station(cfg, station)) as r:
        w = r.watches
        first = await w["meter"].next()
        assert first.payload.energy_wh == 1234500.0
        modbus_slave.fault = "silent"
        err = await w["error"].until(lambda m: m.payload.code != "NoError")
        w["meter"].drain()
        asked = modbus_slave.requests
        await asyncio.sleep(1.0)
        assert w["meter"].drain() == []  # never a made-up reading
        # meter interval 0.1 s: without backoff ~10 requests a second; with it, a few
        assert modbus_slave.requests - asked <= 4
        modbus_slave.fault = None
        cleared = await w["error"].until(lambda m: m.payload.code == "NoError", within=5)
        back = await w["meter"].next()
    assert err.payload.code is ChargePointErrorCode.POWER_METER_FAILURE
    assert "no answer" in (err.payload.info or "")
    assert cleared.payload.info is None
    assert back.payload.energy_wh == 1234500.0
    assert FAST.meter_interval_s == 0.1
