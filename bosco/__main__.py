from bosco.cli import main

main()
