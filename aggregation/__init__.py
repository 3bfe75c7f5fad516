"""Pure core of XON: robust statistics, FROST threshold Schnorr, Merkle trees, report encoding.

Nothing in this package does I/O or imports another XON package; time and randomness
are always passed in.
"""
