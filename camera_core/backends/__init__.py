"""Device backends (INDI, ASCOM Alpaca) for camera_core."""
