#!/usr/bin/env python3
"""A local stand-in for the AWS credential endpoints walship uses, for tests.

Serves on 127.0.0.1 (port printed on the first line of stdout):
- STS AssumeRoleWithWebIdentity (GET /?Action=AssumeRoleWithWebIdentity&...), requires
  WebIdentityToken == $EXPECT_WEB_TOKEN and RoleArn == $EXPECT_ROLE_ARN;
- the container credentials endpoint (GET /container), requires Authorization == $EXPECT_AUTH;
- EC2 IMDSv2: PUT /latest/api/token, then GET /latest/meta-data/iam/security-credentials/[role]
  with X-aws-ec2-metadata-token.
Every credential it hands out is numbered (AccessKeyId ASIASTANDIN<n>) and expires after
$LIFETIME_SECONDS, so a test can see when the client refreshed.
"""
import datetime
import http.server
import json
import os
import signal
import sys
import threading
import urllib.parse

counter = 0
lock = threading.Lock()
LIFETIME = int(os.environ.get("LIFETIME_SECONDS", "3600"))
IMDS_TOKEN = "imds-session-token-123"


def next_credentials():
    global counter
    with lock:
        counter += 1
        n = counter
    expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=LIFETIME)
    return {
        "AccessKeyId": f"ASIASTANDIN{n}",
        "SecretAccessKey": f"standin-secret-{n}",
        "Token": f"standin-token-{n}",
        "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        if os.environ.get("IMDS_FORBIDDEN"):
            self.reply(403, "forbidden", "text/plain")
        elif self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self.reply(200, IMDS_TOKEN, "text/plain")
        else:
            self.reply(400, "bad token request", "text/plain")

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if query.get("Action") == "AssumeRoleWithWebIdentity":
            if query.get("WebIdentityToken") != os.environ.get("EXPECT_WEB_TOKEN") or query.get(
                "RoleArn"
            ) != os.environ.get("EXPECT_ROLE_ARN"):
                self.reply(
                    403,
                    "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad token</Message></Error></ErrorResponse>",
                    "text/xml",
                )
                return
            c = next_credentials()
            body = (
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                f"<AccessKeyId>{c['AccessKeyId']}</AccessKeyId><SecretAccessKey>{c['SecretAccessKey']}</SecretAccessKey>"
                f"<SessionToken>{c['Token']}</SessionToken><Expiration>{c['Expiration']}</Expiration>"
                "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            )
            self.reply(200, body, "text/xml")
        elif url.path == "/container":
            if self.headers.get("Authorization") != os.environ.get("EXPECT_AUTH"):
                self.reply(401, '{"Code":"Unauthorized"}')
                return
            self.reply(200, json.dumps(next_credentials()))
        elif url.path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
                self.reply(401, "", "text/plain")
                return
            role = url.path[len("/latest/meta-data/iam/security-credentials/") :]
            if role == "":
                self.reply(200, "walship-role\n", "text/plain")
            elif role == "walship-role":
                c = next_credentials()
                c["Code"] = "Success"
                self.reply(200, json.dumps(c))
            else:
                self.reply(404, "", "text/plain")
        else:
            self.reply(404, "", "text/plain")


# Foundation's Process starts children with most signals blocked; take SIGTERM back.
signal.pthread_sigmask(signal.SIG_SETMASK, [])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
