"""`python -m robustscale` (and `torchrun -m robustscale train ...`)."""

from robustscale.cli import main

if __name__ == "__main__":  # not when a spawned worker process re-imports this module
    main()
