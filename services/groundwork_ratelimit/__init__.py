"""Global rate limits for the edge: Envoy's RateLimitService over gRPC, with
fixed-window counters in Redis."""

SERVICE_NAME = "envoy.service.ratelimit.v3.RateLimitService"
