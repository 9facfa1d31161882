from spikegate.service.cli import main

raise SystemExit(main())
