"""stylesearch.training"""
