"""stylesearch.model"""
