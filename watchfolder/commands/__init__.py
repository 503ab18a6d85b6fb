"""One module per command; ``cli`` parses arguments and calls ``main`` here."""
