"""Default camactor configuration files, shipped as package data."""
