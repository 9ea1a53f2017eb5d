from __future__ import annotations

import sys

from channelsync.commands.serve import main

sys.exit(main())
