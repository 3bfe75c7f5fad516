"""The XON node: consensus, transport, signer, store, chain client, API and CLI."""
