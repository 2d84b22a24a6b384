"""The ``email``, ``sms`` and ``voice`` task types' runners and providers (declared in infra/tasks/types/).

Providers (pick with ``LOOPLINE_PROVIDERS``; defaults per ``LOOPLINE_PROVIDER_DEFAULTS``):

- email: ``ses`` (Amazon SES ``SendEmail``, ``SendRawEmail`` when there are
  attachments; default on aws) and ``local`` (records in the outbox; default locally).
- sms: ``sns`` (Amazon SNS ``Publish`` to a phone number; default on aws) and ``local``.
- voice: ``webhook`` (POSTs ``{to, message, voice}`` as JSON to
  ``LOOPLINE_VOICE_WEBHOOK_URL``, the bridge to Twilio, Amazon Connect and the
  like; default on aws) and ``local``. SNS cannot place calls.
"""

from __future__ import annotations

import json
import mimetypes
import re
import uuid
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol

from . import aws_clients, common, files, outbox
from .base import PROVIDER_CONFIG_ERROR, TaskFailure
from .common import INVALID_CONFIG, TaskMeta
from .egress import EgressPolicy
from .http_task import check_url, fetch
from .settings import AwsSettings

LOCAL_SENDER = "loopline@localhost"
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # SES v1 limit for a whole raw message
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_NAMED_ADDRESS = re.compile(r"^[^<>]*<([^@\s<>]+@[^@\s<>]+)>$")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
_TAG = re.compile(r"<\s*[A-Za-z][^>]*>")


def _aws_failure(error_type: str, exc: Exception) -> TaskFailure:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return TaskFailure(error_type, f"{err.get('Code', 'Error')}: {err.get('Message', str(exc))}")
    return TaskFailure(error_type, f"{type(exc).__name__}: {exc}")


def _local_id() -> str:
    return f"local-{uuid.uuid4().hex}"


# ====================================================================== email


@dataclass(frozen=True)
class Email:
    sender: str
    to: list[str]
    subject: str
    body: str
    html: bool
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)  # paths relative to the file root


class EmailSender(Protocol):
    def send(self, email: Email, meta: TaskMeta) -> str:
        """Send ``email``; return the provider's message id."""


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return "\n".join(line for line in lines if line)


class SesEmail:
    """Amazon SES (v1 API: ``SendEmail``; ``SendRawEmail`` for attachments). The sender must be verified.
    Attachments are read from the file ``root``."""

    def __init__(self, aws: AwsSettings, root: Path):
        self.aws = aws
        self.root = root

    def send(self, email: Email, meta: TaskMeta) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        ses = aws_clients.client(self.aws, "ses")
        try:
            if email.attachments:
                raw = _mime(email, self.root)
                reply = ses.send_raw_email(Source=email.sender, Destinations=email.to + email.cc + email.bcc,
                                           RawMessage={"Data": raw})
            else:
                body = {"Text": {"Data": html_to_text(email.body) if email.html else email.body, "Charset": "UTF-8"}}
                if email.html:
                    body["Html"] = {"Data": email.body, "Charset": "UTF-8"}
                kwargs: dict[str, Any] = {}
                if email.reply_to:
                    kwargs["ReplyToAddresses"] = email.reply_to
                reply = ses.send_email(
                    Source=email.sender,
                    Destination={"ToAddresses": email.to, "CcAddresses": email.cc, "BccAddresses": email.bcc},
                    Message={"Subject": {"Data": email.subject, "Charset": "UTF-8"}, "Body": body},
                    **kwargs,
                )
        except (ClientError, BotoCoreError) as exc:
            raise _aws_failure("EmailError", exc) from exc
        return reply["MessageId"]


def _mime(email: Email, root: Path) -> bytes:
    message = EmailMessage()
    message["From"] = email.sender
    message["To"] = ", ".join(email.to)
    if email.cc:
        message["Cc"] = ", ".join(email.cc)
    if email.reply_to:
        message["Reply-To"] = ", ".join(email.reply_to)
    message["Subject"] = email.subject
    if email.html:
        message.set_content(html_to_text(email.body))
        message.add_alternative(email.body, subtype="html")
    else:
        message.set_content(email.body)
    total = 0
    for name in email.attachments:
        path = files.resolve(name, "attachments", root)
        if not path.is_file():
            raise TaskFailure("FileNotFound", f"attachment {name!r} is not a file in the file root")
        data = path.read_bytes()
        total += len(data)
        if total > MAX_ATTACHMENT_BYTES:
            raise TaskFailure("EmailError", f"attachments exceed {MAX_ATTACHMENT_BYTES} bytes")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        maintype, subtype = kind.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)
    return message.as_bytes()


