"""The hooks python-openstackclient looks for in a plugin (``openstack.cli.extension``)."""

from __future__ import annotations

from osc_lib import utils

from .client import Client

API_NAME = "protector"
API_VERSION_OPTION = "os_protector_api_version"
DEFAULT_API_VERSION = "1"
API_VERSIONS = ("1",)


def make_client(instance):
    """The client over osc's authenticated session, for the cloud and region it targets."""
    return Client(instance.session, interface=instance.interface,
                  region_name=instance.region_name)


def build_option_parser(parser):
    parser.add_argument(
        "--os-protector-api-version", metavar="<protector-api-version>",
        default=utils.env("OS_PROTECTOR_API_VERSION", default=DEFAULT_API_VERSION),
        help=f"Protection service API version, default={DEFAULT_API_VERSION} "
             "(Env: OS_PROTECTOR_API_VERSION)")
    return parser
