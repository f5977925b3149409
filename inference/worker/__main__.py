import sys

from inference.worker.cli import main

sys.exit(main())
