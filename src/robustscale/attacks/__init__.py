"""L-inf attacks (PGD on any loss), the TRADES loss, and AutoAttack."""