class LocalEmail:
    """The local stand-in: nothing is sent; the outbox records the message."""

    default_sender = LOCAL_SENDER

    def __init__(self, root: Path):
        self.root = root

    def send(self, email: Email, meta: TaskMeta) -> str:
        for name in email.attachments:
            files.resolve(name, "attachments", self.root)  # the same refusal as SES for a path outside the root
        message_id = _local_id()
        request = asdict(email)
        request["from"] = request.pop("sender")
        outbox.record("email", meta.task_id, meta.run_id, request,
                      {"message_id": message_id, "to": email.to, "subject": email.subject}, at=meta.at)
        return message_id


def _addresses(config: dict[str, Any], key: str, required: bool = False) -> list[str]:
    found = common.text_list(config, key, required=required)
    out = []
    for item in found:
        for address in (part.strip() for part in item.split(",")) if "<" not in item else [item.strip()]:
            if not address:
                continue
            bare = _NAMED_ADDRESS.match(address)
            if not (_ADDRESS.match(address) or bare):
                raise TaskFailure(INVALID_CONFIG, f"'config.{key}': {address!r} is not an email address")
            out.append(address)
    if required and not out:
        raise TaskFailure(INVALID_CONFIG, f"'config.{key}' is required")
    return out


def run_email(config: dict[str, Any], meta: TaskMeta, sender_impl: EmailSender,
              default_from: str | None) -> dict[str, Any]:
    """``default_from``: the deployment's sender (LOOPLINE_EMAIL_FROM) when the task names none."""
    to = _addresses(config, "to", required=True)
    subject = common.text(config, "subject", default="") or ""
    body = common.text(config, "body", default="") or ""
    fmt = (common.text(config, "format") or "").lower()
    if fmt not in ("", "html", "text"):
        raise TaskFailure(INVALID_CONFIG, "'config.format' must be html or text")
    html = fmt == "html" or (fmt == "" and bool(_TAG.search(body)))
    sender = (common.text(config, "from") or default_from or getattr(sender_impl, "default_sender", None) or "")
    if not sender:
        raise TaskFailure(INVALID_CONFIG, "no sender: set 'config.from' or LOOPLINE_EMAIL_FROM")
    if not (_ADDRESS.match(sender) or _NAMED_ADDRESS.match(sender)):
        raise TaskFailure(INVALID_CONFIG, f"sender {sender!r} is not an email address")
    email = Email(sender=sender, to=to, subject=subject, body=body, html=html, cc=_addresses(config, "cc"),
                  bcc=_addresses(config, "bcc"), reply_to=_addresses(config, "reply_to"),
                  attachments=common.text_list(config, "attachments"))
    message_id = sender_impl.send(email, meta)
    return {"message_id": message_id, "to": to, "subject": subject}


# ======================================================================== sms


class SmsSender(Protocol):
    def send(self, to: str, body: str, sender: str | None, meta: TaskMeta) -> str: ...


class SnsSms:
    """Amazon SNS ``Publish`` to a phone number (the account must be out of the SMS sandbox)."""

    def __init__(self, aws: AwsSettings, enabled: bool):
        self.aws = aws
        self.enabled = enabled

    def send(self, to: str, body: str, sender: str | None, meta: TaskMeta) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        # template.yaml grants sns:Publish only with SmsEnabled=true and says which (LOOPLINE_SMS_ENABLED);
        # saying why beats an AccessDenied. (Unset: a deployment of its own, which its role decides.)
        if not self.enabled:
            raise TaskFailure(PROVIDER_CONFIG_ERROR, "SMS is not enabled in this deployment: deploy with "
                              "the template parameter SmsEnabled=true to let sms tasks publish through SNS")
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        if sender:
            key = "AWS.MM.SMS.OriginationNumber" if _PHONE.match(sender) else "AWS.SNS.SMS.SenderID"
            attributes[key] = {"DataType": "String", "StringValue": sender}
        try:
            reply = aws_clients.client(self.aws, "sns").publish(PhoneNumber=to, Message=body,
                                                                MessageAttributes=attributes)
        except (ClientError, BotoCoreError) as exc:
            raise _aws_failure("SmsError", exc) from exc
        return reply["MessageId"]


