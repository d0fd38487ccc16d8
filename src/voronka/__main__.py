from voronka.cli import main

main()
