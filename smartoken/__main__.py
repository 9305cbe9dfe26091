from smartoken.cli.main import main

main()
