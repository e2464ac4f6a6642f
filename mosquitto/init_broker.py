"""Writes Mosquitto's password file, ACL and optional TLS listener for the compose stack.

Run by the `mosquitto-init` compose service (the voltbus image, as root) before the broker
starts, on every `docker compose up`: a password changed in .env or a contract change in a new
image takes effect with the next start, and nothing generated is ever committed.

Inputs:  /run/secrets/mqtt_<user> for every voltbus MQTT user (compose secrets from .env);
         VOLTBUS_ROOT (topic root); VOLTBUS_HA_PREFIX (HA's discovery prefix, when not
         `homeassistant`); /mosquitto/certs/server.{crt,key} (+ ca.crt) for TLS, or else,
         with VOLTBUS_TLS_DIR set (compose does), certificates generated there from a private
         CA (voltbus_api/tlsgen.py): mqtt-server.* for the broker, api-server.* for the API
         (owned by VOLTBUS_API_USER by name, else VOLTBUS_API_UID), named localhost, mosquitto,
         api and VOLTBUS_TLS_NAMES.
Outputs: /mosquitto/generated/{passwd,acl,healthcheck,conf.d/tls.conf}, owned by the broker's
         user (uid 1883 in eclipse-mosquitto; VOLTBUS_BROKER_USER=mosquitto on Debian), mode 0600.
A site broker that Pis bridge to: one file per Pi in /mosquitto/bridges/*.json (written by
`voltbus bridge --site-file` on the Pi: its bridge-<name> user, the password's hash only and its
stations); each gets a password entry and the least ACL its bridge needs
(voltbus_common.bridge.render_site_acl). A bad file is left out with a message, not fatal.
The VOLTBUS_BROKER_{SECRETS,OUT,CERTS,BRIDGES}_DIR variables move these paths (deploy/systemd does).
The `healthcheck` user gets a fresh random password on every run and may read only
`$SYS/broker/uptime`: the broker's healthcheck subscribes to it, so "healthy" means
"accepts a password login and serves a subscription", not just "the port is open".
"""

from __future__ import annotations

import os
import pwd
import secrets
import sys
from pathlib import Path

from voltbus_common.bridge import site_users
from voltbus_common.broker import password_entry, render_acl
from voltbus_common.channels import ALL_USERS, DEFAULT_ROOT


def broker_uid() -> int:
    """The broker's user: VOLTBUS_BROKER_USER by name (Debian: mosquitto), else uid 1883."""
    name = os.environ.get("VOLTBUS_BROKER_USER")
    return pwd.getpwnam(name).pw_uid if name else int(os.environ.get("VOLTBUS_BROKER_UID", "1883"))

def api_uid() -> int:
    """The API's user, who must read api-server.key: VOLTBUS_API_USER by name (the systemd
    install: voltbus), else VOLTBUS_API_UID (the image's voltbus user, 10001)."""
    name = os.environ.get("VOLTBUS_API_USER")
    return pwd.getpwnam(name).pw_uid if name else int(os.environ.get("VOLTBUS_API_UID", "10001"))


HEALTHCHECK_USER = "healthcheck"
HA_DEFAULT_PREFIX = "homeassistant"
HA_USERS = ("api", "gateway", "homeassistant")  # who may write discovery (as in render_acl)


def _env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name, default))


def read_passwords(secrets_dir: Path, users: tuple[str, ...] = ALL_USERS) -> dict[str, str]:
    """Every user's password from secrets_dir/mqtt_<user>; SystemExit naming what is missing."""
    passwords, missing = {}, []
    for user in users:
        path = secrets_dir / f"mqtt_{user}"
        try:
            password = path.read_text().strip()
        except OSError:
            password = ""
        if len(password) < 12:
            missing.append(f"mqtt_{user}")
        passwords[user] = password
    if missing:
        raise SystemExit(f"init_broker: missing or too short (< 12 characters) MQTT passwords: "
                         f"{', '.join(missing)} in {secrets_dir} (set them in .env)")
    return passwords


def generated_tls(tls_dir: Path, names: str) -> Path:
    """Certificates from the private CA in tls_dir (made or renewed as needed); tls_dir."""
    from voltbus_api.tlsgen import Server, ensure  # the image has it; a bare broker host not

    extra = tuple(n.strip() for n in names.split(",") if n.strip())
    made = ensure(tls_dir, [Server("mqtt-server", ("mosquitto",), broker_uid()),
                            Server("api-server", ("api",), api_uid())], extra)
    if made:
        print(f"init_broker: generated TLS {', '.join(made)} in {tls_dir} "
              f"(names {', '.join(extra) or 'localhost only'}); clients trust ca.crt",
              file=sys.stderr)
    return tls_dir


