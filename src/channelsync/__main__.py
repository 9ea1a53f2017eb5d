import sys

from channelsync.cli import main

sys.exit(main())
