"""Runs the local mesh as supervised processes on loopback."""
