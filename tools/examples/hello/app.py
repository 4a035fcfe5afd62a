def handler(event, context):
    return {"message": "hello from forklet", "request_id": context.aws_request_id}
