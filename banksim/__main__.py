"""``python -m banksim`` is ``python -m banksim.server``."""

import sys

from banksim.server import main

sys.exit(main())
