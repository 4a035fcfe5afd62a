def handler(event, context):
    hog = []
    for _ in range(int(event.get("mb", 1024))):
        hog.append(bytearray(1024 * 1024))  # touched: bytearray zero-fills
    return {"allocated_mb": len(hog)}
