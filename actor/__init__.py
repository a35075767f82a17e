"""The camactor CLU actor and its command-line launcher."""
