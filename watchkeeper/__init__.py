"""Watchkeeper: network-security situational awareness for regional e-government networks."""
__version__ = "0.1.0"
