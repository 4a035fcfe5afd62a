#!/usr/bin/python3
"""Signed requests to forkletd made with botocore's own signer, the way tests need them bent.

usage: sigv4_client.py ENDPOINT KEY SECRET MODE
  skewed-list    ListFunctions signed 6 minutes ago (a replay outside the window)
  tampered-invoke FN  Invoke FN signed for one body, sent with another
  invoke FN      Invoke FN, signed now
  presigned-list ListFunctions through a presigned URL (the query-string form)
Prints the HTTP status, a tab, the X-Amzn-ErrorType header (or "-") and a tab, then the body.
"""
import datetime
import sys
import urllib.error
import urllib.request
from unittest import mock

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint, key, secret, mode = sys.argv[1:5]
args = sys.argv[5:]
creds = Credentials(key, secret)


def send(method, url, body, headers):
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, etype, text = r.status, r.headers.get("X-Amzn-ErrorType", "-"), r.read().decode()
    except urllib.error.HTTPError as e:
        status, etype, text = e.code, e.headers.get("X-Amzn-ErrorType", "-"), e.read().decode()
    print(f"{status}\t{etype}\t{text}")


def signed(method, path, body=b"", at=None):
    req = AWSRequest(method=method, url=endpoint + path, data=body)
    if at is None:
        SigV4Auth(creds, "lambda", "us-east-1").add_auth(req)
    else:
        with mock.patch("botocore.auth.datetime") as dt:
            dt.datetime.utcnow.return_value = at
            dt.datetime.now.return_value = at
            dt.timezone = datetime.timezone
            SigV4Auth(creds, "lambda", "us-east-1").add_auth(req)
    return req


if mode == "skewed-list":
    at = datetime.datetime.utcnow() - datetime.timedelta(minutes=6)
    req = signed("GET", "/2015-03-31/functions/", at=at)
    send("GET", req.url, None, req.headers.items())
elif mode == "tampered-invoke":
    path = f"/2015-03-31/functions/{args[0]}/invocations"
    req = signed("POST", path, b'{"amount": 1}')
    send("POST", req.url, b'{"amount": 1000}', req.headers.items())
elif mode == "invoke":
    path = f"/2015-03-31/functions/{args[0]}/invocations"
    req = signed("POST", path, b'{"amount": 1}')
    send("POST", req.url, b'{"amount": 1}', req.headers.items())
elif mode == "presigned-list":
    client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=key, aws_secret_access_key=secret)
    url = client.generate_presigned_url("list_functions", Params={}, ExpiresIn=60)
    send("GET", url, None, {})
else:
    sys.exit(f"unknown mode {mode}")
