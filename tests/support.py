"""Helpers shared by several test modules (imported as ``support``; pytest puts tests/ on the path)."""

import os
import socket


def free_ports(count):
    """``count`` distinct loopback TCP ports that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def snapshot(directory):
    """Relative path -> bytes of every file under ``directory``."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files
