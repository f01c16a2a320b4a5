"""The lab's protection services as a lab account sees them: the API with a real token of
the site's Keystone (renewed once when refused), for benchmarks and scripts."""

from __future__ import annotations

import time

import requests

from .services import keystone

ENDED = ("completed", "failed", "partially_failed")


class Protector:
    """``protector(site, method, path, user, json=...)``: the answer's JSON; a refusal
    raises RuntimeError naming the call."""

    def __init__(self, lab, timeout: float = 300.0):
        self.lab, self.timeout, self.tokens = lab, timeout, {}

    def request(self, site: str, method: str, path: str, user: str,
                **kwargs) -> requests.Response:
        for _ in range(2):
            if (site, user) not in self.tokens:
                self.tokens[site, user] = keystone.token(self.lab.sites[site], user)
            reply = requests.request(method, self.lab.sites[site].url("webhook", f"/v1{path}"),
                                     headers={"X-Auth-Token": self.tokens[site, user]},
                                     timeout=self.timeout, verify=self.lab.ca_file(),
                                     **kwargs)
            if reply.status_code != 401:
                break
            del self.tokens[site, user]
        if reply.status_code >= 300:
            raise RuntimeError(f"{site} {method} {path}: {reply.status_code} "
                               f"{reply.text[:500]}")
        return reply

    def __call__(self, site: str, method: str, path: str, user: str, **kwargs) -> dict:
        reply = self.request(site, method, path, user, **kwargs)
        return reply.json() if reply.content else {}

    def finished(self, site: str, op_id: str, user: str, within: float = 3600) -> dict:
        """The operation once it has ended."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            op = self(site, "GET", f"/operations/{op_id}", user)["operation"]
            if op["status"] in ENDED:
                return op
            time.sleep(0.5)
        raise RuntimeError(f"operation {op_id} still running after {within:.0f} s")
