"""grpc: the browse reads over native gRPC through the edge."""

from groundwork_loadtest.users import GrpcBrowserUser

__all__ = ["GrpcBrowserUser"]
