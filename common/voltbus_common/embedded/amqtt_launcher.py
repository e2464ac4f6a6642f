"""Runs amqtt with voltbus's users and ACL: the fallback where Mosquitto can't be installed.

Executed by path with the interpreter of a separate virtualenv that holds amqtt (amqtt pins an old
`websockets`, so it must stay out of the services' environment). Only stdlib, amqtt and pwdlib
are imported here. Usage: python amqtt_launcher.py SPEC.json
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path


def _write_password_file(path: Path, users: dict[str, str]) -> None:
    from pwdlib.hashers.argon2 import Argon2Hasher  # amqtt accepts only argon2/bcrypt hashes

    hasher = Argon2Hasher()
    write_private_text(path, "".join(f"{user}:{hasher.hash(pw)}\n" for user, pw in users.items()))


def write_private_text(path: Path, text: str) -> None:
    """Write text as a 0600 file, atomically: created 0600 (fchmod, as the umask may mask the
    mode O_CREAT gets), then renamed over path. Writing first and chmodding after left the
    password hashes readable by everyone until the chmod, and for good if it never came.
    (voltbus_common.private_files does the same; this file may import only the stdlib.)"""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
    os.replace(tmp, path)


async def _serve(spec: dict) -> None:  # type: ignore[type-arg]
    from amqtt.broker import Broker

    workdir = Path(spec["workdir"])
    password_file = workdir / "amqtt_passwd"
    _write_password_file(password_file, spec["users"])
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{spec['port']}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
            "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(password_file)},
            "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": {
                "acl": spec["subscribe_acl"], "publish_acl": spec["publish_acl"]},
        },
    }
    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


if __name__ == "__main__":
    asyncio.run(_serve(json.loads(Path(sys.argv[1]).read_text())))
