"""CodeDispatch on AWS: an asynchronous invoke of the task-runner function.

The job is the invoke's payload. Lambda repeats it in the destination record, which also carries the
runner's reply and must fit an SQS message; so a request over INLINE_LIMIT goes to the payload bucket
(``runner/<token hash>/request``) and the job carries a presigned GET of that one object instead, and
every job carries a presigned PUT of ``runner/<token hash>/reply`` for a reply over the limit. The
runner's role has no bucket access: the URLs, made with the worker's credentials for exactly one
object each and expiring with the lease, are all it can reach. Objects under ``runner/`` expire
(template.yaml's lifecycle rule): they matter only until the attempt's result is recorded.
"""

from __future__ import annotations

import json
from dataclasses import replace

from botocore.exceptions import ClientError

from ..dispatch.jobs import INLINE_LIMIT, CodeJob, token_hash
from ..ports import StoreError

PREFIX = "runner/"
CONTENT_TYPE = "application/octet-stream"
# An asynchronous invocation may wait up to 60 s before it starts (the runner's MaximumEventAgeInSeconds,
# template.yaml: an older one is dropped, never run), then the supervisor has 30 s beyond the code's
# timeout to clean up and answer (infra/sandbox/launch.py: SUPERVISOR_GRACE), and Lambda delivers its record.
LEASE_MARGIN = 90.0


class LambdaDispatch:
    lease_margin = LEASE_MARGIN

    def __init__(self, lambda_client, function_name: str, s3=None, presigner=None, bucket: str | None = None):
        """``presigner``: the S3 client that signs URLs, pointed at an endpoint the runner can reach
        (the default on AWS; the embedded runtime's S3 server locally). Without a bucket every job
        travels inline, and one over the limit is refused."""
        self._lambda = lambda_client
        self.function_name = function_name
        self._s3 = s3
        self._presigner = presigner or s3
        self.bucket = bucket

    def dispatch(self, job: CodeJob, valid_for: float) -> None:
        prefix = f"{PREFIX}{token_hash(job.token)}/"
        if self.bucket and self._s3 is not None:
            expires = int(valid_for) + 1
            if job.request is not None and len(job.request.to_json().encode()) > INLINE_LIMIT:
                self._put(prefix + "request", job.request.to_json().encode())
                job = replace(job, request=None, request_url=self._presign("get_object", prefix + "request", expires))
            job = replace(job, reply_url=self._presign("put_object", prefix + "reply", expires))
        payload = json.dumps(job.to_payload(), separators=(",", ":")).encode()
        if len(payload) > 2 * INLINE_LIMIT:
            raise StoreError(f"a job of {len(payload)} bytes, and no payload bucket to pass it through")
        try:
            reply = self._lambda.invoke(FunctionName=self.function_name, InvocationType="Event", Payload=payload)
        except ClientError as error:
            raise StoreError(f"Lambda Invoke of the task runner failed: {error}") from error
        if reply.get("StatusCode") != 202:
            raise StoreError(f"Lambda Invoke of the task runner answered {reply.get('StatusCode')}, not 202")

    def uploaded_reply(self, token_hash: str, limit: int) -> bytes:
        if not self.bucket or self._s3 is None:
            raise LookupError("no payload bucket: no reply can have been put")
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=f"{PREFIX}{token_hash}/reply")["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise LookupError(f"no reply was put for attempt {token_hash[:12]}") from error
            raise StoreError(f"S3 GetObject of a task runner's reply failed: {error}") from error
        data = body.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"the reply is larger than {limit} bytes")
        return data

    def _put(self, key: str, data: bytes) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=CONTENT_TYPE)
        except ClientError as error:
            raise StoreError(f"S3 PutObject of a task runner's request failed: {error}") from error

    def _presign(self, operation: str, key: str, expires: int) -> str:
        params = {"Bucket": self.bucket, "Key": key}
        if operation == "put_object":
            params["ContentType"] = CONTENT_TYPE  # signed: the runner must send exactly this type
        return self._presigner.generate_presigned_url(operation, Params=params, ExpiresIn=expires)
