"""``python -m stylesearch`` is the same as the ``stylesearch`` console script."""

from stylesearch.cli import main

if __name__ == "__main__":
    main()
