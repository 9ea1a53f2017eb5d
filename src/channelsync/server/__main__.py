from __future__ import annotations

import sys

from channelsync.server.command import main

sys.exit(main())
