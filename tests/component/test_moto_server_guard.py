"""The local AWS endpoints (the embedded default's S3 server, `loopline emulator`) are closed to web
pages (loopline/embedded/moto_server.py). moto's own server allowed every origin and checked no signature:
a page that found the port read the link-signing key from Secrets Manager."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from loopline.embedded.runtime import EmbeddedAws

SIGNED = "AWS4-HMAC-SHA256 Credential=testing/20261203/us-east-1/secretsmanager/aws4_request, " \
         "SignedHeaders=host, Signature=00"


@pytest.fixture(scope="module")
def aws():
    stack = EmbeddedAws()
    yield stack
    stack.stop()


def _get_secret(aws, **headers) -> tuple[int, dict, bytes]:
    body = json.dumps({"SecretId": aws.stack.physical["LinkKeySecret"]}).encode()
    request = urllib.request.Request(aws.s3_endpoint + "/", data=body, method=headers.pop("method", "POST"), headers={
        "X-Amz-Target": "secretsmanager.GetSecretValue", "Content-Type": "application/x-amz-json-1.1",
        "Authorization": SIGNED, **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_an_sdk_request_is_served(aws):
    status, _, body = _get_secret(aws)
    assert status == 200 and b"SecretString" in body


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"},
    {"Sec-Fetch-Site": "same-origin"},
    {"Host": "rebind.example:80"},
    {"Host": "127.0.0.1"},
    {"method": "OPTIONS", "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
])
def test_what_a_browser_sends_is_refused_before_moto_sees_it(aws, headers):
    status, answer, body = _get_secret(aws, **headers)
    assert status == 403, body
    assert b"SecretString" not in body and json.loads(body)["error"] == "forbidden"
    assert not any(name.lower().startswith("access-control-") for name in answer)


def test_presigned_urls_and_bucket_hosts_still_work(aws):
    s3 = aws.client("s3")
    bucket = aws.stack.physical["PayloadBucket"]
    s3.put_object(Bucket=bucket, Key="runner/x/request", Body=b"hello")
    import boto3
    from botocore.config import Config

    signer = boto3.client("s3", endpoint_url=aws.s3_endpoint, config=Config(signature_version="s3v4"))
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "runner/x/request"})
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.read() == b"hello"
    port = aws.s3_endpoint.rsplit(":", 1)[1]
    request = urllib.request.Request(f"{aws.s3_endpoint}/runner/x/request", headers={
        "Host": f"{bucket}.localhost:{port}", "Authorization": SIGNED.replace("secretsmanager", "s3")})
    with urllib.request.urlopen(request, timeout=10) as reply:  # S3's virtual-hosted style on localhost
        assert reply.read() == b"hello"
