import asyncio


def ensure_event_loop():
    """ib_insync (through eventkit, even at import) needs an event loop set in the calling
    thread; a thread where ``asyncio.run`` has finished has none, so give it one."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
