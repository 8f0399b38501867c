"""`python -m robustscale` (and `torchrun -m robustscale train ...`)."""

from robustscale.cli import main

main()
