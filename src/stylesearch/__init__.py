"""stylesearch: multimodal style search."""
