from upscale_worker.cli import main

raise SystemExit(main())
