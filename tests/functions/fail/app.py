class CustomError(Exception):
    pass


def handler(event, context):
    print("about to fail")
    raise CustomError("something went wrong: " + str(event.get("why", "no reason")))
