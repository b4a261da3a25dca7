"""stylesearch.server"""
