"""stylesearch.evaluation"""
