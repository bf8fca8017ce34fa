"""``python -m selfdesc`` = the ``selfdesc`` command."""
import sys

from selfdesc.cli.main import main

sys.exit(main())
