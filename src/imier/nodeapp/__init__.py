"""The daemon: libp2p host, gossip, sync protocol, discovery, control socket. All trio.

Importing a submodule that needs libp2p imports it (about a second); the
CLI imports this package only for the network commands.
"""

__all__: list[str] = []
