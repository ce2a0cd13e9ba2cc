from svcnet.main import main

raise SystemExit(main())
