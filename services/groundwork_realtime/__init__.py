"""Realtime service: live seat maps and order status over WebSockets, fanned
out from booking's event stream."""
