# syntax=docker/dockerfile:1.7
# One image for every voltbus service; compose picks the service with its command:
#   python -m voltbus_hardware | voltbus_ocpp | voltbus_recorder | voltbus_api | voltbus_devcsms | voltbus_energy
# Multi-arch: docker buildx build --platform linux/arm64,linux/amd64 -t voltbus:latest .
# Every locked dependency ships pure-Python or manylinux wheels for both arches (pydantic-core,
# argon2-cffi, reportlab, ...); only the Pi I/O libraries below need a compiler, on arm64.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The uv that wrote uv.lock (a newer lock format is not readable by an older uv).
ARG UV_VERSION=0.13

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# --- build: resolve from uv.lock into /opt/venv ---------------------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src

# Third-party dependencies first: this layer is reused until uv.lock or a pyproject changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=common/pyproject.toml,target=common/pyproject.toml \
    --mount=type=bind,source=services/hardware/pyproject.toml,target=services/hardware/pyproject.toml \
    --mount=type=bind,source=services/ocpp-gateway/pyproject.toml,target=services/ocpp-gateway/pyproject.toml \
    --mount=type=bind,source=services/recorder/pyproject.toml,target=services/recorder/pyproject.toml \
    --mount=type=bind,source=services/api/pyproject.toml,target=services/api/pyproject.toml \
    --mount=type=bind,source=services/dev-csms/pyproject.toml,target=services/dev-csms/pyproject.toml \
    --mount=type=bind,source=services/energy/pyproject.toml,target=services/energy/pyproject.toml \
    uv sync --frozen --no-dev --no-install-workspace

# Then voltbus itself, installed as regular (non-editable) packages so /src is not needed later.
COPY . /src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# Raspberry Pi I/O libraries the hardware drivers import only on a Pi (GPIO via lgpio, MFRC522
# via spidev, PN532 on I2C via smbus2). They are not in uv.lock (the hardware package does not
# declare them), so they are pinned here; spidev builds from source, hence gcc in this stage only.
# Set PI_LIBS="" to leave them out.
ARG TARGETARCH
ARG PI_LIBS="lgpio==0.2.2.0 spidev==3.8 smbus2==0.6.1"
RUN --mount=type=cache,target=/root/.cache/uv \
    if [ "$TARGETARCH" = "arm64" ] && [ -n "$PI_LIBS" ]; then \
        apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
        && uv pip install --python /opt/venv/bin/python $PI_LIBS \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# --- runtime: the venv, a non-root user, nothing else ----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VOLTBUS_UID=10001
RUN groupadd --system --gid ${VOLTBUS_UID} voltbus \
 && useradd --system --uid ${VOLTBUS_UID} --gid voltbus --no-create-home \
        --home-dir /var/lib/voltbus --shell /usr/sbin/nologin voltbus \
 && mkdir -p /var/lib/voltbus/hardware /var/lib/voltbus/gateway /var/lib/voltbus/recorder \
        /var/lib/voltbus/api /var/lib/voltbus/energy /etc/voltbus \
 && chown -R voltbus:voltbus /var/lib/voltbus
COPY --from=build /opt/venv /opt/venv
# The broker's first-start generator (run as root by the mosquitto-init service).
COPY mosquitto/init_broker.py /opt/voltbus/init_broker.py

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VOLTBUS_DATA_DIR=/var/lib/voltbus
WORKDIR /var/lib/voltbus
USER voltbus
# compose mounts a named volume on each service's directory; an empty named volume takes this
# ownership from the image on first use, so the non-root user can write there.
CMD ["python", "-m", "voltbus_api"]
