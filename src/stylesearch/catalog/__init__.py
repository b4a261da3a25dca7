"""stylesearch.catalog"""
