import sys

from bertprep.cli import main

sys.exit(main())
