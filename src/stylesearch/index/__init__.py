"""stylesearch.index"""
