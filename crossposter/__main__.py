from crossposter.cli import main

main()
