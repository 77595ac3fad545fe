import sys

from lakehouse.local.cli import main

sys.exit(main())
