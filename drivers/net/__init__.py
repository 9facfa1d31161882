"""Network sources: ``udp`` (SPIF / AEStream datagrams), ``dv_tcp`` (dv-processing's
``NetworkWriter`` stream), ``ws_ingest`` (our websocket frames of packed events)."""
