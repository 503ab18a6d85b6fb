"""Benchmarks of watchfolder against its TikTok emulator on loopback: ``python -m bench`` (see __main__)."""
