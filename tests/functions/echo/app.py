import os


def handler(event, context):
    print("echo called with", event)
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env_greeting": os.environ.get("GREETING"),
        "pid": os.getpid(),
    }
