#!/usr/bin/python3
"""One boto3 call (or one signed GET) against forkletd as one tenant, for the integration tests.

usage: tenant_client.py ENDPOINT KEY SECRET CA OP [ARG]
  CA       the CA bundle to trust for https:// (the test's self-signed certificate), or "-"
  list               ListFunctions: data is [[FunctionName, FunctionArn], ...]
  get NAME           GetFunction: data is the FunctionArn
  invoke NAME        Invoke: data is the function's response
  update NAME        UpdateFunctionConfiguration (Timeout 7): data is the FunctionArn
  delete NAME        DeleteFunction
  concurrency NAME   PutFunctionConcurrency (1)
  signed-get PATH    a GET of PATH signed with botocore's SigV4Auth: data is the body
Prints one JSON object: {"ok": bool, "status": HTTP status, "code": error code or "", "data": ...}.
"""
import json
import ssl
import sys
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

endpoint, key, secret, ca, op = sys.argv[1:6]
arg = sys.argv[6] if len(sys.argv) > 6 else ""
verify = True if ca == "-" else ca


def out(ok, status, code="", data=None):
    print(json.dumps({"ok": ok, "status": status, "code": code, "data": data}))
    sys.exit(0)


if op == "signed-get":
    req = AWSRequest(method="GET", url=endpoint + arg)
    SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(req)
    ctx = ssl.create_default_context(cafile=ca) if ca != "-" else None
    try:
        with urllib.request.urlopen(urllib.request.Request(req.url, headers=dict(req.headers.items())),
                                    timeout=30, context=ctx) as r:
            out(True, r.status, "", r.read().decode())
    except urllib.error.HTTPError as e:
        out(False, e.code, e.headers.get("X-Amzn-ErrorType", ""), e.read().decode())

client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", verify=verify,
                      aws_access_key_id=key, aws_secret_access_key=secret,
                      config=Config(retries={"max_attempts": 1}))
try:
    if op == "list":
        fns = client.list_functions()["Functions"]
        out(True, 200, "", [[f["FunctionName"], f["FunctionArn"]] for f in fns])
    elif op == "get":
        out(True, 200, "", client.get_function(FunctionName=arg)["Configuration"]["FunctionArn"])
    elif op == "invoke":
        r = client.invoke(FunctionName=arg, Payload=b'{"amount": 2}')
        out(True, r["StatusCode"], "", r["Payload"].read().decode())
    elif op == "update":
        out(True, 200, "", client.update_function_configuration(FunctionName=arg, Timeout=7)["FunctionArn"])
    elif op == "delete":
        client.delete_function(FunctionName=arg)
        out(True, 204)
    elif op == "concurrency":
        client.put_function_concurrency(FunctionName=arg, ReservedConcurrentExecutions=1)
        out(True, 200)
    else:
        sys.exit(f"unknown op {op}")
except botocore.exceptions.ClientError as e:
    out(False, e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"],
        e.response["Error"].get("Message", ""))
