"""The egress policy (infra/tasks/egress.py): which addresses are denied, every spelling of them, and the
allowlist (issue #9, item 6). Resolution here is the machine's own resolver on numeric forms and
localhost, which needs no network; tests/component/test_egress.py sends real requests."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from infra.tasks import egress
from infra.tasks.base import TaskFailure
from infra.tasks.egress import EgressPolicy
from infra.tasks.settings import TaskSettings


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"), ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"),
    ("192.168.1.1", "private"), ("169.254.169.254", "link-local"), ("169.254.0.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"), ("100.100.100.200", "carrier-grade NAT"), ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"), ("255.255.255.255", "broadcast"), ("240.0.0.1", "reserved"),
    ("192.0.2.1", "documentation"), ("198.18.0.1", "benchmarking"), ("192.0.0.9", "IETF"),
    ("::1", "loopback"), ("::", "unspecified"), ("fe80::1", "link-local"), ("febf::1", "link-local"),
    ("fc00::1", "unique-local"), ("fd00:ec2::254", "unique-local"), ("ff02::1", "multicast"),
    ("fec0::1", "site-local"), ("2001:db8::1", "documentation"), ("2001::1", "Teredo"), ("100::1", "discard"),
    ("64:ff9b:1::1", "NAT64"), ("::7f00:1", "IPv4-compatible"), ("::a9fe:a9fe", "IPv4-compatible"),
    # IPv6 forms that carry a denied IPv4 address: mapped, translated, NAT64, 6to4
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:7f00:1", "loopback"), ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"), ("::ffff:0:7f00:1", "loopback"), ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "link-local"), ("2002:7f00:1::", "loopback"), ("2002:a9fe:a9fe::1", "link-local"),
    ("2002:c0a8:101::", "private"),
])
def test_internal_ranges_are_denied(address, reason):
    assert reason in (egress.denial(egress.plain(ipaddress.ip_address(address))) or "")


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "11.0.0.1", "192.169.0.1", "169.255.0.1",
    "2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
])
def test_public_addresses_are_allowed(address):
    assert egress.denial(egress.plain(ipaddress.ip_address(address))) is None


LOOPBACK_SPELLINGS = [
    "127.0.0.1", "localhost", "LOCALHOST", "localhost.", "127.0.0.1.", "2130706433", "0x7f000001", "0X7F000001",
    "0177.0.0.1", "0177.00.00.01", "017700000001", "127.1", "127.0.1", "0x7f.1", "0x7f.0.0.1", "::1",
    "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "0:0:0:0:0:ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:0:7f00:1",
    "64:ff9b::127.0.0.1", "2002:7f00:1::", "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",  # full-width
    "\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11",  # 127.0.0.1 in full-width digits and dots
]
METADATA_SPELLINGS = ["169.254.169.254", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "0xa9.0xfe.0xa9.0xfe",
                      "169.254.43518", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "fd00:ec2::254"]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS + METADATA_SPELLINGS + ["0", "0.0.0.0", "::"])
def test_every_spelling_is_decided_on_the_resolved_address(host):
    with pytest.raises(TaskFailure) as caught:
        egress.resolve(host, 80, EgressPolicy())
    assert caught.value.error_type == "EgressDenied"
    assert "LOOPLINE_EGRESS_ALLOW" in caught.value.message


@pytest.mark.parametrize("host", ["%31%32%37.0.0.1", "127.0.0.1%2f", "fe80::1%eth0", "local host", "", "a..b",
                                  "-a.example", "a" * 64 + ".example"])
def test_what_is_not_a_plain_host_is_refused_not_guessed(host):
    with pytest.raises(TaskFailure) as caught:
        egress.resolve(host, 80, EgressPolicy())
    assert caught.value.error_type == "EgressDenied"


def _answers(*addresses: str):
    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in addresses]
    return getaddrinfo


def test_one_denied_answer_among_public_ones_refuses_the_name(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _answers("93.184.216.34", "10.0.0.7"))
    with pytest.raises(TaskFailure) as caught:
        egress.resolve("mixed.example", 443, EgressPolicy())
    assert "mixed.example resolves to 10.0.0.7" in caught.value.message
    monkeypatch.setattr(socket, "getaddrinfo", _answers("93.184.216.34", "2606:4700::1"))
    assert len(egress.resolve("public.example", 443, EgressPolicy())) == 2


@pytest.mark.parametrize("allow, host, port, addresses, allowed", [
    ("127.0.0.1:8080", "127.0.0.1", 8080, ["127.0.0.1"], True),
    ("127.0.0.1:8080", "127.0.0.1", 8081, ["127.0.0.1"], False),
    ("127.0.0.1:8080", "0x7f000001", 8080, ["127.0.0.1"], True),  # an address entry, however the URL spells it
    ("127.0.0.1", "127.0.0.1", 9001, ["127.0.0.1"], True),
    ("127.0.0.1", "127.0.0.2", 80, ["127.0.0.2"], False),
    ("127.0.0.1", "::ffff:127.0.0.1", 80, ["::ffff:127.0.0.1"], True),
    ("::ffff:127.0.0.1", "127.0.0.1", 80, ["127.0.0.1"], True),
    ("[::1]:8080", "::1", 8080, ["::1"], True),
    ("::1", "::1", 1, ["::1"], True),
    ("localhost", "localhost", 5000, ["127.0.0.1", "::1"], True),  # a name entry trusts what the name resolves to
    ("localhost", "127.0.0.1", 5000, ["127.0.0.1"], False),
    ("localhost:5000", "localhost", 5001, ["127.0.0.1"], False),
    ("*.internal.example", "api.internal.example", 443, ["10.0.0.5"], True),
    ("*.internal.example", "a.b.internal.example", 443, ["10.0.0.5"], True),
    ("*.internal.example", "internal.example", 443, ["10.0.0.5"], False),
    ("*.internal.example", "evilinternal.example", 443, ["10.0.0.5"], False),
    ("*.internal.example:443", "api.internal.example", 80, ["10.0.0.5"], False),
    ("10.1.0.0/16", "db.example", 5432, ["10.1.2.3"], True),
    ("10.1.0.0/16", "db.example", 5432, ["10.2.0.1"], False),
    ("10.1.0.0/16:5432", "db.example", 5433, ["10.1.2.3"], False),
    ("fd00::/8", "v6.example", 80, ["fd12::1"], True),
    (" localhost , ,127.0.0.1:1 ", "localhost", 80, ["127.0.0.1"], True),
    ("", "localhost", 80, ["127.0.0.1"], False),
    ("localhost", "public.example", 443, ["93.184.216.34"], True),  # the allowlist only ever adds
])
def test_the_allowlist(allow, host, port, addresses, allowed):
    policy = EgressPolicy.parse(allow)
    ips = [ipaddress.ip_address(a) for a in addresses]
    if allowed:
        policy.check(host, port, ips)
    else:
        with pytest.raises(TaskFailure) as caught:
            policy.check(host, port, ips)
        assert caught.value.error_type == "EgressDenied"


@pytest.mark.parametrize("allow", ["*", "*.", "127.1", "0x7f000001", "*.127.0.0.1", "localhost:0", "localhost:99999",
                                   "localhost:http", "[::1", "[::1]x", "local host", "%6c", "a..b"])
def test_a_bad_allowlist_is_a_provider_config_error(allow):
    with pytest.raises(TaskFailure) as caught:
        EgressPolicy.parse(allow)
    assert caught.value.error_type == "ProviderConfigError"
    assert "LOOPLINE_EGRESS_ALLOW" in caught.value.message


def test_the_policy_is_read_from_the_environment_into_the_settings():
    policy = TaskSettings.from_env({"LOOPLINE_EGRESS_ALLOW": "localhost:8080"}).egress()
    assert egress.resolve("localhost", 8080, policy)
    with pytest.raises(TaskFailure):
        egress.resolve("localhost", 8081, policy)
    with pytest.raises(TaskFailure):
        egress.resolve("localhost", 8080, TaskSettings.from_env({}).egress())
