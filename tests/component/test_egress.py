"""Outbound requests against real servers on 127.0.0.1 (issue #9, item 6): refused by default, reached when the
deployment allows them, with names, redirects and changing DNS answers, through every task type and provider
that sends a request (http, browser on both providers, openai llm, voice webhook, approval webhook).

Name resolution is replaced where a test needs a name to point somewhere: ``socket.getaddrinfo`` is the
operating system's resolver, not our code, and everything of ours runs as it does in production."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from infra.engine.notifications import send_notification
from infra.tasks.base import TaskFailure
from infra.tasks.browser.devtools import chromium_path
from tests.unit.test_task_settings import LocalServer, failure, run_type, server, task_env, task_types  # noqa: F401

ALLOW = "LOOPLINE_EGRESS_ALLOW"


@pytest.fixture
def secret():
    """An internal service on 127.0.0.1 that no test here may reach: every test checks it saw nothing."""
    srv = LocalServer()
    srv.text("GET", "/", "internal secret")
    yield srv
    srv.close()


class _Names(dict):
    """Host name -> the addresses the resolver answers; ``lookups`` lists the names looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups: list[str] = []


@pytest.fixture
def names(monkeypatch):
    """Host names the resolver answers as the test says (``names["api.example"] = ["127.0.0.1"]``); a list of
    lists is one answer per lookup (the last one repeats). Other names go to the real resolver."""
    table = _Names()
    lookups = table.lookups
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        key = host.decode() if isinstance(host, bytes) else host
        if key not in table:
            return real(host, port, family, type, proto, flags)
        lookups.append(key)
        answers = table[key]
        if answers and isinstance(answers[0], list):
            answers = answers[min(lookups.count(key), len(answers)) - 1]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, int(port), 0, 0) if ":" in a else (a, int(port))) for a in answers]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


# ====================================================================== http


def test_loopback_is_refused_by_default_and_reached_when_allowed(task_env, secret, monkeypatch):  # noqa: F811
    error = failure("http", {"url": secret.url + "/"})
    assert error.error_type == "EgressDenied"
    assert "127.0.0.1 is a loopback address" in error.message and ALLOW in error.message
    assert secret.requests == []
    monkeypatch.setenv(ALLOW, f"127.0.0.1:{secret.port}")
    assert run_type("http", {"url": secret.url + "/"})["data"] == "internal secret"
    monkeypatch.setenv(ALLOW, f"127.0.0.1:{secret.port + 1 if secret.port < 65535 else 1}")
    assert failure("http", {"url": secret.url + "/"}).error_type == "EgressDenied"


SPELLINGS = ["localhost", "LocalHost.", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1", "127.0.0.1.",
             "[::ffff:127.0.0.1]", "[0:0:0:0:0:ffff:127.0.0.1]", "[::ffff:7f00:1]",
             "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54"]


@pytest.mark.parametrize("host", SPELLINGS)
def test_every_spelling_of_loopback_is_refused(task_env, secret, host):  # noqa: F811
    error = failure("http", {"url": f"http://{host}:{secret.port}/", "timeout": "5s"})
    assert error.error_type in ("EgressDenied", "InvalidConfig")
    assert secret.requests == []


@pytest.mark.parametrize("host", ["%31%32%37.0.0.1", "[::1%25lo]", "[fe80::1%25lo]"])
def test_percent_encoded_hosts_and_zone_ids_are_invalid_config(task_env, secret, host):  # noqa: F811
    error = failure("http", {"url": f"http://{host}:{secret.port}/"})
    assert error.error_type == "InvalidConfig"
    assert secret.requests == []


def test_an_allowed_address_is_allowed_however_the_url_spells_it(task_env, secret, monkeypatch):  # noqa: F811
    monkeypatch.setenv(ALLOW, f"127.0.0.1:{secret.port}")
    for host in ("0x7f000001", "2130706433", "127.1"):
        assert run_type("http", {"url": f"http://{host}:{secret.port}/"})["status"] == 200
    assert [r["headers"]["Host"] for r in secret.requests] == [
        f"0x7f000001:{secret.port}", f"2130706433:{secret.port}", f"127.1:{secret.port}"]


