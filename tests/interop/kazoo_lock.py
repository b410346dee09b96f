"""Kazoo's Lock contending with zkit's (Kazoo naming) on one path.

Each round: acquire the lock, then create the ephemeral node OWNER (it must not exist:
if it does, two processes hold the lock at once), hold briefly, delete it, release.
Usage: kazoo_lock.py HOSTS LOCK_PATH OWNER_PATH ROUNDS
"""
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError

hosts, lock_path, owner_path, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
lock = zk.Lock(lock_path, "kazoo")
for i in range(rounds):
    with lock:
        try:
            zk.create(owner_path, b"kazoo", ephemeral=True)
        except NodeExistsError:
            print("VIOLATION: kazoo acquired while someone else holds", flush=True)
            sys.exit(3)
        time.sleep(0.02)
        zk.delete(owner_path)
print("kazoo done", flush=True)
zk.stop()
