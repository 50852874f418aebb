"""Where the package's network services listen, and a warning when that is a public address.

Two services of the package accept connections without authentication: KerasTuner's oracle (a gRPC
server on the chief of a distributed search, at ``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT``) and
JAX's coordination service (on process 0 of a ``--distribute data_parallel`` cluster). Anyone who can
reach their port can join the search or the cluster, so they belong on loopback or a private network
(see docs/distributed.md, "Trust boundaries").
"""
from __future__ import annotations

import ipaddress
import socket
import sys


def split_host_port(address: str) -> tuple[str, str]:
    """``"host:port"`` (or ``"[v6]:port"``) as ``(host, port)``."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), port


def is_public_address(host: str) -> bool:
    """Whether listening on ``host`` exposes a service beyond loopback and private networks.

    The unspecified addresses (``0.0.0.0``, ``::``) count as public: they listen on every interface.
    A host name is resolved once; one that does not resolve is not judged (the service fails anyway).
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            ip = ipaddress.ip_address(socket.getaddrinfo(host, None)[0][4][0])
        except (OSError, IndexError, ValueError):
            return False
    if ip.is_unspecified:
        return True
    return not (ip.is_loopback or ip.is_private or ip.is_link_local)


def warn_if_public(address: str, service: str) -> bool:
    """Print one warning line to stderr when ``service`` is about to listen on a public ``address``.

    Args:
        address: ``host:port`` the service binds to.
        service: what listens, for the message (e.g. "the KerasTuner oracle").

    Returns:
        Whether a warning was printed.
    """
    host, _ = split_host_port(address)
    if not is_public_address(host):
        return False
    print(f"keras-resnets: warning: {service} listens on {address}, which is not a loopback or private "
          f"address, and accepts unauthenticated connections; run it on loopback or a private network only "
          f"(docs/distributed.md, Trust boundaries)", file=sys.stderr, flush=True)
    return True
