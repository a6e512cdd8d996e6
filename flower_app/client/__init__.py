"""Client side: the ClientApp mod that attaches typed metadata to replies."""
