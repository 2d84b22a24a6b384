"""email, sms, voice: the AWS providers (SES, SNS) under a fresh moto per test, and the local stand-ins' outbox."""

from __future__ import annotations

import email
from email import policy

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from infra.tasks import outbox
from tests.unit.test_task_settings import failure, run_type, task_env  # noqa: F401

REGION = "us-east-1"
SENDER = "digest@example.com"


@pytest.fixture
def aws(task_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_PROVIDER_DEFAULTS", "aws")
    monkeypatch.delenv("LOOPLINE_SMS_ENABLED", raising=False)  # an embedded stack's setting may linger
    with mock_aws():
        yield task_env


def _ses_backend():
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID][REGION]


# ======================================================================= ses


def test_ses_sends_html_with_a_text_alternative(aws, monkeypatch):
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    monkeypatch.setenv("LOOPLINE_EMAIL_FROM", SENDER)
    result = run_type("email", {"to": ["ada@example.com"], "subject": "Your Daily Digest",
                                "body": "<h1>Daily Digest</h1>\n<p>All quiet.</p>", "cc": "bob@example.com"})
    assert result["to"] == ["ada@example.com"] and result["subject"] == "Your Daily Digest"
    assert result["message_id"]
    [sent] = _ses_backend().sent_messages
    assert sent.source == SENDER
    assert sent.destinations["ToAddresses"] == ["ada@example.com"]
    assert sent.destinations["CcAddresses"] == ["bob@example.com"]
    assert sent.subject == "Your Daily Digest"
    assert "<h1>Daily Digest</h1>" in sent.body
    assert outbox.entries() == []


def test_ses_with_attachments_sends_a_raw_mime_message(aws):
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    (aws / "reports").mkdir()
    (aws / "reports" / "q1.csv").write_text("a,b\n1,2\n")
    result = run_type("email", {"from": SENDER, "to": "ada@example.com", "subject": "Report", "body": "Attached.",
                                "attachments": ["reports/q1.csv"]})
    assert result["to"] == ["ada@example.com"]
    [sent] = _ses_backend().sent_messages
    message = email.message_from_string(sent.raw_data, policy=policy.default)
    assert message["Subject"] == "Report"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "q1.csv"
    assert attachment.get_content() == "a,b\n1,2\n"


def test_ses_attachment_outside_the_root_is_refused(aws):
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    error = failure("email", {"from": SENDER, "to": "a@example.com", "subject": "s", "body": "b",
                              "attachments": ["../../etc/passwd"]})
    assert error.error_type == "FileAccessDenied"
    assert _ses_backend().sent_messages == []


def test_ses_rejects_an_unverified_sender_as_an_email_error(aws):
    error = failure("email", {"from": "nobody@example.com", "to": "a@example.com", "subject": "s", "body": "b"})
    assert error.error_type == "EmailError"
    assert "MessageRejected" in error.message


def test_ses_needs_a_sender(aws):
    error = failure("email", {"to": "a@example.com", "subject": "s", "body": "b"})
    assert error.error_type == "InvalidConfig" and "LOOPLINE_EMAIL_FROM" in error.message


# ======================================================================= sns


def test_sns_publishes_an_sms_to_the_phone_number(aws):
    result = run_type("sms", {"to": "+15551234567", "body": "Your code is 1234", "from": "Loopline"})
    assert result["to"] == "+15551234567" and result["message_id"]
    from moto.sns.models import sns_backends

    messages = sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages
    assert messages[result["message_id"]] == ("+15551234567", "Your code is 1234")


def test_sns_is_not_called_where_the_deployment_does_not_send_sms(aws, monkeypatch):
    """Issue #9 item 17: template.yaml grants sns:Publish only with SmsEnabled=true, and says so."""
    monkeypatch.setenv("LOOPLINE_SMS_ENABLED", "false")
    error = failure("sms", {"to": "+15551234567", "body": "x"})
    assert error.error_type == "ProviderConfigError" and "SmsEnabled=true" in error.message
    from moto.sns.models import sns_backends

    assert sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages == {}
    monkeypatch.setenv("LOOPLINE_SMS_ENABLED", "true")
    assert run_type("sms", {"to": "+15551234567", "body": "x"})["message_id"]


@pytest.mark.parametrize("config", [{"to": "5551234567", "body": "x"}, {"to": "+15551234567"}, {"body": "x"}])
def test_sms_bad_config(aws, config):
    assert failure("sms", config).error_type == "InvalidConfig"


# ============================================================= local stand-ins


def test_local_email_is_recorded_in_the_outbox(task_env):  # noqa: F811
    result = run_type("email", {"to": ["ada@example.com"], "subject": "Hi", "body": "<p>Hello</p>",
                                "attachments": ["report.pdf"]}, task_id="send_email")
    assert result["to"] == ["ada@example.com"] and result["message_id"].startswith("local-")
    [entry] = outbox.entries("email")
    assert entry["task_id"] == "send_email" and entry["run_id"] == "run-1"
    assert entry["request"]["from"] == "loopline@localhost"
    assert entry["request"]["to"] == ["ada@example.com"]
    assert entry["request"]["subject"] == "Hi" and entry["request"]["body"] == "<p>Hello</p>"
    assert entry["request"]["html"] is True
    assert entry["request"]["attachments"] == ["report.pdf"]
    assert entry["result"] == result
    assert failure("email", {"to": "a@example.com", "attachments": ["/etc/passwd"]}).error_type == \
        "FileAccessDenied"


@pytest.mark.parametrize("config", [{"to": []}, {"to": ["not-an-address"]}, {"to": "a@example.com", "format": "pdf"},
                                    {"to": "a@example.com", "from": "nobody"}])
def test_email_bad_config(task_env, config):  # noqa: F811
    assert failure("email", config).error_type == "InvalidConfig"


def test_local_sms_and_voice_are_recorded(task_env):  # noqa: F811
    sms = run_type("sms", {"to": "+15551234567", "body": "hi"})
    voice = run_type("voice", {"to": "+15551234567", "message": "hello", "voice": "alice"})
    assert sms["to"] == voice["to"] == "+15551234567"
    [sms_entry] = outbox.entries("sms")
    [voice_entry] = outbox.entries("voice")
    assert sms_entry["request"] == {"to": "+15551234567", "body": "hi", "from": None}
    assert voice_entry["request"] == {"to": "+15551234567", "message": "hello", "voice": "alice"}
    assert voice_entry["result"] == voice
    assert [e["type"] for e in outbox.entries()] == ["sms", "voice"]
