"""An OpenWhisk action, deployed with FORKLET_HANDLER_CONVENTION=openwhisk and handler app.main.
params["do"] picks what it does; by default it greets and shows its OpenWhisk environment."""
import os
import time


def main(params):
    do = params.get("do", "greet")
    if do == "raise":
        raise ValueError("bad params: " + str(params.get("why", "no reason")))
    if do == "list":
        return ["not", "a", "dictionary"]
    if do == "sleep":
        time.sleep(float(params["seconds"]))
        return {"slept": params["seconds"]}
    if do == "hog":
        hog = [bytearray(1024 * 1024) for _ in range(int(params["mb"]))]  # touched: zero-filled
        return {"allocated_mb": len(hog)}
    return {
        "greeting": "Hello " + params.get("name", "stranger") + "!",
        "params": params,
        "namespace": os.environ.get("__OW_NAMESPACE"),
        "action_name": os.environ.get("__OW_ACTION_NAME"),
        "activation_id": os.environ.get("__OW_ACTIVATION_ID"),
        "deadline": os.environ.get("__OW_DEADLINE"),
        "now_ms": int(time.time() * 1000),
    }