def tls_config(certs: Path, port: int, tls_dir: Path | None = None) -> str:
    """The TLS listener block: mounted certificates first, else generated ones, else ""."""
    cert, key, ca = certs / "server.crt", certs / "server.key", certs / "ca.crt"
    if not (cert.exists() and key.exists()) and tls_dir is not None:
        cert, key, ca = (tls_dir / "mqtt-server.crt", tls_dir / "mqtt-server.key",
                         tls_dir / "ca.crt")
    if not (cert.exists() and key.exists()):
        return ""
    lines = [f"listener {port}", f"certfile {cert}", f"keyfile {key}", "tls_version tlsv1.2"]
    if ca.exists():
        lines.append(f"cafile {ca}")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_suffix(".tmp")
    # Created with its final mode (fchmod: O_CREAT's mode is masked by the umask), never 0644
    # for a moment as write_text then chmod would be.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if os.geteuid() == 0:
        uid = broker_uid()
        os.chown(tmp, uid, uid)
    tmp.replace(path)


def ha_prefix_acl(prefix: str) -> str:
    """ACL lines for a Home Assistant discovery prefix other than the default one."""
    prefix = prefix.strip("/")
    if prefix == HA_DEFAULT_PREFIX:
        return ""  # render_acl grants homeassistant/# already
    if not prefix or any(c in prefix for c in "+#"):
        raise SystemExit(f"init_broker: VOLTBUS_HA_PREFIX {prefix!r} is not a topic prefix")
    return "".join(f"\nuser {user}\ntopic readwrite {prefix}/#\n" for user in HA_USERS)


def generate(*, secrets_dir: Path, out: Path, certs: Path, root: str, tls_port: int,
             ha_prefix: str = "homeassistant", tls_dir: Path | None = None,
             tls_names: str = "", bridges: Path | None = None) -> None:
    """Write passwd, acl, healthcheck and conf.d/ into out."""
    passwords = read_passwords(secrets_dir)
    files = sorted(bridges.glob("*.json")) if bridges is not None and bridges.is_dir() else []
    bridge_entries, bridge_acl, problems = site_users(files, root)
    for problem in problems:
        print(f"init_broker: bridge file left out (that bridge stays down): {problem}",
              file=sys.stderr)
    health = secrets.token_urlsafe(24)
    (out / "conf.d").mkdir(parents=True, exist_ok=True)
    entries = [password_entry(u, p) for u, p in passwords.items()]
    entries.append(password_entry(HEALTHCHECK_USER, health))
    entries += bridge_entries
    _write(out / "passwd", "\n".join(entries) + "\n", 0o600)
    acl = render_acl(root) + ha_prefix_acl(ha_prefix)
    acl += f"\nuser {HEALTHCHECK_USER}\ntopic read $SYS/broker/uptime\n"
    if bridge_acl:
        acl += "\n" + bridge_acl
    _write(out / "acl", acl, 0o600)
    _write(out / "healthcheck", health + "\n", 0o600)
    mounted = (certs / "server.crt").exists() and (certs / "server.key").exists()
    generated = generated_tls(tls_dir, tls_names) if tls_dir is not None else None
    tls = tls_config(certs, tls_port, None if mounted else generated)
    # A Pi bridged to a site broker: `voltbus bridge --out mosquitto/certs/bridge.conf`
    # (it holds the bridge password: 0600 here too, the broker reads it as root at start)
    bridge_conf = certs / "bridge.conf"
    if bridge_conf.is_file():
        _write(out / "conf.d" / "bridge.conf", bridge_conf.read_text(), 0o600)
    else:
        (out / "conf.d" / "bridge.conf").unlink(missing_ok=True)
    tls_file = out / "conf.d" / "tls.conf"
    if tls:
        _write(tls_file, tls, 0o644)
    else:
        tls_file.unlink(missing_ok=True)
    if os.geteuid() == 0:
        uid = broker_uid()
        for path in (out, out / "conf.d"):
            os.chown(path, uid, uid)
    print(f"init_broker: {len(entries)} users ({len(bridge_entries)} bridges), "
          f"ACL for root {root!r}, "
          f"TLS listener {'on port ' + str(tls_port) if tls else 'off'}", file=sys.stderr)


def main() -> None:
    """Generate from the environment (see the module docstring)."""
    generate(
        secrets_dir=_env_path("VOLTBUS_BROKER_SECRETS_DIR", "/run/secrets"),
        out=_env_path("VOLTBUS_BROKER_OUT_DIR", "/mosquitto/generated"),
        certs=_env_path("VOLTBUS_BROKER_CERTS_DIR", "/mosquitto/certs"),
        root=os.environ.get("VOLTBUS_ROOT", DEFAULT_ROOT),
        tls_port=int(os.environ.get("VOLTBUS_MQTT_TLS_PORT", "8883")),
        ha_prefix=os.environ.get("VOLTBUS_HA_PREFIX", HA_DEFAULT_PREFIX),
        tls_dir=Path(os.environ["VOLTBUS_TLS_DIR"]) if os.environ.get("VOLTBUS_TLS_DIR") else None,
        tls_names=os.environ.get("VOLTBUS_TLS_NAMES", ""),
        bridges=_env_path("VOLTBUS_BROKER_BRIDGES_DIR", "/mosquitto/bridges"),
    )


if __name__ == "__main__":
    main()
