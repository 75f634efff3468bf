"""asyncio listeners and connections for clients: the only socket code on the client side."""
