from lucidae.cli import main

main()