class LocalSms:
    def send(self, to: str, body: str, sender: str | None, meta: TaskMeta) -> str:
        message_id = _local_id()
        outbox.record("sms", meta.task_id, meta.run_id, {"to": to, "body": body, "from": sender},
                      {"message_id": message_id, "to": to}, at=meta.at)
        return message_id


def _phone(config: dict[str, Any], key: str) -> str:
    value = (common.text(config, key, required=True) or "").replace(" ", "").replace("-", "")
    if not _PHONE.match(value):
        raise TaskFailure(INVALID_CONFIG, f"'config.{key}' must be a phone number in E.164 form (+15551234567)")
    return value


def run_sms(config: dict[str, Any], meta: TaskMeta, sender: SmsSender) -> dict[str, Any]:
    to = _phone(config, "to")
    key = "body" if config.get("body") is not None else "message"
    body = common.text(config, key) or ""
    if not body:
        raise TaskFailure(INVALID_CONFIG, "'config.body' is required")
    message_id = sender.send(to, body, common.text(config, "from"), meta)
    return {"message_id": message_id, "to": to}


# ====================================================================== voice


class VoiceCaller(Protocol):
    def call(self, to: str, message: str, voice: str, meta: TaskMeta) -> str:
        """Place a call that speaks ``message`` with ``voice``; return the provider's call id."""


class WebhookVoice:
    """POSTs ``{to, message, voice}`` to ``LOOPLINE_VOICE_WEBHOOK_URL`` (bearer token from
    ``LOOPLINE_VOICE_WEBHOOK_TOKEN`` when set). A 2xx answer places the call; its JSON
    ``message_id``/``id``/``sid``/``call_id`` becomes the message id."""

    def __init__(self, url: str, token: str, policy: EgressPolicy) -> None:
        if not url:
            raise TaskFailure(PROVIDER_CONFIG_ERROR, "the 'webhook' voice provider needs LOOPLINE_VOICE_WEBHOOK_URL")
        self.url = check_url(url, "LOOPLINE_VOICE_WEBHOOK_URL")
        self.token = token
        self.policy = policy
        self.timeout = 30.0

    def call(self, to: str, message: str, voice: str, meta: TaskMeta) -> str:
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"{meta.run_id}:{meta.task_id}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps({"to": to, "message": message, "voice": voice}).encode()
        response = fetch("POST", self.url, policy=self.policy, headers=headers, data=data, timeout=self.timeout,
                         connection_error="VoiceError")
        if response.status >= 300:
            raise TaskFailure("VoiceError", f"webhook answered {response.status} {response.reason}: "
                                            f"{common.excerpt(response.body)}")
        try:
            reply = json.loads(response.body or b"null")
        except ValueError:
            reply = None
        if isinstance(reply, dict):
            for key in ("message_id", "id", "sid", "call_id"):
                if reply.get(key):
                    return str(reply[key])
        return f"webhook-{uuid.uuid4().hex}"


class LocalVoice:
    def call(self, to: str, message: str, voice: str, meta: TaskMeta) -> str:
        message_id = _local_id()
        outbox.record("voice", meta.task_id, meta.run_id, {"to": to, "message": message, "voice": voice},
                      {"message_id": message_id, "to": to}, at=meta.at)
        return message_id


def run_voice(config: dict[str, Any], meta: TaskMeta, caller: VoiceCaller) -> dict[str, Any]:
    to = _phone(config, "to")
    message = common.text(config, "message") or ""
    if not message:
        raise TaskFailure(INVALID_CONFIG, "'config.message' is required")
    voice = common.text(config, "voice") or "default"
    if isinstance(caller, WebhookVoice):
        caller.timeout = common.timeout(config, meta, caller.timeout)
    message_id = caller.call(to, message, voice, meta)
    return {"message_id": message_id, "to": to}
