from channelsync.cli import run

run()
