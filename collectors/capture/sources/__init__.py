"""Where record batches come from: pcap/pcapng files (pcap.py, pcapwalk.py) and a live
TPACKET_V3 ring (live.py)."""
