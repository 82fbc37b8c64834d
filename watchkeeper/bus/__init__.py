"""The event bus: one interface, an in-process implementation and a Kafka one (DESIGN.md §4)."""
from watchkeeper.bus.base import (ALERTS, DEADLETTER, EVENTS, Bus, BusError, BusUnavailable,
                                  Consumer, Message, Names, Producer, open_bus)

__all__ = ["ALERTS", "DEADLETTER", "EVENTS", "Bus", "BusError", "BusUnavailable", "Consumer",
           "Message", "Names", "Producer", "open_bus"]
