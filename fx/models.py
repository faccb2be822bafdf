"""FX: rate sources, rate history, quotes and swaps (built by the FX issue)."""
