"""The Kubernetes API calls the operator makes beyond kopf's own (kubernetes_asyncio)."""

from __future__ import annotations

import os
from typing import Any

from kubernetes_asyncio import client, config

GROUP = "groundwork.dev"
VERSION = "v1alpha1"
# The client would send a JSON Patch otherwise; its stubs omit `_content_type`,
# which the generated code accepts.
MERGE = "application/merge-patch+json"


async def api_client() -> client.ApiClient:
    """In a pod: its service account; elsewhere: KUBECONFIG (as kopf logs in)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    configuration = client.Configuration()
    await config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


async def list_objects(api: client.ApiClient, namespace: str, plural: str) -> list[dict[str, Any]]:
    reply = await client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, plural
    )
    items: list[dict[str, Any]] = reply["items"]
    return items


async def patch_status(
    api: client.ApiClient, namespace: str, plural: str, name: str, status: dict[str, Any]
) -> None:
    await client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        plural,
        name,
        {"status": status},
        _content_type=MERGE,  # type: ignore[call-arg]
    )


async def config_map_data(api: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    reply = await client.CoreV1Api(api).read_namespaced_config_map(name, namespace)
    return dict(reply.data or {})


async def patch_config_map_data(
    api: client.ApiClient, namespace: str, name: str, data: dict[str, str]
) -> None:
    await client.CoreV1Api(api).patch_namespaced_config_map(
        name,
        namespace,
        {"data": data},
        _content_type=MERGE,  # type: ignore[call-arg]
    )


async def deployment_replicas(api: client.ApiClient, namespace: str, name: str) -> int:
    scale = await client.AppsV1Api(api).read_namespaced_deployment_scale(name, namespace)
    return int(scale.spec.replicas or 0)


async def scale_deployment(api: client.ApiClient, namespace: str, name: str, replicas: int) -> None:
    await client.AppsV1Api(api).patch_namespaced_deployment_scale(
        name,
        namespace,
        {"spec": {"replicas": replicas}},
        _content_type=MERGE,  # type: ignore[call-arg]
    )
