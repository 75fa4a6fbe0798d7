from cronplan.cli.root import main

main()
