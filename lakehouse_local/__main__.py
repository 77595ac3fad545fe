import sys

from lakehouse_local.cli import main

sys.exit(main())
