"""``site-recovery-lab``: the two-site lab, up in one command.

    site-recovery-lab up            start both sites (venvs are made on the first run)
    site-recovery-lab up --no-horizon   the same without Horizon
    site-recovery-lab status [-f json]
    site-recovery-lab env           write clouds.yaml; prints the export line
    site-recovery-lab seed          build the e-commerce tenant on site-a
    site-recovery-lab fault site-down site-a | site-up site-a | link-down | link-up
    site-recovery-lab fault array-latency site-a 2.5 | clear
    site-recovery-lab down          stop everything; no process or port is left
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .layout import DEFAULT_PORT_BASE, SITES
from .services.base import NotReady
from .supervisor import Lab, LabOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="site-recovery-lab",
                                     description="The two-site Site Recovery lab.")
    parser.add_argument("--port-base", type=int,
                        default=int(os.environ.get("SITE_RECOVERY_LAB_PORT_BASE",
                                                   DEFAULT_PORT_BASE)),
                        help="site-a uses PORT_BASE.., site-b PORT_BASE+1000.. "
                             "(default: $SITE_RECOVERY_LAB_PORT_BASE or %(default)s)")
    parser.add_argument("--home", type=Path, help="lab files (default: $SITE_RECOVERY_LAB_HOME "
                                                  "or ~/.cache/site-recovery/lab)")
    parser.add_argument("--run", default=os.environ.get("SITE_RECOVERY_LAB_RUN", "default"),
                        help="name of this lab instance (default: $SITE_RECOVERY_LAB_RUN "
                             "or %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start both sites")
    up.add_argument("--mistral-mode", choices=("allinone", "rabbit"), default="allinone")
    up.add_argument("--protector-database", choices=("sqlite", "postgresql"),
                    default="sqlite", help="the protection services' databases")
    up.add_argument("--mistral-executors", type=int, default=1, choices=range(1, 5),
                    help="rabbit mode: Mistral executors per site")
    up.add_argument("--install", choices=("editable", "wheel"), default="editable",
                    help="wheel: the product's wheel into Mistral's venv and a venv of its "
                    "own for the service, as an operator installs it")
    up.add_argument("--engines", type=int, default=1, choices=range(1, 5),
                    help="protector-engines per site")
    up.add_argument("--coordination", choices=("database", "redis"), default="database",
                    help="where a site's engines agree which one leads (redis: the "
                    "machine's, on 127.0.0.1:6379)")
    up.add_argument("--array-rest-version", type=int, choices=(1, 2), default=2,
                    help="how the services reach the simulated arrays: REST 2.x "
                    "(py-pure-client) or REST 1.x (the purestorage SDK, older Purity)")
    up.add_argument("--no-horizon", dest="horizon", action="store_false",
                    help="leave Horizon out (a venv of its own, about 150 MB per site)")
    up.add_argument("--site", choices=SITES, action="append", help="only this site")
    down = commands.add_parser("down", help="stop everything")
    down.add_argument("--purge", action="store_true",
                      help="also remove the run's databases and files (the next up is fresh)")
    status = commands.add_parser("status", help="services, URLs, PIDs and health")
    status.add_argument("-f", "--format", choices=("table", "json"), default="table")
    commands.add_parser("env", help="write clouds.yaml for both sites")
    commands.add_parser("seed", help="build the e-commerce tenant on site-a")
    fault = commands.add_parser("fault", help="inject or lift a fault")
    kinds = fault.add_subparsers(dest="fault", required=True)
    for name in ("site-down", "site-up"):
        kinds.add_parser(name).add_argument("site", choices=SITES)
    service_down = kinds.add_parser("service-down", help="stop one service of a site "
                                    "(site-up starts it again)")
    service_down.add_argument("site", choices=SITES)
    service_down.add_argument("service", help="e.g. webhook, mistral, heat-engine")
    kinds.add_parser("link-down")
    kinds.add_parser("link-up")
    latency = kinds.add_parser("array-latency", help="slow one site's array down")
    latency.add_argument("site", choices=SITES)
    latency.add_argument("seconds", type=float)
    latency.add_argument("--operation", default="*")
    cloud = kinds.add_parser("cloud", help="slow down or fail a simulated OpenStack API")
    cloud.add_argument("site", choices=SITES)
    cloud.add_argument("--service", choices=("compute", "network", "volume", "image"))
    cloud.add_argument("--method", help="HTTP method, e.g. POST")
    cloud.add_argument("--path", help="regular expression searched in the URL path")
    cloud.add_argument("--latency", type=float, help="seconds added to each matching call")
    cloud.add_argument("--status", type=int, help="fail matching calls with this HTTP status")
    cloud.add_argument("--count", type=int, help="only this many calls (default: all)")
    behaviour = kinds.add_parser("cloud-behaviour", help="the next N builds or imports fail")
    behaviour.add_argument("site", choices=SITES)
    behaviour.add_argument("behaviour", choices=("server_build_error", "server_build_delay",
                                                 "manage_error"))
    behaviour.add_argument("--count", type=int, default=1)
    behaviour.add_argument("--seconds", type=float, help="for server_build_delay")
    kinds.add_parser("clear", help="lift every fault")
    return parser


def _print_status(report: dict):
    for name, site in report["sites"].items():
        print(f"{name}  keystone {site['keystone_url']}  array {site['array']['name']} "
              f"https://{site['array']['management_address']}")
        if site["horizon_url"]:
            print(f"  horizon {site['horizon_url']}")
        if not site["services"]:
            print("  (not running)")
        for service, entry in site["services"].items():
            health = "ok" if entry["healthy"] else "DOWN"
            print(f"  {service:<16} {health:<5} pid {entry['pid']:<8} {entry['url']}")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    lab = Lab(LabOptions(port_base=args.port_base, home=args.home, run_name=args.run,
                         mistral_mode=getattr(args, "mistral_mode", "allinone"),
                         protector_database=getattr(args, "protector_database", "sqlite"),
                         mistral_executors=getattr(args, "mistral_executors", 1),
                         engines=getattr(args, "engines", 1),
                         install=getattr(args, "install", "editable"),
                         coordination=getattr(args, "coordination", "database"),
                         array_rest_version=getattr(args, "array_rest_version", 2),
                         horizon=getattr(args, "horizon", True)))
    try:
        if args.command == "up":
            lab.up(sites=args.site or SITES)
            print(f"lab up; clouds.yaml: export OS_CLIENT_CONFIG_FILE={lab.clouds_yaml()}")
            for name, site in lab.status()["sites"].items():
                if site["horizon_url"]:
                    print(f"{name} Horizon: {site['horizon_url']}")
        elif args.command == "down":
            lab.purge() if args.purge else lab.down()
        elif args.command == "status":
            report = lab.status()
            if args.format == "json":
                print(json.dumps(report, indent=2))
            else:
                _print_status(report)
        elif args.command == "env":
            print(f"export OS_CLIENT_CONFIG_FILE={lab.clouds_yaml()}")
        elif args.command == "seed":
            from .seed import seed
            seed(lab)
        elif args.command == "fault":
            _fault(lab, args)
    except (NotReady, RuntimeError) as exc:
        print(f"site-recovery-lab: {exc}", file=sys.stderr)
        return 1
    return 0


def _fault(lab: Lab, args):
    if args.fault == "site-down":
        lab.site_down(args.site)
    elif args.fault == "site-up":
        lab.site_up(args.site)
    elif args.fault == "service-down":
        lab.service_down(args.site, args.service)
    elif args.fault in ("link-down", "link-up"):
        lab.set_link(up=args.fault == "link-up")
    elif args.fault == "array-latency":
        lab.fabric.add_latency(lab.sites[args.site].array_name, args.seconds, args.operation)
    elif args.fault in ("cloud", "cloud-behaviour"):
        fields = {k: v for k, v in vars(args).items()
                  if k in ("service", "method", "path", "latency", "status", "count",
                           "behaviour", "seconds") and v is not None}
        print(json.dumps(lab.cloud_fault(args.site, fields)))
    elif args.fault == "clear":
        lab.clear_faults()


if __name__ == "__main__":
    sys.exit(main())
