"""The pure core: no I/O, no clock reads; time, files and live state come in as values."""
