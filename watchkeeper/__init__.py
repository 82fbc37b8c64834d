"""Watchkeeper: network-security situational awareness for regional e-government networks."""
__version__ = "0.1.0"

from watchkeeper import compiled as _compiled

_compiled.install()     # the detection path's compiled modules, while they match their source
