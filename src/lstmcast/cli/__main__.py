"""`python -m lstmcast.cli ...` runs the command line."""

from lstmcast.cli.app import main

main()
