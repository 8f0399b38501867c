"""L-inf and L2 attacks (PGD on any loss), the TRADES loss, and AutoAttack."""
