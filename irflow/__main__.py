import sys

from irflow.cli import main

sys.exit(main())
