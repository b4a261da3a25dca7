"""stylesearch.text"""
