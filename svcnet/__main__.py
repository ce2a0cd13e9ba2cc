from svcnet.cli.main import main

raise SystemExit(main())