def test_a_public_looking_name_that_resolves_to_an_internal_address_is_refused(task_env, secret, names):  # noqa: F811
    names["api.example.com"] = ["127.0.0.1"]
    names["metadata.example.com"] = ["169.254.169.254"]
    names["both.example.com"] = ["93.184.216.34", "127.0.0.1"]
    for host in ("api.example.com", "metadata.example.com", "both.example.com"):
        error = failure("http", {"url": f"http://{host}:{secret.port}/", "timeout": "2s"})
        assert error.error_type == "EgressDenied"
        assert f"{host} resolves to" in error.message
    assert secret.requests == []


def test_an_allowed_name_is_reached(task_env, secret, names, monkeypatch):  # noqa: F811
    names["payments.internal.example"] = ["127.0.0.1"]
    monkeypatch.setenv(ALLOW, "*.internal.example")
    assert run_type("http", {"url": f"http://payments.internal.example:{secret.port}/"})["status"] == 200
    assert secret.requests[0]["headers"]["Host"] == f"payments.internal.example:{secret.port}"


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{secret}/", "http://localhost:{secret}/", "http://0x7f000001:{secret}/",
    "http://[::ffff:127.0.0.1]:{secret}/", "http://internal.example.com:{secret}/",
    "http://169.254.169.254/latest/meta-data/", "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
])
def test_redirects_to_internal_addresses_are_refused(task_env, server, secret, names, monkeypatch,  # noqa: F811
                                                     target):
    names["internal.example.com"] = ["127.0.0.1"]
    location = target.format(secret=secret.port)
    server.routes[("GET", "/go")] = lambda request: (302, {"Location": location}, "")
    monkeypatch.setenv(ALLOW, f"127.0.0.1:{server.port}")  # the first server only
    error = failure("http", {"url": server.url + "/go", "timeout": "2s"})
    assert error.error_type == "EgressDenied"
    assert server.requests and secret.requests == []


def test_a_redirect_to_another_scheme_stays_refused(task_env, server, monkeypatch):  # noqa: F811
    server.routes[("GET", "/ftp")] = lambda request: (302, {"Location": "ftp://127.0.0.1/x"}, "")
    server.routes[("GET", "/file")] = lambda request: (302, {"Location": "file:///etc/passwd"}, "")
    monkeypatch.setenv(ALLOW, f"127.0.0.1:{server.port}")
    error = failure("http", {"url": server.url + "/ftp"})
    assert error.error_type == "HttpError" and "not http(s)" in error.message
    # urllib itself will not follow a redirect to file:, so the task gets the 302 as its answer.
    result = run_type("http", {"url": server.url + "/file"})
    assert result["status"] == 302 and result["headers"]["location"] == "file:///etc/passwd"


def _same_port_pair() -> tuple[LocalServer, LocalServer]:
    """A server on 127.0.0.2 and one on 127.0.0.1 with the same port number (one URL, two destinations)."""
    for _ in range(20):
        public = LocalServer(host="127.0.0.2")
        try:
            return public, LocalServer(host="127.0.0.1", port=public.port)
        except OSError:
            public.close()
    pytest.skip("no port free on both 127.0.0.1 and 127.0.0.2")


def test_a_resolver_that_changes_its_answer_cannot_get_the_client_to_a_denied_address(task_env, names,  # noqa: F811
                                                                                       monkeypatch):
    allowed, internal = _same_port_pair()
    try:
        allowed.text("GET", "/", "allowed")
        internal.text("GET", "/", "internal secret")
        monkeypatch.setenv(ALLOW, "127.0.0.2")  # stands for a public address here: an address entry
        # First lookup: the allowed address. Every later one: loopback (a DNS rebinding attack, TTL 0).
        names["rebind.example"] = [["127.0.0.2"], ["127.0.0.1"]]
        url = f"http://rebind.example:{allowed.port}/"
        assert run_type("http", {"url": url})["data"] == "allowed"  # checked 127.0.0.2 and connected to it
        assert allowed.requests[0]["headers"]["Host"] == f"rebind.example:{allowed.port}"
        error = failure("http", {"url": url})
        assert error.error_type == "EgressDenied" and "127.0.0.1" in error.message
        assert internal.requests == []
        assert names.lookups == ["rebind.example", "rebind.example"]  # one lookup per request
    finally:
        allowed.close()
        internal.close()


