"""Stand-in for modules/call_queue.py (A1111 1.10): `queue_lock`, the lock every generation (UI
and API) holds while it runs, so work that takes it waits for them and they wait for it."""
import threading

queue_lock = threading.Lock()
