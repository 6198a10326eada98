"""pvAccess: codec (protocol, pvdata, nt: no I/O) and transport (search, circuit, client).

The codec modules must not import sockets, threads or asyncio; the transport modules must not
import the Context or anything above it.
"""
