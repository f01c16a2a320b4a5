"""The service refuses a bad configuration at start, naming the setting, hiding secrets."""

from __future__ import annotations

import pytest
import yaml

from site_recovery.core.config import ConfigError, load, parse


def minimal(tmp_path, **overrides) -> dict:
    secret = tmp_path / "keystone.password"
    secret.write_text("very-secret-password\n")
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {
        name: {"auth": {"auth_url": f"http://127.0.0.1:{port}/v3", "username": "site-recovery",
                        "password": "cloud-secret", "project_name": "service"}}
        for name, port in (("site-a", 15000), ("site-b", 16000))}}))
    data = {
        "site": "site-a",
        "peer": {"name": "site-b", "url": "http://127.0.0.1:16010"},
        "keystone": {"auth_url": "http://127.0.0.1:15000/v3", "username": "site-recovery",
                     "password_file": str(secret)},
        "clouds": {"file": str(clouds), "local": "site-a", "peer": "site-b"},
    }
    data.update(overrides)
    return data


def test_a_minimal_file_loads_with_sensible_defaults(tmp_path):
    path = tmp_path / "protector.yaml"
    path.write_text(yaml.safe_dump(minimal(tmp_path)))
    config = load(path)
    assert config.peer.failure_threshold == 3 and config.peer.success_threshold == 2
    assert config.database_url.startswith("sqlite:")
    assert config.engine.cinder_group_type == "site-recovery"
    assert config.keystone.password().get_secret_value() == "very-secret-password"
    assert "very-secret" not in repr(config.keystone.password())


@pytest.mark.parametrize(("change", "message"), [
    ({"peer": {"name": "site-a", "url": "http://x:1"}}, "peer.name must differ from site"),
    ({"peer": {"name": "site-b", "url": "not a url"}}, "peer.url"),
    ({"database_url": "oracle://db"}, "database_url must be sqlite, postgresql or mysql"),
    ({"peer": {"name": "site-b", "url": "http://x:1", "failure_threshold": 0}},
     "peer.failure_threshold"),
    ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
    ({"monitoring": {"rules": [{"name": "dc down", "match": {"alertname": "SiteDown"},
                                "operation": "site_failover"}]}},
     "alert rules need shared_secret_file or hmac_secret_file"),
    ({"monitoring": {"rules": [{"name": "r", "match": {"a": "b"}, "operation": "failover",
                                "selector": {"colour": "$c"}}]}},
     r"selector fields \['colour'\] unknown"),
    ({"arrays": [{"name": "fa-a", "site": "site-a", "address": "a", "token_file": "/t",
                  "cinder_host": "c@p#p"},
                 {"name": "fa-b", "site": "site-b", "address": "b", "token_file": "/t",
                  "cinder_host": "c@p#p"}]},
     "fa-b is site-b's array: its API token belongs on site-b alone"),
    ({"arrays": [{"name": "fa-a", "site": "site-a", "address": "a",
                  "cinder_host": "c@p#p"}]},
     "fa-a is this site's array and needs its token_file"),
    ({"engine": {"stack_timeout": 7000}},
     r"engine: .*stack_timeout \+ volume_timeout \+ replicate_timeout \(8500 s\) .* "
     r"within a step's 7200 s"),
])
def test_bad_settings_are_refused_by_name(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        parse(minimal(tmp_path, **change), source="protector.yaml")


def test_a_missing_setting_is_named(tmp_path):
    data = minimal(tmp_path)
    del data["keystone"]
    with pytest.raises(ConfigError, match="keystone: Field required"):
        parse(data)


def test_unreadable_and_malformed_files_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(bad)


def test_an_empty_secret_file_is_refused_without_showing_secrets(tmp_path):
    data = minimal(tmp_path)
    (tmp_path / "keystone.password").write_text("")
    config = parse(data)
    with pytest.raises(ConfigError, match=r"keystone.password_file: .* is empty"):
        config.keystone.password()


def test_every_client_takes_its_ca_bundle_and_none_turns_verification_off(tmp_path):
    data = minimal(tmp_path, tls={"cert_file": "/etc/pki/protector.pem",
                                  "key_file": "/etc/pki/protector.key"})
    data["keystone"]["ca_file"] = "/etc/pki/site-a-ca.pem"
    data["peer"]["ca_file"] = "/etc/pki/site-b-ca.pem"
    clouds = yaml.safe_load((tmp_path / "clouds.yaml").read_text())
    clouds["clouds"]["site-b"]["cacert"] = "/etc/pki/site-b-ca.pem"
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump(clouds))
    config = parse(data)
    assert config.service_account().get_requests_verify_args()[0] == "/etc/pki/site-a-ca.pem"
    assert str(config.peer.ca_file) == "/etc/pki/site-b-ca.pem"
    assert (config.clouds.verify("local"), config.clouds.verify("peer")) == (
        True, "/etc/pki/site-b-ca.pem")
    assert str(config.tls.cert_file) == "/etc/pki/protector.pem"
    clouds["clouds"]["site-b"]["verify"] = False
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump(clouds))
    with pytest.raises(ConfigError, match=r"clouds\.peer: entry 'site-b' turns TLS "
                                          r"verification off"):
        parse(data)
