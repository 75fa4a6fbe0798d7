from cronplan.cli.base import main

main()
