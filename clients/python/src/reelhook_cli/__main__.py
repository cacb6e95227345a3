from reelhook_cli import main

main()
