#!/usr/bin/env python3
"""Signs one request with botocore's S3SigV4Auth: an independent SigV4 signer for cross-checks.

Reads a JSON object on stdin: method, url (already percent-encoded, as sent on the wire),
headers (object), body_hex, access_key, secret_key, session_token (or null), region, timestamp
("YYYYMMDDTHHMMSSZ"). Prints a JSON object of the headers botocore adds or sets.
"""
import datetime
import json
import sys
from unittest import mock

try:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
except ImportError:
    sys.stderr.write("botocore is not installed: run 'pip install botocore' (scripts/setup does)\n")
    sys.exit(3)


def main():
    spec = json.load(sys.stdin)
    body = bytes.fromhex(spec["body_hex"])
    request = botocore.awsrequest.AWSRequest(
        method=spec["method"], url=spec["url"], headers=dict(spec["headers"]), data=body
    )
    credentials = botocore.credentials.Credentials(
        spec["access_key"], spec["secret_key"], spec.get("session_token")
    )
    signer = botocore.auth.S3SigV4Auth(credentials, "s3", spec["region"])
    fixed = datetime.datetime.strptime(spec["timestamp"], "%Y%m%dT%H%M%SZ")
    with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
        signer.add_auth(request)
    print(json.dumps({k.lower(): v for k, v in request.headers.items()}))


if __name__ == "__main__":
    main()
