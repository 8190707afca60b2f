"""reads: the same reads over REST and native gRPC side by side, in one run, with as
many users each, so their throughput ratio is measured under the same conditions."""

from groundwork_loadtest.users import BrowserUser, GrpcBrowserUser

__all__ = ["BrowserUser", "GrpcBrowserUser"]
