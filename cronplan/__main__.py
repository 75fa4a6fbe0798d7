from cronplan._fastfire import main

main()
