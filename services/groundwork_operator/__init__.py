"""The Kubernetes operator (kopf): TrafficPolicy and StreamScaler."""
