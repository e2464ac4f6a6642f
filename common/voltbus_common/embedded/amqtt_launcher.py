"""Runs amqtt with voltbus's users and ACL: the fallback where Mosquitto can't be installed.

Executed by path with the interpreter of a separate virtualenv that holds amqtt (amqtt pins an old
`websockets`, so it must stay out of the services' environment). Only stdlib, amqtt and pwdlib
are imported here. Usage: python amqtt_launcher.py SPEC.json
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path


def _write_password_file(path: Path, users: dict[str, str]) -> None:
    from pwdlib.hashers.argon2 import Argon2Hasher  # amqtt accepts only argon2/bcrypt hashes

    hasher = Argon2Hasher()
    path.write_text("".join(f"{user}:{hasher.hash(pw)}\n" for user, pw in users.items()))
    path.chmod(0o600)


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