# ============================================================== https by name


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a certificate for ``tls.example`` that it is the issuer of."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tls.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("tls.example")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    seen: dict[str, list] = {"sni": [], "host": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen["host"].append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, server_name, ctx: seen["sni"].append(server_name)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], cert_file, seen
    httpd.shutdown()
    httpd.server_close()


def test_https_to_the_checked_address_keeps_the_name_for_sni_and_the_certificate(task_env, tls_server, names,  # noqa: F811
                                                                                   monkeypatch):
    port, cert_file, seen = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the test's certificate is the only trusted one
    monkeypatch.setenv(ALLOW, "tls.example,other.example")
    names["tls.example"] = ["127.0.0.1"]
    names["other.example"] = ["127.0.0.1"]
    assert run_type("http", {"url": f"https://tls.example:{port}/"})["data"] == "ok"
    assert seen == {"sni": ["tls.example"], "host": [f"tls.example:{port}"]}
    # Same address, another name: the certificate is checked against the name asked for, not the address.
    error = failure("http", {"url": f"https://other.example:{port}/"})
    assert error.error_type == "HttpConnectionError" and "certificate" in error.message.lower()


# ============================================================ other callers


def test_every_provider_that_sends_a_request_is_held_to_the_policy(task_env, secret, monkeypatch):  # noqa: F811
    secret.routes[("POST", "/")] = lambda request: (200, {"Content-Type": "application/json"}, "{}")
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "llm=openai,voice=webhook,browser=http")
    monkeypatch.setenv("LOOPLINE_OPENAI_BASE_URL", secret.url)
    monkeypatch.setenv("LOOPLINE_VOICE_WEBHOOK_URL", secret.url + "/")
    assert failure("llm", {"model": "m", "prompt": "p"}).error_type == "EgressDenied"
    assert failure("voice", {"to": "+15551234567", "message": "hi"}).error_type == "EgressDenied"
    assert failure("browser", {"url": secret.url + "/"}).error_type == "EgressDenied"
    monkeypatch.setenv("LOOPLINE_APPROVAL_WEBHOOK_URL", secret.url + "/")
    with pytest.raises(TaskFailure) as caught:
        send_notification("webhook", "ops", {"title": "t"}, "https://example.com/a", "request", "run-1", "ask", "wf",
                          None, task_types())
    assert caught.value.error_type == "EgressDenied"
    assert secret.requests == []


# ================================================================== chromium

chromium = pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed")

PAGE = """<!doctype html><title>Shop</title><img id="pixel" src="{secret}/pixel.png">
<script>
  const say = (text) => document.body.insertAdjacentHTML("beforeend", `<p id="fetched">${{text}}</p>`);
  new WebSocket("{secret}/socket".replace("http:", "ws:"));
  fetch("{secret}/api").then(() => say("leaked"), () => say("blocked"));
</script>
<a id="inside" href="{secret}/">inside</a>"""


@pytest.fixture
def site(task_env, server, secret, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "browser=chromium")
    monkeypatch.setenv(ALLOW, f"127.0.0.1:{server.port}")  # the site, not the internal service
    server.text("GET", "/shop", PAGE.format(secret=secret.url), content_type="text/html")
    server.routes[("GET", "/away")] = lambda request: (302, {"Location": secret.url + "/"}, "")
    server.routes[("GET", "/by-name")] = lambda request: (
        302, {"Location": f"http://shop.example:{secret.port}/"}, "")
    return server


