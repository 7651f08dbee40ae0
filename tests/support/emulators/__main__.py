"""Run the three emulators until interrupted and print how to point the providers at them.

    python -m tests.support.emulators --sendgrid-port 8025 --twilio-port 8026 --fcm-port 8027

Port 0 (the default) picks a free port. The FCM service account (its key is generated
afresh on every run) is written to ``--service-account`` or to a new temporary file. With
``--tls-dir`` they serve https with a certificate authority made there (``ca_file``, for the
clients to trust); with ``--stats-file`` each SIGUSR1 writes every emulator's counts there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from tests.support.emulators.fcm import FcmEmulator, generate_service_account
from tests.support.emulators.sendgrid import SendGridEmulator
from tests.support.emulators.twilio import TwilioEmulator
from tests.support.tls import make_certificates


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.support.emulators", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--sendgrid-port", type=int, default=0)
    parser.add_argument("--twilio-port", type=int, default=0)
    parser.add_argument("--fcm-port", type=int, default=0)
    parser.add_argument("--project-id", default="switchboard-emulator")
    parser.add_argument("--service-account", type=Path, help="where to write the FCM service-account JSON")
    parser.add_argument("--json", action="store_true", help="print the settings as one JSON object")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every answer takes (default 0)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--tls-dir", type=Path, help="serve https, with a certificate authority made here")
    parser.add_argument("--stats-file", type=Path, help="on SIGUSR1, write connection and request counts here")
    return parser.parse_args()


def _write_account(path: Path | None, info: dict[str, str]) -> Path:
    if path is None:
        handle, name = tempfile.mkstemp(prefix="fcm-emulator-", suffix=".json")
        os.close(handle)
        path = Path(name)
    path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return path


def _write_stats(path: Path, emulators: dict[str, Any], seq: int) -> None:
    """Each emulator's TCP connections and send requests so far, numbered (``seq``) per signal."""
    counts = {name: {"connections": e.connections, "sends": len(e.requests_to())} for name, e in emulators.items()}
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"seq": seq, **counts}), encoding="utf-8")
    partial.replace(path)


def main() -> None:
    args = _arguments()
    certificates = make_certificates(args.tls_dir) if args.tls_dir else None
    tls = certificates.server_context() if certificates else None
    sendgrid = SendGridEmulator(host=args.host, port=args.sendgrid_port, verbose=args.verbose, tls=tls).start()
    twilio = TwilioEmulator(host=args.host, port=args.twilio_port, verbose=args.verbose, tls=tls).start()
    fcm = FcmEmulator(host=args.host, port=args.fcm_port, verbose=args.verbose, tls=tls).start()
    emulators = {"sendgrid": sendgrid, "twilio": twilio, "fcm": fcm}
    for emulator in emulators.values():
        emulator.latency = args.latency
    account_file = _write_account(args.service_account, fcm.trust(generate_service_account(args.project_id)))
    settings = {
        "sendgrid": {"base_url": sendgrid.url, "api_key": sendgrid.api_key},
        "twilio": {"base_url": twilio.url, "account_sid": twilio.account_sid, "auth_token": twilio.auth_token},
        "fcm": {"base_url": fcm.url, "service_account_file": str(account_file), "token_uri": fcm.token_uri},
        **({"tls": {"ca_file": str(certificates.ca_file)}} if certificates else {}),
    }
    if args.json:
        print(json.dumps(settings), flush=True)
    else:
        for name, values in settings.items():
            print(f"{name:9} " + "  ".join(f"{key}={value}" for key, value in values.items()), flush=True)
        print("Ctrl-C stops them.", flush=True)
    stop = threading.Event()
    if args.stats_file is not None:
        numbers = itertools.count(1)
        signal.signal(signal.SIGUSR1, lambda *_: _write_stats(args.stats_file, emulators, next(numbers)))
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        for emulator in (sendgrid, twilio, fcm):
            emulator.stop()
        if args.service_account is None:
            account_file.unlink(missing_ok=True)  # a temporary file holding a private key


if __name__ == "__main__":
    main()
