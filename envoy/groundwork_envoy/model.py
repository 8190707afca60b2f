"""The mesh description (mesh.yaml), validated."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ports(_Strict):
    app: int = Field(ge=1, le=65535)
    inbound: int = Field(ge=1, le=65535)
    outbound: int = Field(ge=1, le=65535)
    admin: int = Field(ge=1, le=65535)


class EdgePorts(_Strict):
    http: int = Field(ge=1, le=65535)
    https: int = Field(ge=1, le=65535)
    admin: int = Field(ge=1, le=65535)


class Service(_Strict):
    instances: int = Field(ge=1, le=50)
    grpc_services: list[str] = Field(min_length=1)
    public: bool = False


class Mesh(_Strict):
    ports: Ports
    edge: EdgePorts
    services: dict[str, Service]

    def public_services(self) -> dict[str, Service]:
        return {name: svc for name, svc in self.services.items() if svc.public}


def load_mesh(path: Path | None = None) -> Mesh:
    text = (
        path.read_text()
        if path
        else (resources.files("groundwork_envoy") / "mesh.yaml").read_text()
    )
    return Mesh.model_validate(yaml.safe_load(text))
