"""Wait until Mistral RPC servers consume their topics (run with the Mistral venv's python).

    python mistral_ping.py --config-file mistral.conf [--timeout S] TOPIC...

Calls oslo.messaging's built-in ``oslo_rpc_server_ping`` endpoint (the configuration must
set ``[DEFAULT] rpc_ping_enabled = true``) on each topic, over the transport the
configuration names, until each answers "pong" or the timeout passes. Exit status 0 when
all answered, 1 otherwise (naming the silent topics).
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args(argv)

    import oslo_messaging as messaging
    from oslo_config import cfg

    cfg.CONF(["--config-file", args.config_file], project="mistral")
    transport = messaging.get_rpc_transport(cfg.CONF)
    deadline = time.monotonic() + args.timeout
    waiting = list(args.topics)
    try:
        while waiting and time.monotonic() < deadline:
            topic = waiting[0]
            client = messaging.get_rpc_client(transport, messaging.Target(topic=topic),
                                              timeout=2)
            try:
                answer = client.call({}, "oslo_rpc_server_ping")
            except messaging.MessagingTimeout:
                continue
            except messaging.MessageDeliveryFailure:
                time.sleep(0.2)
                continue
            print(f"{topic}: {answer}", flush=True)
            waiting.pop(0)
    finally:
        transport.cleanup()
    if waiting:
        print(f"no answer within {args.timeout:g} s from: {', '.join(waiting)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
