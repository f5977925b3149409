import sys

from inference.status import main

sys.exit(main())
