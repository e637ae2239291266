from webapp.server import main

main()
