"""stylesearch.losses"""
