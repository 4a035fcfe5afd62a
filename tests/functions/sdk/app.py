"""Uses the AWS SDK as a Lambda Python function does, and says which other host packages it can
import (none should be: only the SDK is on the path)."""
import importlib
import sys


def handler(event, context):
    import boto3
    import botocore
    client = boto3.client("s3", region_name="us-east-1")  # credentials come from the environment
    others = {}
    for name in ("yaml", "apt", "dbus", "awscli", "cryptography"):
        try:
            importlib.import_module(name)
            others[name] = True
        except ImportError:
            others[name] = False
    return {
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "boto3_file": boto3.__file__,
        "client": type(client).__name__,
        "sys_path": sys.path,
        "others": others,
    }
