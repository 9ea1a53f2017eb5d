"""Output formats. A renderer formats data it is given; it never computes a diff."""