@chromium
def test_chromium_is_refused_loopback_by_default(task_env, secret, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "browser=chromium")
    for url in (secret.url + "/", f"http://0x7f000001:{secret.port}/", f"http://[::ffff:127.0.0.1]:{secret.port}/"):
        error = failure("browser", {"url": url})
        assert error.error_type == "EgressDenied", error.message
    monkeypatch.setenv(ALLOW, f"127.0.0.1:{secret.port}")
    assert run_type("browser", {"url": secret.url + "/"})["status"] == 200
    assert len(secret.requests) >= 1


@chromium
def test_chromium_redirects_and_sub_resources_go_through_the_policy(site, secret):
    # The page loads; its image, WebSocket and fetch to the internal service do not.
    page = run_type("browser", {"action": "extract", "url": site.url + "/shop", "selector": "#fetched",
                                "wait_for": "#fetched"})
    assert page["url"] == site.url + "/shop" and page["text"] == "blocked"
    error = failure("browser", {"action": "navigate", "url": site.url + "/away"})
    assert error.error_type == "EgressDenied" and "loopback" in error.message
    error = failure("browser", {"action": "click", "url": site.url + "/shop", "selector": "#inside"})
    assert error.error_type == "EgressDenied"
    assert secret.requests == []


@chromium
def test_chromium_leaves_names_to_the_policy_so_a_name_for_an_internal_address_is_refused(site, secret, names):
    names["shop.example"] = ["127.0.0.1"]
    error = failure("browser", {"url": f"http://shop.example:{secret.port}/"})  # refused before Chromium starts
    assert error.error_type == "EgressDenied" and "shop.example resolves to 127.0.0.1" in error.message
    error = failure("browser", {"url": site.url + "/by-name"})  # refused by the proxy, on Chromium's redirect
    assert error.error_type == "EgressDenied" and "shop.example resolves to 127.0.0.1" in error.message
    assert secret.requests == []


@chromium
def test_chromium_sends_no_webrtc_udp_around_the_proxy(task_env, server, monkeypatch):  # noqa: F811
    # WebRTC's ICE gathering sends UDP (STUN) straight to the address it is given; a proxy for TCP alone
    # would not see it. The internal "STUN server" here is a UDP socket on 127.0.0.1 that counts packets.
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    page = f"""<title>rtc</title><script>
      const pc = new RTCPeerConnection({{iceServers: [{{urls: "stun:127.0.0.1:{udp.getsockname()[1]}"}}]}});
      const done = () => document.body.insertAdjacentHTML("beforeend", "<p id=done>done</p>");
      pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
      pc.createDataChannel("x");
      pc.createOffer().then((offer) => pc.setLocalDescription(offer));
      setTimeout(done, 4000);
    </script>"""
    server.text("GET", "/rtc", page, content_type="text/html")
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "browser=chromium")
    monkeypatch.setenv(ALLOW, f"127.0.0.1:{server.port}")  # TCP to the page's server only
    try:
        run_type("browser", {"action": "extract", "url": server.url + "/rtc", "selector": "#done",
                             "wait_for": "#done", "timeout": "20s"})
        with pytest.raises(BlockingIOError):
            udp.recvfrom(2048)  # nothing arrived
    finally:
        udp.close()


# ================================================================== template


def test_the_template_parameter_sets_the_allowlist_and_is_absent_by_default(monkeypatch):
    import boto3
    from moto import mock_aws

    from loopline.embedded.provision import provision

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        default = provision(session)
        assert all(ALLOW not in spec.environment for spec in default.functions.values())
        chosen = provision(session, parameters={"EgressAllowHosts": "*.internal.example,10.1.0.0/16:443"})
        # http and browser tasks run in the engine's functions; the task runner (python, shell,
        # custom) has no egress policy of its own and is given none, nor are the history and gauges
        # functions and the console's sign-in functions, which run no task.
        apart = ("TaskRunnerFunction", "HistoryFunction", "GaugesFunction", "ConsoleAuthorizerFunction",
                 "ConsoleSignInFunction")
        assert {spec.environment[ALLOW] for name, spec in chosen.functions.items()
                if name not in apart} == {"*.internal.example,10.1.0.0/16:443"}
        assert all(ALLOW not in chosen.functions[name].environment for name in apart)
