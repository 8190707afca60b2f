"""Locust load tests of the ticketing system, and the correctness check after them."""
