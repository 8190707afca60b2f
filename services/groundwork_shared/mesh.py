"""Calls to other services go through this instance's sidecar (its outbound
listener), which routes by :authority and speaks mTLS to the target's sidecars."""

from __future__ import annotations

import grpc


def channel(outbound: str, service: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(outbound, options=[("grpc.default_authority", service)])
