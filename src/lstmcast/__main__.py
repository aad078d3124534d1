"""`python -m lstmcast ...` runs the command line (what `torchrun -m lstmcast` starts)."""

from lstmcast.cli.app import main

main()
