"""stylesearch.search"""
